import AEMPCodecs
import AEMPHandle
import AEMPSocket
import DequeModule
import Logging
import NIOCore
import Synchronization

/// What a monitor does when its port dies. Perl: the forms of `mon`.
enum MonitorAction: Sendable {
    /// `mon $port, $cb`: call with the reason.
    case callback(@Sendable (KillReason) -> Void)
    /// `mon $port, $otherport` (and `mon $port` = `$SELF`): kill `other` with the reason, only when the
    /// reason is not a normal kill.
    case kill(PortID)
    /// `mon $port, $rcvport, @msg`: send `@msg, @reason` to the port.
    case send(PortID, [Value])
}

/// A port living on this node.
final class LocalPort {
    var defaultCallback: PortCallback?
    var tagCallbacks: [String: PortCallback] = [:]
    /// Local monitors, fired in registration order.
    var monitors: [UInt64: MonitorAction] = [:]
    /// Nodes that sent `mon1` for this port.
    var remoteWatchers: Set<NodeID> = []

    init(callback: PortCallback?) {
        self.defaultCallback = callback
    }
}

/// The loop-confined state of a ``Node``: ports, monitors, the kernel and the known nodes.
///
/// Everything here runs on ``eventLoop``; the ``Node`` facade hops there.
final class NodeCore {
    let nodeID: NodeID
    let eventLoop: any EventLoop
    /// When the node was created, seconds since 1970 (``NodeSummary/startedAt``).
    let startedAt = Int64(NodeCore.secondsSinceEpoch())
    /// The group the node's data connections go to (`Node.start`'s `dataGroup`; `nil`:
    /// `Node.defaultDataGroup`).
    private let dataGroup: (any EventLoopGroup)?
    /// Where the node's data connections live: a loop of the data group other than ``eventLoop`` when
    /// the group has one, so that a bulk transfer does not hold up the node's messages. Chosen on
    /// first use, so a node that never makes a data connection never starts the default group.
    private(set) lazy var dataLoop: any EventLoop = {
        let group = dataGroup ?? Node.defaultDataGroup
        let candidate = group.next()
        return candidate === eventLoop ? group.next() : candidate
    }()
    var configuration: NodeConfiguration
    var logger: Logger
    unowned(unsafe) var facade: Node!

    // The properties used per message are declared `@exclusivity(unchecked)`: touched on the loop
    // only, one access at a time, they need no dynamic exclusivity checks (see HandleCore).
    @exclusivity(unchecked) var ports: [String: LocalPort] = [:]
    @exclusivity(unchecked) var remotes: [NodeID: RemoteNode] = [:]
    /// The remote node found last by ``remote(_:)``: consecutive messages mostly go to the same
    /// node, and comparing one ID is cheaper than hashing it. Cleared when that entry leaves.
    @exclusivity(unchecked) var lastRemote: RemoteNode?
    /// The port found last by ``port(named:)``, with its name. Cleared when that port is removed.
    @exclusivity(unchecked) var lastPort: (name: String, port: LocalPort)?
    var nodeMonitors: [UInt64: @Sendable (NodeID, Bool, KillReason) -> Void] = [:]
    /// Named functions; shared with the facade so that registrations take effect at once.
    let functions: FunctionTable
    /// Ports created off the loop whose creation has not reached the loop yet.
    let pendingPorts = PendingPorts()
    var evaluator: (@Sendable (String) -> Result<[Value], EvalError>)?
    var nextMonitorID: UInt64 = 0
    var isShutDown = false
    /// ``NodeConfiguration/busyPoll`` when it is on, read once (the message path checks it).
    let busyPollWindow: TimeAmount?
    /// Busy polling (``NodeConfiguration/busyPoll``): the loop polls until this deadline.
    var busyPollUntil = NIODeadline.uptimeNanoseconds(0)
    /// A busy-poll task is queued on the loop.
    var busyPolling = false
    /// A graceful shutdown is under way: no accepting, no reconnecting.
    var isStopping = false
    /// Succeeded when the node has shut down (``Node/run()``).
    lazy var terminated: EventLoopPromise<Void> = eventLoop.makePromise()

