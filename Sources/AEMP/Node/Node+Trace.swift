import AEMPCodecs

/// One node as ``Node/traceNetwork(from:timeout:limit:)`` found it.
public struct TracedNode: Sendable, Hashable {
    /// Whether the node answered.
    public enum Status: Sendable, Hashable {
        /// It answered a `time` request.
        case reachable
        /// It did not: the transport error (e.g. `connect timeout (last attempt: ...)`) or
        /// `no reply within <timeout>`.
        case unreachable(String)
        /// Other nodes say they are connected to it, but it has no listener in the global database
        /// (a client such as an `aemp` command): nobody can dial it, so it was not asked.
        case noListener
    }

    /// The node's own list of the nodes it is connected to.
    public enum Connections: Sendable, Hashable {
        /// What it answered (without the tracing node).
        case known([NodeID])
        /// Why it gave no list: `secure mode` (it answered `time` but not `eval`, as a node in
        /// secure mode does), or the error text its `eval` answered with.
        case unknown(String)
    }

    /// The node.
    public var nodeID: NodeID
    /// Whether it answered.
    public var status: Status
    /// Its greeting's `provider`, when the tracing node got a greeting from it.
    public var provider: String?
    /// Which software it runs (from ``provider``).
    public var implementation: NodeImplementation
    /// Whether it is a global node (in the database's `'g` family, or announced by `g_global`).
    public var isGlobal: Bool
    /// Its listener addresses from the database's `'l` family (`nil` when not listed there).
    public var listeners: [String]?
    /// Its connections; `nil` unless it is ``Status/reachable``.
    public var connections: Connections?
    /// The traced nodes that listed this node among their connections, in trace order.
    public var seenBy: [NodeID]

    /// Creates a traced node.
    ///
    /// - Parameters:
    ///   - nodeID: the node.
    ///   - status: whether it answered.
    ///   - provider: its greeting's provider.
    ///   - isGlobal: whether it is a global node.
    ///   - listeners: its listener addresses.
    ///   - connections: its connections.
    ///   - seenBy: the nodes that listed it.
    public init(
        nodeID: NodeID, status: Status, provider: String? = nil, isGlobal: Bool = false, listeners: [String]? = nil,
        connections: Connections? = nil, seenBy: [NodeID] = []
    ) {
        self.nodeID = nodeID
        self.status = status
        self.provider = provider
        self.implementation = NodeImplementation(provider: provider)
        self.isGlobal = isGlobal
        self.listeners = listeners
        self.connections = connections
        self.seenBy = seenBy
    }
}

/// The nodes of a network reachable from one node, with each node's own list of connections: what
/// ``Node/traceNetwork(from:timeout:limit:)`` returns (Perl: `aemp trace`).
public struct NetworkTrace: Sendable, Hashable {
    /// The node the trace started from.
    public var start: NodeID
    /// The node that traced (left out of every connection list).
    public var tracer: NodeID
    /// Every node found, in breadth-first order from ``start``; each connection list in node ID order.
    public var nodes: [TracedNode]
    /// Whether the database's `'l` family could be read (without it, nodes without a listener are
    /// asked like the others and end as unreachable with `no known address`).
    public var listenersKnown: Bool

    /// Creates a trace.
    ///
    /// - Parameters:
    ///   - start: the start node.
    ///   - tracer: the tracing node.
    ///   - nodes: the nodes found.
    ///   - listenersKnown: whether `'l` was read.
    public init(start: NodeID, tracer: NodeID, nodes: [TracedNode], listenersKnown: Bool) {
        self.start = start
        self.tracer = tracer
        self.nodes = nodes
        self.listenersKnown = listenersKnown
    }
}

extension Node {
    /// The Perl expression whose value is a node's list of connected nodes (`up_nodes`); a Swift
    /// node answers it without an evaluator.
    public static let upNodesExpression = "AnyEvent::MP::Kernel::up_nodes"

    /// Finds every node reachable from `start` and asks each for its connections, breadth first.
    /// Perl: `aemp trace <node>`.
    ///
    /// Uses only requests a Perl 2.x node answers: the global database's `'l` (listeners) and `'g`
    /// (global nodes) families, and two node-port requests per node, sent at once: `time` with a
    /// reply port (reachability) and `eval` of ``upNodesExpression`` (its connections). A node that
    /// answers `time` but not `eval` runs in secure mode (``TracedNode/Connections/unknown(_:)``).
    /// The greeting of the connection made to ask it says whether it is a Perl or a Swift node.
    /// Nodes that others list but that have no listener are reported as such and not dialled
    /// (`start` is always asked).
    ///
    /// Every request has `timeout`; the nodes of one breadth-first level are asked in parallel, so
    /// the whole trace takes about (levels + 1) × `timeout` at most. The tracing node connects to
    /// every node it asks (through its seeds' database, like any `snd`).
    ///
    /// - Parameters:
    ///   - start: the first node to ask.
    ///   - timeout: the limit of each request (the `time`/`eval` pair of a node, the database queries).
    ///   - limit: the most nodes asked (a bound against a network that keeps naming new nodes).
    /// - Returns: the nodes found, `start` first.
    public func traceNetwork(from start: NodeID, timeout: Duration = .seconds(5), limit: Int = 1000) async -> NetworkTrace {
        let (listeners, globals) = await networkDirectory(timeout: timeout)

        var found: [TracedNode] = []
        var queued: Set<NodeID> = [start, nodeID]
        var level = start == nodeID ? [] : [start]
        while !level.isEmpty, found.count < limit {
            let asked = Array(level.prefix(limit - found.count))
            let answers = await withTaskGroup(of: (Int, TracedNode).self) { group in
                for (position, node) in asked.enumerated() {
                    group.addTask {
                        let asked = await self.probe(
                            node, listeners: listeners, globals: globals, timeout: timeout, always: node == start)
                        return (position, asked)
                    }
                }
                var answers = [TracedNode?](repeating: nil, count: asked.count)
                for await (position, answer) in group { answers[position] = answer }
                return answers.compactMap { $0 }
            }
            found += answers
            level = []
            for answer in answers {
                guard case .known(let connections)? = answer.connections else { continue }
                for peer in connections where queued.insert(peer).inserted { level.append(peer) }
            }
        }
        // Who lists whom, in trace order.
        var seenBy: [NodeID: [NodeID]] = [:]
        for node in found {
            guard case .known(let connections)? = node.connections else { continue }
            for peer in connections { seenBy[peer, default: []].append(node.nodeID) }
        }
        for position in found.indices { found[position].seenBy = seenBy[found[position].nodeID] ?? [] }
        return NetworkTrace(start: start, tracer: nodeID, nodes: found, listenersKnown: listeners != nil)
    }

