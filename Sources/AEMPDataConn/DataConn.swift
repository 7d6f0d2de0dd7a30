import AEMP
import AEMPCodecs
import AEMPHandle
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A function that receives the remote end of a data connection. Perl: the `$initfunc` of
/// `connect_to`, called as `initfunc(@initdata, $handle)`.
///
/// The connection stays open until the handle is destroyed (by you, by a fatal error, or by the
/// peer's close once you read), whether or not you keep a reference: end it with `destroy()`.
///
/// It runs on the handle's event loop (`handle.eventLoop`), where the handle's callbacks are set up:
/// the node's data loop (a loop of its data group, by default a background-priority thread of
/// `Node.defaultDataGroup`; see `Node.start(_:group:dataGroup:logger:)`). The
/// handle is quiescent: nothing is read or written and no callback is set until the function sets
/// them up (set at least `onError`). TLS is already active when the nodes use TLS.
public typealias DataConnReceiver = @Sendable (FunctionContext, [Value], Handle) -> Void

/// Why a data connection could not be made. The calling port is killed with
/// `("AnyEvent::MP::DataConn", message)`.
public struct DataConnError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The message of the kill reason (`nil` when the remote side timed out: Perl sends `undef`).
    public var message: String?

    /// Creates an error.
    public init(_ message: String?) {
        self.message = message
    }

    /// A readable explanation.
    public var description: String { message ?? "the remote side gave up waiting for the data connection" }
}

/// Names from spec §9.
package enum DataConnProtocol {
    static let greeting = "aemp-dataconn"
    static let expect = "AnyEvent::MP::DataConn::_expect"
    static let connect = "AnyEvent::MP::DataConn::_connect"
    static let stateKey = "AnyEvent::MP::DataConn"
    /// A new listener address is dialled every 2 seconds (spec §9.2 step 4).
    static let dialInterval: Duration = .seconds(2)
    /// `SO_SNDBUF` of a data connection within one machine (Linux doubles it for its bookkeeping).
    /// Left alone, the kernel grows a loopback connection's send buffer to 4 MiB: that much data in
    /// flight falls out of the caches between sender and receiver, and the copies that move it
    /// (which a normal-priority thread cannot interrupt on a kernel without preemption) grow with
    /// it. Across machines the buffer is left to the kernel, which sizes it to the path.
    static let sameHostSendBuffer = 256 << 10

    /// Whether a connection from `local` to `remote` stays within this machine: a loopback peer,
    /// or one at our own address.
    package static func isSameHost(local: SocketAddress?, remote: SocketAddress?) -> Bool {
        guard let remote = remote?.ipAddress else { return false }
        if remote.hasPrefix("127.") || remote == "::1" || remote.hasPrefix("::ffff:127.") { return true }
        return remote == local?.ipAddress
    }
}

extension Node {
    /// Registers a function that receives data connections. Perl: a function named as `$initfunc` in
    /// `connect_to`.
    ///
    /// Also enables the `aemp-dataconn` protocol on this node's listeners.
    /// - Parameters:
    ///   - name: the name initiators pass as `function`, e.g. `"pkg::receiver"`.
    ///   - receiver: gets the initiator's `arguments` and the quiescent remote handle; `nil` removes it.
    public func registerDataConnFunction(_ name: String, _ receiver: DataConnReceiver?) {
        DataConnRegistry.get(self).set(name, receiver)
    }

    /// Opens a raw data connection to another node over its AEMP listener, with the same
    /// authentication (and TLS, when configured) as node connections. Perl:
    /// `AnyEvent::MP::DataConn::connect_to $node, $timeout, $initfunc, @initdata, $cb`.
    ///
    /// On success the registered `function` runs on the target with `arguments` and the remote handle,
    /// and `callback` gets the local handle; both handles are quiescent. On any error nothing runs
    /// remotely and `port` is killed with `("AnyEvent::MP::DataConn", message)`.
    ///
    /// The timeout covers the whole rendezvous: it must allow at least four network round trips and
    /// one message round trip.
    ///
    /// - Parameters:
    ///   - target: a node ID, or a port ID whose node is meant.
    ///   - timeout: the limit for the whole rendezvous.
    ///   - function: the receiver's registered name on the target.
    ///   - arguments: passed to it before the handle.
    ///   - port: the calling port, killed on failure (Perl: the port context of the caller).
    ///   - callback: gets the local handle, on the handle's event loop (see ``DataConnReceiver``).
    public func connectData(
        to target: String, timeout: Duration, function: String, arguments: [Value] = [], port: PortID,
        callback: @escaping @Sendable (Handle) -> Void
    ) {
        onLoop { context in
            DataConnState.get(context).initiate(
                context, target: target, timeout: timeout, function: function, arguments: arguments, port: port
            ) { handle in
                handle.runOnLoop { callback(handle) }
            }
        }
    }

