import AEMP
import AEMPCodecs
import Foundation

/// The dashboard's view of the other nodes, gathered the way `aemp trace` gathers it: only with
/// requests a Perl AnyEvent::MP 2.x node answers. The database's `'l` (listeners) and `'g` (global
/// nodes) families, then for every node found, at once: `time` (reachable?), `eval` of
/// ``AEMP/Node/upNodesExpression`` (its connections) and `eval` of
/// ``AEMP/Node/nodeSummaryExpression`` (start time, ports, queued bytes). A node that answers `time`
/// but no `eval` runs in secure mode; it is not asked to `eval` again for a while (each refusal is a
/// warning in its log). The nodes its connections name are asked next, breadth first. Finally the
/// database's family names from the master (`eval` of ``AEMP/Node/databaseFamiliesExpression``; the
/// reserved `'l` and `'g` always), which the ``DashboardDatabaseMirror`` then follows with `db_mon`.
struct DashboardSurvey: Sendable {
    /// How long a node that refused `eval` is not asked again.
    static let secureBackoff: Double = 60

    /// What one node answered.
    struct Probe: Sendable {
        var node: NodeID
        var status: TracedNode.Status
        var provider: String?
        var isGlobal: Bool
        var listeners: [String]?
        var connections: TracedNode.Connections?
        var summary: NodeSummary?

        var isReachable: Bool {
            if case .reachable = status { return true }
            return false
        }

        /// `known`, `secure`, or why its connections are unknown.
        var connectionsText: String? {
            switch connections {
            case .known: "known"
            case .unknown(let why): why == "secure mode" ? "secure" : why
            case nil: nil
            }
        }
    }

    /// One survey.
    struct Result: Sendable {
        var startedAt: Double
        var endedAt: Double
        var nodes: [NodeID: Probe]
        /// The database's families (`nil`: no master), or why they are not all known.
        var families: [String]?
        var databaseError: String?
    }

    let node: Node
    /// The limit of each request.
    let timeout: Duration
    /// Nodes asked at most.
    var limit = 200
    /// Nodes that refused `eval`, until when they are not asked again.
    private var secureUntil: [NodeID: Double] = [:]

    init(node: Node, timeout: Duration) {
        self.node = node
        self.timeout = timeout
    }

    /// Surveys the network now.
    mutating func run() async -> Result {
        let startedAt = Date().timeIntervalSince1970
        let node = self.node
        let timeout = self.timeout
        let (listeners, globals) = await node.networkDirectory(timeout: timeout)
        let connected = Set(await node.peers().map(\.nodeID))

        var probes: [NodeID: Probe] = [:]
        var queued: Set<NodeID> = [node.nodeID]
        var level = (connected.union(listeners.map { Set($0.keys) } ?? [])).subtracting([node.nodeID]).sorted()
        queued.formUnion(level)
        let now = startedAt
        secureUntil = secureUntil.filter { $0.value > now }
        while !level.isEmpty, probes.count < limit {
            let asked = Array(level.prefix(limit - probes.count))
            let skipEval = secureUntil
            let answers = await withTaskGroup(of: Probe.self) { group in
                for id in asked {
                    group.addTask {
                        await Self.probe(
                            node: node, id, timeout: timeout, listeners: listeners, globals: globals, connected: connected.contains(id),
                            askEval: skipEval[id] == nil)
                    }
                }
                var answers: [Probe] = []
                for await answer in group { answers.append(answer) }
                return answers
            }
            level = []
            for answer in answers.sorted(by: { $0.node < $1.node }) {
                probes[answer.node] = answer
                if answer.connectionsText == "secure" { secureUntil[answer.node] = now + Self.secureBackoff }
                guard case .known(let connections)? = answer.connections else { continue }
                for peer in connections where queued.insert(peer).inserted { level.append(peer) }
            }
        }
        // The greetings of the connections the probes made.
        for peer in await node.peers() where probes[peer.nodeID] != nil {
            probes[peer.nodeID]!.provider = peer.provider
            probes[peer.nodeID]!.isGlobal = probes[peer.nodeID]!.isGlobal || peer.isGlobal
        }

        var result = Result(startedAt: startedAt, endedAt: startedAt, nodes: probes)
        await readFamilies(into: &result)
        result.endedAt = Date().timeIntervalSince1970
        return result
    }

