import AEMP
import AEMPCodecs
import Foundation

/// What the dashboard knows about the network, fed by this node's own view (statistics, peers, node
/// events, observations) and by surveys of the other nodes (``DashboardSurvey``), and turned into
/// ``DashboardSnapshot``s.
actor DashboardModel {
    /// Events kept, and sent with each snapshot.
    static let eventsKept = 500
    static let eventsSent = 100
    /// Nodes shown at most (the most recently seen first).
    static let nodeLimit = 200
    /// How long a node that is gone stays on the page.
    static let forgetAfter: Double = 600
    static let forgetAnonymousAfter: Double = 30
    /// Database pages: keys per page, characters per value, keys kept per family.
    static let pageSize = 25
    static let valueLimit = 300
    static let keyLimit = 1000

    private struct Record {
        var firstSeen: Double
        var lastSeen: Double
        /// Since when this node has been connected to it (from node events).
        var connectedSince: Double?
        /// The last node-down event: when and why.
        var downAt: Double?
        var downReason: String?
        var provider: String?
        var isGlobal = false
    }

    let selfNode: NodeID
    private var records: [NodeID: Record] = [:]
    private var events: [DashboardSnapshot.Event] = []
    private var nextSequence = 1
    /// Recent traffic figures of this node's peers, oldest first, for the rates.
    private var trafficHistory: [(time: Double, peers: [NodeID: Traffic])] = []
    /// The window rates are measured over: the survey's own requests (every two seconds) then show
    /// as a steady rate instead of alternating with zero.
    static let rateWindow: Double = 2
    private var survey: DashboardSurvey.Result?
    /// The database as last rendered from the mirror, and the mirror's version then.
    private var database: [String: (count: Int, entries: [(key: String, value: String)])] = [:]
    private var databaseVersion = -1
    private var databaseError: String?
    let mirror: DashboardDatabaseMirror?
    private var latest: DashboardSnapshot?

    init(selfNode: NodeID, mirror: DashboardDatabaseMirror? = nil) {
        self.selfNode = selfNode
        self.mirror = mirror
    }

    // MARK: Input

    /// A node came up or went down.
    func record(_ event: NodeEvent, at time: Double = Date().timeIntervalSince1970) {
        var record = records[event.node] ?? Record(firstSeen: time, lastSeen: time)
        record.lastSeen = time
        if event.isUp {
            record.connectedSince = time
            log(time, "up", event.node, "\(event.node) is up")
        } else {
            record.connectedSince = nil
            record.downAt = time
            record.downReason = Self.text(event.reason)
            log(time, "down", event.node, "\(event.node) is down: \(Self.text(event.reason))")
        }
        records[event.node] = record
    }

    /// A port died under a monitor of this node, or a handshake failed. Node ports (their node went
    /// down: logged as such) and routine duplicate connections are left out.
    func record(_ observation: NodeObservation, at time: Double = Date().timeIntervalSince1970) {
        switch observation {
        case .portDied(let port, let reason):
            guard !port.name.isEmpty else { return }
            log(time, "port", port.node, "port \(port) died: \(reason.isNormal ? "normal" : Self.text(reason))")
        case .handshakeFailed(let failure):
            guard failure.category != "duplicate" else { return }
            let who = [failure.peer?.description, failure.address].compactMap { $0 }.joined(separator: " at ")
            let way = failure.direction == .incoming ? "from" : "to"
            log(
                time, "handshake", failure.peer?.description,
                "handshake \(way) \(who.isEmpty ? "unknown peer" : who) refused (\(failure.category)): \(failure.reason)")
        }
    }

    /// The outcome of a survey.
    func record(_ result: DashboardSurvey.Result) {
        survey = result
        for probe in result.nodes.values {
            var record = records[probe.node] ?? Record(firstSeen: result.endedAt, lastSeen: result.endedAt)
            record.lastSeen = result.endedAt
            if let provider = probe.provider { record.provider = provider }
            record.isGlobal = record.isGlobal || probe.isGlobal
            records[probe.node] = record
        }
        if let families = result.families { mirror?.watch(families) }
        databaseError = result.databaseError
    }

    private func log(_ time: Double, _ kind: String, _ node: NodeID?, _ text: String) {
        log(time, kind, node?.description, text)
    }

    private func log(_ time: Double, _ kind: String, _ node: String?, _ text: String) {
        events.append(.init(sequence: nextSequence, time: time, kind: kind, node: node, text: text))
        nextSequence += 1
        if events.count > Self.eventsKept { events.removeFirst(events.count - Self.eventsKept) }
    }

    // MARK: Output

    /// The snapshot for this node's statistics and peers now.
    func snapshot(
        statistics: NodeStatistics, peers: [PeerInfo], summary: NodeSummary, master: NodeID?,
        at time: Double = Date().timeIntervalSince1970
    ) -> DashboardSnapshot {
        // Rates of this node's own connections, over about ``rateWindow`` seconds.
        var rates: [NodeID: (messages: Double, bytes: Double)] = [:]
        trafficHistory.removeAll { time - $0.time > Self.rateWindow + 0.5 || $0.time >= time }
        if let previous = trafficHistory.first {
            let seconds = time - previous.time
            for (peer, entry) in statistics.peers {
                guard let before = previous.peers[peer] else { continue }
                let messages = Double(entry.traffic.messagesSent &+ entry.traffic.messagesReceived)
                    - Double(before.messagesSent &+ before.messagesReceived)
                let bytes = Double(entry.traffic.bytesSent &+ entry.traffic.bytesReceived)
                    - Double(before.bytesSent &+ before.bytesReceived)
                rates[peer] = (max(0, messages) / seconds, max(0, bytes) / seconds)
            }
        }
        trafficHistory.append((time, statistics.peers.mapValues(\.traffic)))

        let peerInfo = Dictionary(peers.map { ($0.nodeID, $0) }, uniquingKeysWith: { first, _ in first })
        for peer in peers {
            var record = records[peer.nodeID] ?? Record(firstSeen: time, lastSeen: time)
            record.lastSeen = time
            record.provider = peer.provider ?? record.provider
            record.isGlobal = record.isGlobal || peer.isGlobal
            if record.connectedSince == nil { record.connectedSince = time }
            records[peer.nodeID] = record
        }
        // Forget what has been gone for long, and keep the page bounded.
        // Anonymous nodes (clients such as `aemp cal`) sooner: each run has a fresh ID.
        records = records.filter { id, record in
            statistics.peers[id]?.isUp == true || time - record.lastSeen < (id.isAnonymous ? Self.forgetAnonymousAfter : Self.forgetAfter)
        }
        if records.count > Self.nodeLimit {
            let kept = records.sorted { $0.value.lastSeen > $1.value.lastSeen }.prefix(Self.nodeLimit)
            records = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        }

        var nodes: [DashboardSnapshot.Node] = [
            .init(
                id: selfNode.rawValue, implementation: "swift", provider: Greeting.defaultProvider, isGlobal: master == selfNode,
                isSelf: true, state: "up", startedAt: summary.startedAt, ports: summary.ports, queuedBytes: summary.queuedBytes,
                connections: "known")
        ]
        var down: Set<NodeID> = []
        for (id, record) in records.sorted(by: { $0.key < $1.key }) where id != selfNode {
            let probe = survey?.nodes[id]
            let peer = statistics.peers[id]
            var node = DashboardSnapshot.Node(
                id: id.rawValue, implementation: NodeImplementation(provider: record.provider).description, provider: record.provider,
                isGlobal: record.isGlobal || peerInfo[id]?.isGlobal == true, isSelf: false, state: "up",
                connectedSince: peer?.isUp == true ? record.connectedSince : nil, ports: probe?.summary?.ports,
                queuedBytes: probe?.summary?.queuedBytes, livenessProbes: peer?.traffic.livenessProbes,
                livenessTimeouts: peer?.traffic.livenessTimeouts, listeners: probe?.listeners)
            node.startedAt = probe?.summary?.startedAt
            node.connections = probe?.connectionsText
            if peer?.isUp == true {
                node.state = "up"
            } else if let downAt = record.downAt, downAt >= (survey?.startedAt ?? 0) || probe?.isReachable != true {
                // A node-down event newer than the last survey's start outweighs the survey.
                node.state = "down"
                node.reason = record.downReason
            } else if let probe {
                switch probe.status {
                case .reachable: node.state = "up"
                case .unreachable(let why):
                    node.state = "unreachable"
                    node.reason = why
                case .noListener: node.state = "nolistener"
                }
            } else {
                node.state = "down"
                node.reason = "no longer listed by any node"
            }
            if node.state == "down" || node.state == "unreachable" {
                down.insert(id)
                node.ports = nil
                node.queuedBytes = nil
            }
            nodes.append(node)
        }

        // Links: this node's own from its statistics (with rates), the others from the survey.
        var links: [DashboardSnapshot.Link] = []
        var seen: Set<[String]> = []
        for (peer, entry) in statistics.peers.sorted(by: { $0.key < $1.key }) where entry.isUp && records[peer] != nil {
            let rate = rates[peer]
            links.append(
                .init(
                    from: selfNode.rawValue, to: peer.rawValue, own: true, messagesPerSecond: rate?.messages ?? 0,
                    bytesPerSecond: rate?.bytes ?? 0, queuedBytes: entry.queuedBytes))
            seen.insert([selfNode.rawValue, peer.rawValue].sorted())
        }
        for probe in (survey?.nodes.values.sorted { $0.node < $1.node }) ?? [] {
            guard !down.contains(probe.node), case .known(let connections)? = probe.connections else { continue }
            for other in connections where other != selfNode && !down.contains(other) && records[other] != nil {
                let pair = [probe.node.rawValue, other.rawValue].sorted()
                guard seen.insert(pair).inserted else { continue }
                links.append(.init(from: pair[0], to: pair[1], own: false))
            }
        }

        refreshDatabase()
        let families = database.keys.sorted().map { DashboardSnapshot.Database.Family(name: $0, count: database[$0]!.count) }
        let snapshot = DashboardSnapshot(
            time: time, selfNode: selfNode.rawValue, master: master?.rawValue, nodes: nodes, links: links,
            events: Array(events.suffix(Self.eventsSent)),
            database: .init(families: families, version: max(0, databaseVersion), error: databaseError),
            surveyedAt: survey?.endedAt, surveySeconds: survey.map { $0.endedAt - $0.startedAt })
        latest = snapshot
        return snapshot
    }

    /// The last snapshot taken.
    var latestSnapshot: DashboardSnapshot? { latest }

    /// One page of a family (`nil`: no such family).
    func databasePage(family: String, page: Int) -> DashboardDatabasePage? {
        guard let entries = database[family]?.entries else { return nil }
        let pages = max(1, (entries.count + Self.pageSize - 1) / Self.pageSize)
        let page = min(max(0, page), pages - 1)
        let slice = entries.dropFirst(page * Self.pageSize).prefix(Self.pageSize)
        return DashboardDatabasePage(
            family: family, page: page, pages: pages, count: database[family]!.count,
            entries: slice.map { .init(key: $0.key, value: $0.value) })
    }

    // MARK: Text

    /// A kill reason's values, as `aemp mon` prints them.
    static func text(_ reason: KillReason) -> String {
        reason.values.map(ArgumentRules.plain).joined(separator: " ")
    }

    /// A database value in diagnostic notation, cut at ``valueLimit`` characters.
    static func render(_ value: Value) -> String {
        let text = value.description
        return text.count > valueLimit ? String(text.prefix(valueLimit)) + "…" : text
    }

    /// Renders the mirror's families again when they changed (at most ``keyLimit`` keys each, in
    /// key order).
    private func refreshDatabase() {
        guard let mirror else { return }
        let (version, families) = mirror.contents
        guard version != databaseVersion else { return }
        databaseVersion = version
        database = families.mapValues { family in
            let keys = family.keys.sorted().prefix(Self.keyLimit)
            return (family.count, keys.map { ($0, Self.render(family[$0]!)) })
        }
    }
}