    /// Opens a data connection and returns the local handle. Perl: `connect_to` (async form).
    ///
    /// - Throws: ``DataConnError`` with the message Perl would put into the kill reason.
    public func dataConnection(
        to target: String, timeout: Duration, function: String, arguments: [Value] = []
    ) async throws(DataConnError) -> Handle {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Handle, DataConnError>, Never>) in
            onLoop { context in
                let once = ResumeOnce(continuation)
                // A private port stands for the caller's port context: its death carries the error.
                let port = context.makePort { _ in }
                _ = context.monitor(port) { reason in
                    once.resume(.failure(DataConnError(reason.values.count > 1 ? reason.values[1].stringValue : nil)))
                }
                DataConnState.get(context).initiate(
                    context, target: target, timeout: timeout, function: function, arguments: arguments, port: port
                ) { handle in
                    once.resume(.success(handle))
                    context.node.kill(port)
                }
            }
        }
        return try result.get()
    }
}

/// Resumes a continuation at most once.
final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    private var continuation: CheckedContinuation<T, Never>?
    init(_ continuation: CheckedContinuation<T, Never>) { self.continuation = continuation }
    /// Loop-confined: all calls come from the node's loop.
    func resume(_ value: T) {
        continuation?.resume(returning: value)
        continuation = nil
    }
}

/// The receivers of a node, registered from any thread and in place at once; creating it installs
/// the node-port functions of the protocol.
final class DataConnRegistry: Sendable {
    private let receivers = Mutex<[String: DataConnReceiver]>([:])

    static func get(_ node: Node) -> DataConnRegistry {
        node.extensionObject(DataConnProtocol.stateKey + ".receivers") {
            node.registerBuiltinFunction(DataConnProtocol.expect) { function, arguments in
                function.node.onLoop { context in
                    DataConnState.get(context).expect(context, arguments, from: function.sourceNode)
                }
            }
            node.registerBuiltinFunction(DataConnProtocol.connect) { function, arguments in
                function.node.onLoop { context in
                    DataConnState.get(context).dialBack(context, arguments)
                }
            }
            return DataConnRegistry()
        }
    }

    func set(_ name: String, _ receiver: DataConnReceiver?) {
        receivers.withLock { $0[name] = receiver }
    }

    func lookup(_ name: String) -> DataConnReceiver? {
        receivers.withLock { $0[name] }
    }
}

/// The per-node DataConn state, loop-confined.
final class DataConnState {
    struct Initiation {
        var target: NodeID
        var port: PortID
        var callback: @Sendable (Handle) -> Void
        var timer: Scheduled<Void>?
        var dialTimer: Scheduled<Void>?
    }

    struct Expectation {
        var port: PortID
        var function: String
        var arguments: [Value]
        var source: NodeID
        var timer: Scheduled<Void>?
        var dialTimer: Scheduled<Void>?
    }

    let registry: DataConnRegistry

    init(registry: DataConnRegistry) {
        self.registry = registry
    }
    var initiations: [String: Initiation] = [:]
    var expectations: [String: Expectation] = [:]

    /// The node's state, installing the protocol hooks the first time.
    static func get(_ context: NodeExtensionContext) -> DataConnState {
        context.state(DataConnProtocol.stateKey) {
            let state = DataConnState(registry: DataConnRegistry.get(context.node))
            state.install(context)
            return state
        }
    }

    private func install(_ context: NodeExtensionContext) {
        context.registerUpgrade(DataConnProtocol.greeting) { [unowned self] handle, result, id in
            self.connected(context, handle: handle, peer: result.peerNodeID, id: id)
        }
    }

    // MARK: Initiator (A)

