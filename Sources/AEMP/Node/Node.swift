import AEMPCodecs
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// A node of an AEMP network: it owns ports, talks to other nodes (Swift or Perl AnyEvent::MP 2.x),
/// and runs the kernel. Perl: `AnyEvent::MP` (`configure` and its exports) and `AnyEvent::MP::Kernel`.
///
/// A node lives on one event loop. Every callback (port callbacks, monitors, node monitors, called
/// functions) runs there, one at a time, as in AnyEvent. The methods may be called from any thread or
/// task: off the loop they hop onto it, keeping the order of calls made from one thread.
///
/// ```swift
/// let node = try await Node.start(NodeConfiguration(nodeID: "echo", binds: ["127.0.0.1:4040"],
///                                                   secret: "s3cr3t"))
/// let echo = node.port { context, message in
///     // reply to the port given as first element with the rest of the message
///     if let reply = message.first?.stringValue.flatMap(PortID.init) {
///         context.node.send(reply, Array(message.dropFirst()))
///     }
/// }
/// print(echo)   // echo#…
/// ```
public final class Node: Sendable {
    /// This node's ID. Perl: `$NODE` / `NODE`.
    public let nodeID: NodeID
    /// The loop every callback of this node runs on.
    public let eventLoop: any EventLoop
    /// The addresses the node listens on (`ip:port`, wildcards and ephemeral ports resolved), as
    /// published to other nodes (spec §1.3).
    public let listenerAddresses: [String]
    /// The settings the node was started with.
    public let configuration: NodeConfiguration

    let bound: NIOLoopBound<NodeCore>
    let names: Mutex<PortNameGenerator>
    let functions: FunctionTable
    let pendingPorts: PendingPorts
    /// Per-node objects of protocol extensions (DataConn), by name.
    let extensionObjects = Mutex<[String: any AnyObject & Sendable]>([:])

    private init(core: NodeCore, names: PortNameGenerator, listenerAddresses: [String]) {
        self.nodeID = core.nodeID
        self.eventLoop = core.eventLoop
        self.configuration = core.configuration
        self.listenerAddresses = listenerAddresses
        self.bound = NIOLoopBound(core, eventLoop: core.eventLoop)
        self.names = Mutex(names)
        self.functions = core.functions
        self.pendingPorts = core.pendingPorts
    }

    /// Starts a node: works out its node ID, opens its listeners, and starts connecting to its seeds.
    ///
    /// Perl: `configure`. A configuration without `nodeID` gets an anonymous ID (`anon/<random>`);
    /// a node ID template expands `%n` (host name), `%u` and a trailing `/` (random) as in Perl.
    ///
    /// - Parameters:
    ///   - configuration: the node's settings (spec §10).
    ///   - group: where to find the node's event loop.
    ///   - dataGroup: where data connections (AEMPDataConn) live: the node keeps them on one loop of
    ///     this group (not its own loop, unless the group has no other). `nil` (the default) is
    ///     ``defaultDataGroup``, whose threads run at background priority, so that the node's loop
    ///     gets a core at once when a message arrives while transfers keep every core busy. Pass
    ///     ``makeDataGroup(numberOfThreads:priority:)`` for another priority, or `group` itself to
    ///     keep data connections on the node's own threads.
    ///   - logger: where node up/down, connection errors and seed activity are logged (never message
    ///     contents or secrets).
    /// - Returns: the running node.
    /// - Throws: ``NodeError`` for an invalid node ID or bind, or a listener that cannot be opened.
    public static func start(
        _ configuration: NodeConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        dataGroup: (any EventLoopGroup)? = nil,
        logger: Logger = Logger(label: "aemp.node")
    ) async throws -> Node {
        let runiq = RemoteUnique.generate()
        let identity: (nodeID: NodeID, randomised: Bool)
        if let template = configuration.nodeID {
            do {
                identity = try NodeID.expand(
                    template: template, profile: NodeID.hostName(), hostname: NodeID.hostName(), runiq: runiq)
            } catch {
                throw NodeError("invalid node ID: \(error)")
            }
        } else {
            identity = (NodeID.anonymous(runiq: runiq), true)
        }
        let names = PortNameGenerator(nodeIDRandomised: identity.randomised, runiq: runiq)
        let loop = group.next()
        return try await loop.submit {
            let core = NodeCore(
                nodeID: identity.nodeID, eventLoop: loop, dataGroup: dataGroup, configuration: configuration,
                logger: logger, functions: FunctionTable())
            do {
                try core.prepareTLS()
                try core.listen()
            } catch {
                core.shutdownNetwork()
                throw error
            }
            let node = Node(core: core, names: names, listenerAddresses: core.listenerAddresses)
            core.facade = node
            core.start()
            return node
        }.get()
    }