    /// Asks one node for the time and its connections, at once; a node without a listener (and not
    /// connected here) only when `always`.
    private func probe(
        _ node: NodeID, listeners: [NodeID: [String]]?, globals: Set<NodeID>, timeout: Duration, always: Bool
    ) async -> TracedNode {
        if !always, let listeners, listeners[node] == nil, await peerInfo(node) == nil {
            return TracedNode(nodeID: node, status: .noListener, isGlobal: globals.contains(node))
        }
        let port = PortID.nodePort(of: node)
        async let time = callResult(port, [.text("time")], timeout: timeout)
        async let evaluation = callResult(port, [.text("eval"), .text(Self.upNodesExpression)], timeout: timeout)
        let (timeReply, evalReply) = await (time, evaluation)
        let peer = await peerInfo(node)
        var traced = TracedNode(
            nodeID: node, status: .reachable, provider: peer?.provider,
            isGlobal: globals.contains(node) || peer?.isGlobal == true, listeners: listeners?[node])
        switch (timeReply, evalReply) {
        case (.failure(let error), .failure):
            traced.status = .unreachable(Self.unreachableText(error, node: node))
            return traced
        default:
            break
        }
        switch evalReply {
        case .success(let values):
            let error = values.first.map(KillReason.perlString) ?? ""
            if error.isEmpty {
                let connections = values.dropFirst().compactMap { $0.stringValue.flatMap(NodeID.init) }
                traced.connections = .known(Array(Set(connections).subtracting([nodeID])).sorted())
            } else {
                var text = Substring(error)
                while text.last?.isNewline == true { text = text.dropLast() }
                traced.connections = .unknown("eval failed: \(text)")
            }
        case .failure(.timeout):
            traced.connections = .unknown("secure mode")
        case .failure(let error):
            traced.connections = .unknown(Self.unreachableText(error, node: node))
        }
        return traced
    }

    /// The network's directory in the global database, asked at once: the listeners of every node
    /// (the `'l` family; `nil` when no master answered in time) and the global nodes (`'g`; empty
    /// when unknown). What ``traceNetwork(from:timeout:limit:)`` starts from.
    ///
    /// - Parameter timeout: the limit of each of the two database queries.
    /// - Returns: the listeners by node, and the global nodes.
    public func networkDirectory(timeout: Duration) async -> (listeners: [NodeID: [String]]?, globalNodes: Set<NodeID>) {
        async let listenerFamily = try? dbFamily(DatabaseFamilyName.listeners, timeout: timeout)
        async let globalFamily = try? dbKeys(DatabaseFamilyName.globalNodes, timeout: timeout)
        let listeners: [NodeID: [String]]? = (await listenerFamily).map { family in
            var decoded: [NodeID: [String]] = [:]
            for (key, value) in family {
                guard let node = NodeID(key) else { continue }
                decoded[node] = value.arrayValue?.compactMap(\.stringValue) ?? []
            }
            return decoded
        }
        return (listeners, Set((await globalFamily ?? []).compactMap(NodeID.init)))
    }

    /// ``call(_:_:timeout:)`` with its outcome as a value, for asking many ports at once and
    /// looking at the failures afterwards.
    ///
    /// - Parameters:
    ///   - port: the port to call.
    ///   - message: the request (the reply port is appended).
    ///   - timeout: how long to wait.
    /// - Returns: the reply, or why there is none.
    public func callResult(_ port: PortID, _ message: [Value], timeout: Duration) async -> Result<[Value], CallError> {
        do throws(CallError) {
            return .success(try await call(port, message, timeout: timeout))
        } catch {
            return .failure(error)
        }
    }

    /// The reason text of an unanswered request: the transport message of a `transport_error` about
    /// the node itself, else the whole reason or `no reply within ...`.
    static func unreachableText(_ error: CallError, node: NodeID) -> String {
        switch error {
        case .portDied(let reason):
            if reason.isTransportError, reason.string(at: 1) == node.rawValue, let message = reason.string(at: 2) {
                return message
            }
            return reason.description
        case .timeout(let duration):
            return "no reply within \(duration)"
        case .nodeShutDown:
            return "the tracing node was shut down"
        }
    }
}