    func initiate(
        _ context: NodeExtensionContext, target: String, timeout: Duration, function: String, arguments: [Value],
        port: PortID, callback: @escaping @Sendable (Handle) -> Void
    ) {
        guard let node = PortID(target)?.node ?? NodeID(target) else {
            context.kill(port, reason: .dataConn("\(target): not a node ID or port ID"))
            return
        }
        let local = context.node.nodeID
        if node == local {
            connectLocally(context, function: function, arguments: arguments, port: port, callback: callback)
            return
        }
        let id = "\(context.nextCounter())@\(local.rawValue)"
        var initiation = Initiation(target: node, port: port, callback: callback)
        initiation.timer = context.schedule(in: timeout) { [unowned self] in
            self.fail(context, id: id, "\(node): unable to establish connection within \(Self.seconds(timeout)) seconds")
        }
        initiations[id] = initiation
        let nodePort = PortID.nodePort(of: node)
        context.send(
            nodePort,
            [.text(DataConnProtocol.expect), .text(id), .text(port.description), Self.secondsValue(timeout), .text(function)]
                + arguments)
        // The relayed round trip guarantees `_expect` was processed before anything is dialled.
        var roundTrip: PortID?
        roundTrip = context.makePort { [unowned self] _ in
            if let roundTrip { context.kill(roundTrip, reason: .normal) }
            self.rendezvous(context, id: id)
        }
        context.send(nodePort, [.text("snd"), .text(roundTrip!.description)])
    }

    /// Spec §9.2 step 4: dial the target's listeners, or ask it to dial back.
    private func rendezvous(_ context: NodeExtensionContext, id: String) {
        guard let initiation = initiations[id] else { return }
        context.lookupListeners(of: initiation.target) { [unowned self] addresses in
            guard self.initiations[id] != nil else { return }
            if let addresses, !addresses.isEmpty {
                self.dial(context, id: id, addresses: addresses, index: 0)
            } else if !context.listenerAddresses.isEmpty {
                context.send(
                    PortID.nodePort(of: initiation.target),
                    [.text(DataConnProtocol.connect), .text(id), .text(context.node.nodeID.rawValue)])
            } else {
                self.fail(context, id: id, "\(initiation.target): no listeners found")
            }
        }
    }

    private func dial(_ context: NodeExtensionContext, id: String, addresses: [String], index: Int) {
        guard index < addresses.count, initiations[id] != nil else { return }
        context.dialUpgrade(address: addresses[index], protocolName: DataConnProtocol.greeting, dataConnID: id) {
            [unowned self] message in
            // The first dial that fails ends the rendezvous (spec §9.2 step 4).
            self.fail(context, id: id, message)
        }
        initiations[id]?.dialTimer = context.schedule(in: DataConnProtocol.dialInterval) { [unowned self] in
            self.dial(context, id: id, addresses: addresses, index: index + 1)
        }
    }

    private func fail(_ context: NodeExtensionContext, id: String, _ message: String) {
        guard let initiation = initiations.removeValue(forKey: id) else { return }
        initiation.timer?.cancel()
        initiation.dialTimer?.cancel()
        context.kill(initiation.port, reason: .dataConn(message))
    }