    // Network state (NodeCore+Network.swift).
    var servers: [TCPServer] = []
    /// The concrete listener addresses (`ip:port`), published as family `'l`.
    var listenerAddresses: [String] = []
    var seeds: [SeedState] = []
    /// Addresses learned from seeds and lookups.
    var knownAddresses: [NodeID: [String]] = [:]
    /// Handshakes not attached yet.
    var pending: [ObjectIdentifier: (TransportConnection, ConnectionPurpose)] = [:]
    var upgradeHandlers: [String: ProtocolUpgradeHandler] = [:]
    /// Connect attempts in progress (their guards keep them alive).
    var dialGuards: [UInt64: TCPConnectGuard] = [:]
    /// Protocol upgrade dials in progress on ``dataLoop``, with whom to tell when one fails.
    var upgradeDials: [UInt64: (dial: UpgradeDial, failed: (String) -> Void)] = [:]
    var dialCounter: UInt64 = 0
    /// Outgoing connect attempts and failed handshakes by category (``NodeStatistics``).
    var connectionAttempts: UInt64 = 0
    var handshakeFailures: [String: UInt64] = [:]
    lazy var metricsReporter = NodeMetricsReporter(node: nodeID)
    /// Data connections handed to their users, and the counts of those already closed.
    var dataConnections: [(handle: WeakHandle, totals: HandleTotals)] = []
    var dataConnectionsOpened: UInt64 = 0
    var closedDataConnectionBytes: (sent: UInt64, received: UInt64) = (0, 0)
    /// The traffic of anonymous nodes that were forgotten (``retireIfIdle(_:)``).
    var retiredAnonymousTraffic = Traffic()
    var metricsTimer: RepeatedTask?
    var tlsContext: TLSContext?
    /// State of protocol extensions (DataConn), by name.
    var extensionState: [String: AnyObject] = [:]
    /// Address lookups waiting for `g_found`.
    var addressWaiters: [NodeID: [([String]?) -> Void]] = [:]

    // Database state (NodeCore+Database.swift).
    let database: DatabaseClient
    /// Nodes the database wants connected (global nodes), and their reconnect timers.
    var keptConnections: Set<NodeID> = []
    var keptConnectionTimers: [NodeID: Scheduled<Void>] = [:]
    var databaseQueries: [DatabaseRequestID: (Result<DatabaseQueryResult, CallError>) -> Void] = [:]
    var databaseMonitors: [UInt64: (id: DatabaseMonitorID, callback: @Sendable (DatabaseChange) -> Void)] = [:]

    /// Messages to local ports, delivered on the next loop tick in order.
    @exclusivity(unchecked) var localQueue: Deque<LocalDelivery> = []
    var localDrainScheduled = false


    /// Work for the local queue: a message for a local port, or a step that must come after the
    /// messages sent before it (a monitor of a port that a queued `spawn` may still create).
    enum LocalDelivery {
        case message(name: String, [Value], source: NodeID)
        case step(() -> Void)
    }

    /// Monitors of local ports that did not exist yet when registered, checked in queue order.
    var deferredMonitors: [UInt64: (String, MonitorAction)] = [:]

    init(
        nodeID: NodeID, eventLoop: any EventLoop, dataGroup: (any EventLoopGroup)?, configuration: NodeConfiguration,
        logger: Logger, functions: FunctionTable
    ) {
        self.dataGroup = dataGroup
        self.functions = functions
        self.nodeID = nodeID
        self.database = DatabaseClient(localNode: nodeID)
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.busyPollWindow = configuration.busyPoll > .zero ? configuration.busyPoll.timeAmount : nil
        self.logger = logger
        self.logger[metadataKey: "aemp.node"] = "\(nodeID)"
    }

    func makeMonitorID() -> UInt64 {
        nextMonitorID += 1
        return nextMonitorID
    }

    // MARK: Ports

    func createPort(name: String, callback: PortCallback?) {
        guard !isShutDown else { return }
        if lastPort?.name == name { lastPort = nil }
        ports[name] = LocalPort(callback: callback)
    }

    /// A live local port, adopting one created off the loop whose creation hop has not run yet (a
    /// message or `mon1` for it may arrive through another loop before that hop).
    func port(named name: String) -> LocalPort? {
        // Consecutive messages mostly go to the same port: comparing its name (two words for a
        // short one) is cheaper than hashing it.
        if let last = lastPort, last.name == name { return last.port }
        if let port = ports[name] {
            lastPort = (name, port)
            return port
        }
        guard let pending = pendingPorts.take(name), !isShutDown else { return nil }
        let port = LocalPort(callback: pending)
        ports[name] = port
        return port
    }

    func setCallback(port name: String, tag: String?, callback: PortCallback?) {
        guard let port = port(named: name) else { return }
        if let tag {
            port.tagCallbacks[tag] = callback
        } else {
            port.defaultCallback = callback
        }
    }