    /// Asks one node; a node without a listener that is not connected here is not dialled.
    private static func probe(
        node: Node, _ id: NodeID, timeout: Duration, listeners: [NodeID: [String]]?, globals: Set<NodeID>, connected: Bool,
        askEval: Bool
    ) async -> Probe {
        var probe = Probe(node: id, status: .reachable, isGlobal: globals.contains(id), listeners: listeners?[id])
        if let listeners, listeners[id] == nil, !connected {
            probe.status = .noListener
            return probe
        }
        let port = PortID.nodePort(of: id)
        async let time = node.callResult(port, [.text("time")], timeout: timeout)
        async let connections = askEval ? node.callResult(port, [.text("eval"), .text(Node.upNodesExpression)], timeout: timeout) : nil
        async let summary = askEval ? node.callResult(port, [.text("eval"), .text(Node.nodeSummaryExpression)], timeout: timeout) : nil
        let (timeReply, connectionsReply, summaryReply) = await (time, connections, summary)
        if case .failure(let error) = timeReply, connectionsReply.map({ if case .failure = $0 { true } else { false } }) ?? true {
            probe.status = .unreachable(reasonText(error, node: id))
            return probe
        }
        switch connectionsReply {
        case .success(let values)?:
            let error = Self.errorText(values.first)
            if error.isEmpty {
                let ids = values.dropFirst().compactMap { $0.stringValue.flatMap(NodeID.init) }
                probe.connections = .known(Array(Set(ids)).sorted())
            } else {
                probe.connections = .unknown("eval failed: \(error.trimmingCharacters(in: CharacterSet.newlines))")
            }
        case .failure(.timeout)?, nil:
            probe.connections = .unknown("secure mode")
        case .failure(let error)?:
            probe.connections = .unknown(reasonText(error, node: id))
        }
        if case .success(let values)? = summaryReply, Self.errorText(values.first) == "" {
            probe.summary = NodeSummary(values: Array(values.dropFirst()))
        }
        return probe
    }

    /// The error text an `eval` reply starts with (Perl's `$@`: empty or undefined on success).
    private static func errorText(_ value: Value?) -> String {
        switch value {
        case nil, .null?, .undefined?: ""
        case let other?: other.stringValue ?? ArgumentRules.plain(other)
        }
    }

    /// The transport message of a `transport_error` about the node itself, else the whole reason.
    private static func reasonText(_ error: CallError, node: NodeID) -> String {
        if case .portDied(let reason) = error, reason.isTransportError, reason.string(at: 1) == node.rawValue,
            let message = reason.string(at: 2)
        {
            return message
        }
        return error.description
    }

    /// The family names from the master.
    private func readFamilies(into result: inout Result) async {
        guard let master = await node.databaseMaster() else {
            result.databaseError = "no database master connected"
            return
        }
        var names: Set<String> = [DatabaseFamilyName.listeners, DatabaseFamilyName.globalNodes]
        switch await node.callResult(PortID.nodePort(of: master), [.text("eval"), .text(Node.databaseFamiliesExpression)], timeout: timeout) {
        case .success(let values) where Self.errorText(values.first) == "":
            names.formUnion(values.dropFirst().compactMap(\.stringValue))
        case .success(let values):
            result.databaseError = "the master \(master) could not list its families: \(Self.errorText(values.first))"
        case .failure(.timeout):
            result.databaseError = "the master \(master) does not list its families (secure mode?): showing 'l and 'g only"
        case .failure(let error):
            result.databaseError = "the master \(master) did not answer: \(error)"
        }
        // The network's own families first, then the reserved ones ('g, 'l).
        result.families = names.sorted { ($0.hasPrefix("'") ? 1 : 0, $0) < ($1.hasPrefix("'") ? 1 : 0, $1) }
        if names.count > DashboardDatabaseMirror.familyLimit, result.databaseError == nil {
            result.databaseError = "\(names.count) families: following the first \(DashboardDatabaseMirror.familyLimit)"
        }
    }
}