    /// Both ends on one node: a local socket pair (spec §9.3).
    private func connectLocally(
        _ context: NodeExtensionContext, function: String, arguments: [Value], port: PortID,
        callback: @escaping @Sendable (Handle) -> Void
    ) {
        guard let receiver = registry.lookup(function) else {
            context.kill(port, reason: .dataConn("\(function): undefined function"))
            return
        }
        var fds: [CInt] = [0, 0]
        #if canImport(Glibc)
        let type = CInt(SOCK_STREAM.rawValue)
        #else
        let type = SOCK_STREAM
        #endif
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            context.kill(port, reason: .dataConn("socketpair: \(String(cString: strerror(errno)))"))
            return
        }
        // On the data loop, like every data connection: the receiver and callback run there.
        let loop = context.dataLoop
        let local = Handle.make(socket: fds[0], group: loop)
        let remote = Handle.make(socket: fds[1], group: loop)
        let node = context.node
        local.and(remote).whenComplete { result in
            switch result {
            case .success(let (localHandle, remoteHandle)):
                localHandle.settleAsDataConnection()
                remoteHandle.settleAsDataConnection()
                receiver(FunctionContext(node: node, port: nil, sourceNode: node.nodeID), arguments, remoteHandle)
                callback(localHandle)
            case .failure(let error):
                node.kill(port, reason: .dataConn("\(error)"))
            }
        }
    }

    // MARK: Target (B)

    /// `_expect(id, port, timeout, initfunc, initdata...)`.
    func expect(_ context: NodeExtensionContext, _ arguments: [Value], from source: NodeID) {
        guard arguments.count >= 4, let id = arguments[0].stringValue,
            let port = arguments[1].stringValue.flatMap(PortID.init), let timeout = arguments[2].doubleValue,
            let function = arguments[3].stringValue
        else { return }
        var expectation = Expectation(port: port, function: function, arguments: Array(arguments.dropFirst(4)), source: source)
        expectation.timer = context.schedule(in: .milliseconds(Int64(max(timeout, 0) * 1000))) { [unowned self] in
            guard let expired = self.expectations.removeValue(forKey: id) else { return }
            context.kill(expired.port, reason: .dataConn(nil))
        }
        expectations[id] = expectation
    }

    /// `_connect(id, node)`: the initiator has listeners and we have none; dial it.
    func dialBack(_ context: NodeExtensionContext, _ arguments: [Value]) {
        guard arguments.count >= 2, let id = arguments[0].stringValue,
            let node = arguments[1].stringValue.flatMap(NodeID.init), expectations[id] != nil
        else { return }
        context.lookupListeners(of: node) { [unowned self] addresses in
            self.dialBack(context, id: id, addresses: addresses ?? [], index: 0)
        }
    }

    /// Dials the initiator's addresses like the initiator would: the first at once, then one every
    /// 2 seconds while the rendezvous is open. Failures are left to the initiator's timeout.
    private func dialBack(_ context: NodeExtensionContext, id: String, addresses: [String], index: Int) {
        guard index < addresses.count, expectations[id] != nil else { return }
        context.dialUpgrade(address: addresses[index], protocolName: DataConnProtocol.greeting, dataConnID: id) { _ in }
        expectations[id]?.dialTimer = context.schedule(in: DataConnProtocol.dialInterval) { [unowned self] in
            self.dialBack(context, id: id, addresses: addresses, index: index + 1)
        }
    }

    // MARK: Both

    /// A DataConn handshake completed: hand the handle to whoever waits for `id`.
    private func connected(_ context: NodeExtensionContext, handle: Handle, peer: NodeID, id: String?) {
        guard let id else {
            handle.destroy()
            return
        }
        if let initiation = initiations.removeValue(forKey: id), initiation.target == peer {
            initiation.timer?.cancel()
            initiation.dialTimer?.cancel()
            context.trackDataConnection(handle)
            handle.runOnLoop { handle.settleAsDataConnection() }
            initiation.callback(handle)
        } else if let expectation = expectations.removeValue(forKey: id), expectation.source == peer {
            expectation.timer?.cancel()
            expectation.dialTimer?.cancel()
            guard let receiver = registry.lookup(expectation.function) else {
                handle.destroy()
                return
            }
            let function = FunctionContext(node: context.node, port: nil, sourceNode: peer)
            let arguments = expectation.arguments
            context.trackDataConnection(handle)
            handle.runOnLoop {
                handle.settleAsDataConnection()
                receiver(function, arguments, handle)
            }
        } else {
            // A late or unknown rendezvous: nobody wants this connection.
            handle.destroy()
        }
    }

    static func secondsValue(_ duration: Duration) -> Value {
        let (seconds, attoseconds) = duration.components
        return attoseconds == 0 ? .int(seconds) : .float(Double(seconds) + Double(attoseconds) / 1e18)
    }

    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return attoseconds == 0 ? String(seconds) : String(Double(seconds) + Double(attoseconds) / 1e18)
    }
}

extension Handle {
    /// Loop only, before the user sees the handle: keeps it open until destroyed, and caps its send
    /// buffer when the peer is on this machine over TCP (``DataConnProtocol/sameHostSendBuffer``).
    fileprivate func settleAsDataConnection() {
        keepOpenUntilDestroyed()
        guard let channel, DataConnProtocol.isSameHost(local: channel.localAddress, remote: channel.remoteAddress)
        else { return }
        // Best effort: the connection works the same without it.
        try? channel.syncOptions?.setOption(.socketOption(.so_sndbuf), value: SocketOptionValue(DataConnProtocol.sameHostSendBuffer))
    }

    /// Runs `body` on the handle's loop: at once when already there (the connection came in on the
    /// node's loop), else as a task there (a connection on the node's data loop).
    fileprivate func runOnLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop {
            body()
        } else {
            eventLoop.execute(body)
        }
    }
}