    /// Perl: `snd`. Local ports get the message on the next tick; remote ones through their node.
    func send(to port: PortID, _ message: [Value], source: NodeID? = nil) {
        guard !isShutDown else { return }
        if port.node == nodeID {
            enqueueLocal(.message(name: port.name, message, source: source ?? nodeID))
        } else {
            remote(port.node).send(portName: port.name, message)
        }
    }

    func enqueueLocal(_ work: LocalDelivery) {
        localQueue.append(work)
        if !localDrainScheduled {
            localDrainScheduled = true
            eventLoop.assumeIsolatedUnsafeUnchecked().execute { self.drainLocal() }
        }
    }

    func drainLocal() {
        localDrainScheduled = false
        // Messages queued by the callbacks below are delivered in this same drain, in order.
        while !isShutDown, let work = localQueue.popFirst() {
            switch work {
            case .message(let name, let message, let source):
                deliver(name: name, message, source: source)
            case .step(let body):
                body()
            }
        }
    }

    /// Hands one message to a local port (or the kernel for the node port).
    func deliver(name: String, _ message: [Value], source: NodeID) {
        if name.isEmpty {
            handleNodeMessage(message, from: source)
            return
        }
        // Unknown ports drop their messages silently (spec §5.1).
        guard let port = port(named: name) else { return }
        let id = PortID(node: nodeID, name: name)
        if !port.tagCallbacks.isEmpty, let tag = message.first?.stringValue, let callback = port.tagCallbacks[tag] {
            run(callback, port: id, source: source, Array(message.dropFirst()))
        } else if let callback = port.defaultCallback {
            run(callback, port: id, source: source, message)
        } else {
            kill(name: name, reason: .unhandledMessage(firstElement: message.first))
        }
    }

    private func run(_ callback: PortCallback, port: PortID, source: NodeID, _ message: [Value]) {
        runInPort(port.name) { try callback(PortContext(node: facade, port: port, sourceNode: source), message) }
    }

    /// Runs code in a port's context: a throw kills the port with `("die", text)` (Perl: `peval`).
    func runInPort(_ name: String, _ body: () throws -> Void) {
        do {
            try body()
        } catch {
            kill(name: name, reason: .die(Self.errorText(error)))
        }
    }

    static func errorText(_ error: any Error) -> String {
        String(describing: error)
    }

    /// Perl: `kil $port, @reason`.
    func kill(_ port: PortID, reason: KillReason) {
        guard !isShutDown else { return }
        if port.node == nodeID {
            kill(name: port.name, reason: reason)
        } else if !port.name.isEmpty {
            remote(port.node).send(portName: "", [.text("kil1"), .text(port.name)] + reason.values)
        }
    }

    /// Kills a local port: removes it, then runs its monitors (local, then remote watchers).
    func kill(name: String, reason: KillReason) {
        guard self.port(named: name) != nil, let port = ports.removeValue(forKey: name) else { return }
        if lastPort?.port === port { lastPort = nil }
        if port.monitors.isEmpty, port.remoteWatchers.isEmpty, !reason.isNormal {
            logger.info("unmonitored local port \(name) died with reason: \(reason)")
        }
        if !port.monitors.isEmpty { observe(.portDied(PortID(node: nodeID, name: name), reason)) }
        for id in port.monitors.keys.sorted() {
            fire(port.monitors[id]!, reason)
        }
        for watcher in port.remoteWatchers.sorted() {
            if let remote = remotes[watcher], remote.isUp {
                remote.send(portName: "", [.text("kil0"), .text(name)] + reason.values)
            }
        }
        portDied(PortID(node: nodeID, name: name))
    }

    /// Hook for the database (`db_reg`) and extensions: a local port died.
    func portDied(_ port: PortID) {
        databasePortDied(port)
    }

    func fire(_ action: MonitorAction, _ reason: KillReason) {
        switch action {
        case .callback(let callback):
            callback(reason)
        case .kill(let other):
            if !reason.isNormal { kill(other, reason: reason) }
        case .send(let port, let message):
            send(to: port, message + reason.values)
        }
    }

    // MARK: Monitors