    /// Stops the node at once: closes listeners and connections, drops ports and monitors without
    /// firing them and messages still queued. Calls made afterwards are ignored. To let peers know
    /// and queued messages leave first, use ``shutdown(gracePeriod:reason:)``.
    public func shutdown() async {
        try? await eventLoop.submit { self.bound.value.shutdown() }.get()
    }

    /// Runs `body` on the node's loop: at once when already there, otherwise later.
    func perform(_ body: @escaping @Sendable (NodeCore) -> Void) {
        if eventLoop.inEventLoop {
            body(bound.value)
        } else {
            let bound = self.bound
            eventLoop.execute { body(bound.value) }
        }
    }

    /// Runs `body` on the loop and returns its result.
    func evaluate<T: Sendable>(_ body: @escaping @Sendable (NodeCore) -> T) async -> T {
        if eventLoop.inEventLoop { return body(bound.value) }
        let bound = self.bound
        return try! await eventLoop.submit { body(bound.value) }.get()
    }

    // MARK: Ports

    /// Creates a port with a callback for every message. Perl: `port { ... }`.
    ///
    /// - Parameter callback: called with each message; throwing kills the port with `("die", text)`.
    /// - Returns: the new port's ID; its name is never reused.
    public func port(_ callback: @escaping PortCallback) -> PortID {
        makePort(callback)
    }

    /// Creates a port without callbacks; set them with ``receive(_:_:)``. Perl: `port`.
    ///
    /// A message arriving while the port has no matching callback kills it with
    /// `("unhandled_message", ...)`.
    /// - Returns: the new port's ID.
    public func port() -> PortID {
        makePort(nil)
    }

    /// Creates the port at once on the loop; off the loop it is announced in a shared table first, so
    /// that it exists for messages arriving through other loops before the creation hop runs.
    private func makePort(_ callback: PortCallback?) -> PortID {
        let id = PortID(node: nodeID, name: names.withLock { $0.nextLocalName() })
        if eventLoop.inEventLoop {
            bound.value.createPort(name: id.name, callback: callback)
        } else {
            pendingPorts.add(id.name, callback)
            perform { core in
                // Unless a message or monitor adopted it meanwhile.
                if let pending = core.pendingPorts.take(id.name) { core.createPort(name: id.name, callback: pending) }
            }
        }
        return id
    }

    /// Sets the callback for messages no tag callback takes. Perl: `rcv $port, $cb`.
    ///
    /// - Parameters:
    ///   - port: a local port.
    ///   - callback: the callback, or `nil` to remove it.
    public func receive(_ port: PortID, _ callback: PortCallback?) {
        perform { $0.setCallback(port: port.name, tag: nil, callback: callback) }
    }

    /// Sets the callback for messages whose first element is `tag`; it gets the elements after the tag.
    /// Perl: `rcv $port, tag => $cb`.
    ///
    /// - Parameters:
    ///   - port: a local port.
    ///   - tag: the first element to match.
    ///   - callback: the callback, or `nil` to remove the tag.
    public func receive(_ port: PortID, tag: String, _ callback: PortCallback?) {
        perform { $0.setCallback(port: port.name, tag: tag, callback: callback) }
    }