    /// Perl: `mon`. Returns the key that cancels it.
    func monitor(_ port: PortID, _ action: MonitorAction) -> MonitorKey? {
        guard !isShutDown else { return nil }
        let id = makeMonitorID()
        if port.node == nodeID {
            if port.name.isEmpty { return nil }  // the own node port never dies
            guard let local = self.port(named: port.name) else {
                // Like a remote `mon1`, checked after the messages sent before it (one of them may be
                // the `spawn` that creates the port); a port missing then is reported as no_such_port.
                deferredMonitors[id] = (port.name, action)
                enqueueLocal(.step {
                    guard let (name, action) = self.deferredMonitors.removeValue(forKey: id) else { return }
                    if let local = self.port(named: name) {
                        local.monitors[id] = action
                    } else {
                        self.fire(action, .noSuchPort(port))
                    }
                })
                return .local(name: port.name, id: id)
            }
            local.monitors[id] = action
            return .local(name: port.name, id: id)
        }
        let remote = remote(port.node)
        remote.addMonitor(portName: port.name, id: id, action)
        return .remote(node: port.node, portName: port.name, id: id)
    }

    func cancel(_ key: MonitorKey) {
        switch key {
        case .local(let name, let id):
            port(named: name)?.monitors[id] = nil
            deferredMonitors[id] = nil
        case .remote(let node, let portName, let id):
            remotes[node]?.removeMonitor(portName: portName, id: id)
        case .nodes(let id):
            nodeMonitors[id] = nil
        case .database(let id):
            databaseCancel(id)
        }
    }

    /// Perl: `mon_nodes`.
    func monitorNodes(_ callback: @escaping @Sendable (NodeID, Bool, KillReason) -> Void) -> MonitorKey {
        let id = makeMonitorID()
        nodeMonitors[id] = callback
        return .nodes(id: id)
    }

    func announce(node: NodeID, up: Bool, reason: KillReason) {
        for id in nodeMonitors.keys.sorted() {
            nodeMonitors[id]?(node, up, reason)
        }
    }

    // MARK: Node state

    /// Perl: `node_is_up`.
    func state(of node: NodeID) -> NodeState? {
        if node == nodeID { return .up }
        guard let remote = remotes[node] else { return nil }
        return remote.isUp ? .up : .known
    }

    /// Perl: `up_nodes`.
    var upNodes: [NodeID] {
        remotes.values.filter(\.isUp).map(\.nodeID).sorted()
    }
}

/// What cancels a registration made on the loop.
package enum MonitorKey: Sendable {
    case local(name: String, id: UInt64)
    case remote(node: NodeID, portName: String, id: UInt64)
    case nodes(id: UInt64)
    case database(id: UInt64)
}

extension NodeCore {
    /// Starts the network side after the listeners are open.
    func start() {
        databaseStart()
        startSeeds()
        startMetrics()
    }

    /// Builds the TLS context from the configured certificate.
    func prepareTLS() throws {
        tlsContext = nil
        if let certificate = configuration.certificate {
            do {
                tlsContext = try TLSContext.aempNode(certificatePEM: certificate)
            } catch {
                throw NodeError("cannot use the configured certificate: \(error)")
            }
        }
    }

    /// Perl has no shutdown; ours closes everything without firing monitors (the graceful one kills
    /// the ports first, NodeCore+Lifecycle.swift).
    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        metricsTimer?.cancel()
        metricsTimer = nil
        reportMetrics()
        shutdownNetwork()
        for timer in keptConnectionTimers.values { timer.cancel() }
        keptConnectionTimers.removeAll()
        let queries = databaseQueries.values
        databaseQueries.removeAll()
        for query in queries { query(.failure(.nodeShutDown)) }
        databaseMonitors.removeAll()
        ports.removeAll()
        lastPort = nil
        nodeMonitors.removeAll()
        localQueue.removeAll()
        deferredMonitors.removeAll()
        terminated.succeed()
    }
}

/// The functions other nodes may call by name, readable on the loop and writable from anywhere, so a
/// registration is in place as soon as the registering call returns (even for a request that another
/// node's loop sends right after).
final class FunctionTable: Sendable {
    private let table = Mutex<[String: (body: NodeFunction, builtin: Bool)]>([:])

    func lookup(_ name: String) -> (body: NodeFunction, builtin: Bool)? {
        table.withLock { $0[name] }
    }

    func set(_ name: String, _ body: NodeFunction?, builtin: Bool = false) {
        table.withLock { $0[name] = body.map { ($0, builtin) } }
    }
}

/// Ports announced by ``Node/port(_:)`` off the loop and not yet created on it.
final class PendingPorts: Sendable {
    private let table = Mutex<[String: PortCallback?]>([:])

    func add(_ name: String, _ callback: PortCallback?) {
        table.withLock { $0[name] = .some(callback) }
    }

    /// Removes and returns the callback of a pending port (`nil` if it is not pending).
    func take(_ name: String) -> PortCallback?? {
        table.withLock { $0.removeValue(forKey: name) }
    }
}