    /// Sends a message to a port on this or another node, connecting first if needed. Fire and forget:
    /// a message for a port that does not exist vanishes; a lost connection is reported to monitors.
    /// Perl: `snd $port, @msg`.
    ///
    /// - Parameters:
    ///   - port: the destination.
    ///   - message: the message elements.
    public func send(_ port: PortID, _ message: [Value]) {
        // `perform` spelled out: on the loop, no closure is made for the message path.
        if eventLoop.inEventLoop {
            bound.value.send(to: port, message)
        } else {
            let bound = self.bound
            eventLoop.execute { bound.value.send(to: port, message) }
        }
    }

    /// Sends a message given as separate elements. Perl: `snd $port, @msg`.
    public func send(_ port: PortID, _ message: Value...) {
        send(port, message)
    }

    /// Kills a port with a reason (normal when empty). Perl: `kil $port, @reason`.
    ///
    /// - Parameters:
    ///   - port: a local or remote port.
    ///   - reason: why; its monitors get it.
    public func kill(_ port: PortID, reason: KillReason = .normal) {
        perform { $0.kill(port, reason: reason) }
    }

    // MARK: Monitors

    /// Calls `callback` once when `port` dies, with the reason. Perl: `mon $port, $cb`.
    ///
    /// A lost connection to the port's node fires it with `("transport_error", node, message)`; a port
    /// that does not exist fires it with `("no_such_port", ...)`.
    /// - Returns: a guard; cancelling it or dropping the last reference removes the monitor.
    public func monitor(_ port: PortID, _ callback: @escaping @Sendable (KillReason) -> Void) -> MonitorGuard {
        register(port, .callback(callback))
    }

    /// Kills `other` with the same reason when `port` dies abnormally. Perl: `mon $port, $otherport`
    /// (and `mon $port` inside a callback, with `$SELF`).
    public func monitor(_ port: PortID, killing other: PortID) -> MonitorGuard {
        register(port, .kill(other))
    }

    /// Sends `message` followed by the kill reason to `receiver` when `port` dies.
    /// Perl: `mon $port, $rcvport, @msg`.
    public func monitor(_ port: PortID, sending message: [Value], to receiver: PortID) -> MonitorGuard {
        register(port, .send(receiver, message))
    }

    /// Keeps `objects` alive until `port` dies. Perl: `mon_guard $port, @refs`.
    public func keepAlive(_ objects: [any AnyObject & Sendable], whileAlive port: PortID) -> MonitorGuard {
        register(port, .callback { _ in _ = objects })
    }

    private func register(_ port: PortID, _ action: MonitorAction) -> MonitorGuard {
        let guardObject = MonitorGuard(node: self)
        let attach = guardObject.attach
        perform { core in attach(core.monitor(port, action)) }
        return guardObject
    }

    /// Calls `callback` for every node that comes up (`true`) or goes down (`false`, with the reason).
    /// Perl: `mon_nodes $cb->($node, $is_up, @reason)`.
    ///
    /// Up and down events for one node alternate, starting with up. The callback must not block.
    /// - Returns: a guard; cancelling it or dropping it stops the events.
    public func monitorNodes(_ callback: @escaping @Sendable (NodeID, Bool, KillReason) -> Void) -> MonitorGuard {
        let guardObject = MonitorGuard(node: self)
        let attach = guardObject.attach
        perform { core in attach(core.monitorNodes(callback)) }
        return guardObject
    }

    // MARK: Kernel

    /// Whether a node is connected. Perl: `node_is_up`.
    ///
    /// - Returns: ``NodeState/up``, ``NodeState/known`` (known but not connected), or `nil` (unknown;
    ///   also an anonymous node that went down: it is forgotten, see ``NodeStatistics/retiredAnonymousTraffic``).
    public func state(of node: NodeID) async -> NodeState? {
        await evaluate { $0.state(of: node) }
    }

    /// The nodes connected now. Perl: `up_nodes`.
    public func upNodes() async -> [NodeID] {
        await evaluate { $0.upNodes }
    }

    /// Registers a function other nodes may call by name (`snd_to_func`, `spawn`, node-port tags).
    ///
    /// Perl looks the name up as a Perl function; a Swift node calls only what was registered here.
    /// Names are usually Perl-style, e.g. `"MyApp::start_worker"`. In secure mode, remote calls are refused.
    /// The registration is in place when this returns.
    /// - Parameters:
    ///   - name: the name callers use.
    ///   - body: the function, or `nil` to remove it.
    public func registerFunction(_ name: String, _ body: NodeFunction?) {
        functions.set(name, body)
    }

    /// Sets how this node answers `eval_on` requests. Perl evaluates Perl code; a Swift node refuses by
    /// default (the reply carries an error text in the `$@` position).
    ///
    /// - Parameter evaluator: turns the code into reply values or an error; `nil` restores refusal.
    public func setEvaluator(_ evaluator: (@Sendable (String) -> Result<[Value], EvalError>)?) {
        perform { $0.evaluator = evaluator }
    }

    /// Calls a named function on a node with arguments. Perl: `snd_to_func $node, $func, @args`.
    public func sendToFunction(on node: NodeID, _ function: String, _ arguments: [Value]) {
        send(PortID.nodePort(of: node), [.text(function)] + arguments)
    }

    /// Makes another node send a message. Perl: `snd_on $node, @msg` (the first element is a port ID).
    public func sendOn(_ node: NodeID, _ message: [Value]) {
        send(PortID.nodePort(of: node), [.text("snd")] + message)
    }

    /// Asks a node to evaluate code; with `reply`, the result comes back as
    /// `[reply[1...]..., error-or-empty, results...]` to the port `reply[0]`. Perl: `eval_on`.
    public func evalOn(_ node: NodeID, _ code: String, reply: [Value] = []) {
        send(PortID.nodePort(of: node), [.text("eval"), .text(code)] + reply)
    }

    /// Creates a port on `node` and runs the registered function there in that port's context.
    /// Perl: `spawn $node, $initfunc, @args`. The port ID is returned at once (the caller picks the name).
    public func spawn(on node: NodeID, function: String, arguments: [Value] = []) -> PortID {
        let name = names.withLock { $0.nextRemoteName() }
        sendToFunction(on: node, NodeCore.spawnFunction, [.text(name), .text(function)] + arguments)
        return PortID(node: node, name: name)
    }
}

/// Undoes a registration (a monitor, a node monitor, a database monitor) when cancelled or dropped.
/// Perl: the guard returned by `mon`, `mon_nodes`, `db_mon`.
public final class MonitorGuard: Sendable {
    private let node: Node
    private let registration: Registration

    /// The key of the registration and whether it was cancelled; shared with the hop that registers,
    /// so that the guard itself is not kept alive by it.
    final class Registration: Sendable {
        let state = Mutex<(key: MonitorKey?, cancelled: Bool)>((nil, false))
    }

    init(node: Node) {
        self.node = node
        self.registration = Registration()
    }

    /// Called on the loop once the registration exists.
    var attach: @Sendable (MonitorKey?) -> Void {
        let registration = self.registration
        let node = self.node
        return { key in
            let cancelNow = registration.state.withLock { state -> Bool in
                state.key = key
                return state.cancelled
            }
            if cancelNow, let key { node.perform { $0.cancel(key) } }
        }
    }

    /// Removes the registration; later calls do nothing.
    public func cancel() {
        let key = registration.state.withLock { state -> MonitorKey? in
            if state.cancelled { return nil }
            state.cancelled = true
            return state.key
        }
        if let key { node.perform { $0.cancel(key) } }
    }

    deinit {
        cancel()
    }
}
