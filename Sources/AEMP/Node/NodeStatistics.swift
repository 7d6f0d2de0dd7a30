import CoreMetrics

/// What went over the connections to one peer node: counted since this node first connected to it,
/// across reconnections.
public struct Traffic: Sendable, Hashable {
    /// Messages written to the peer (kernel and database messages included).
    public var messagesSent: UInt64 = 0
    /// Messages received from the peer.
    public var messagesReceived: UInt64 = 0
    /// Bytes the socket took (plaintext, before TLS), handshake included.
    public var bytesSent: UInt64 = 0
    /// Bytes received (plaintext, after TLS), handshake included.
    public var bytesReceived: UInt64 = 0
    /// Liveness probes sent after a silence (``NodeConfiguration/livenessTimeout``).
    public var livenessProbes: UInt64 = 0
    /// Connections ended because the peer was silent for the whole liveness timeout.
    public var livenessTimeouts: UInt64 = 0

    /// No traffic.
    public init() {}

    static func + (a: Traffic, b: Traffic) -> Traffic {
        var sum = a
        sum.messagesSent &+= b.messagesSent
        sum.messagesReceived &+= b.messagesReceived
        sum.bytesSent &+= b.bytesSent
        sum.bytesReceived &+= b.bytesReceived
        sum.livenessProbes &+= b.livenessProbes
        sum.livenessTimeouts &+= b.livenessTimeouts
        return sum
    }
}

/// A snapshot of what a node does: its peers' traffic, its connections, ports and monitors.
/// ``Node/statistics()`` takes one; with a swift-metrics backend bootstrapped the node also reports
/// the same figures as metrics (see ``NodeConfiguration/metricsInterval``).
public struct NodeStatistics: Sendable {
    /// One peer node as this node sees it.
    public struct Peer: Sendable, Hashable {
        /// Whether a connection to it is up.
        public var isUp: Bool
        /// Traffic since this node first connected to it.
        public var traffic: Traffic
        /// Bytes written to the connection that the socket has not taken yet (0 when not connected).
        public var queuedBytes: Int
        /// Messages waiting for a connection to the peer.
        public var queuedMessages: Int
    }

    /// The node.
    public var nodeID: NodeID
    /// Every peer this node has known, by node ID.
    public var peers: [NodeID: Peer]
    /// Outgoing connect attempts (one per address dialled).
    public var connectionAttempts: UInt64
    /// Handshakes that failed, by a bounded category: `auth` (wrong secret or no common
    /// authentication), `tls`, `timeout`, `protocol` (malformed greeting or version), `refused`
    /// (the connection could not be made), `closed` (the peer closed it), `duplicate` (already
    /// connected, simultaneous connects, our own seed) and `other`.
    public var handshakeFailures: [String: UInt64]
    /// Ports alive on this node.
    public var ports: Int
    /// Monitors this node holds: of its own ports (local and remote watchers) and of other nodes'.
    public var monitors: Int

    /// Data connections (DataConn) handed to their users and not destroyed yet.
    public var dataConnectionsOpen: Int
    /// Data connections established so far.
    public var dataConnectionsOpened: UInt64
    /// Bytes sent and received over data connections so far (plaintext).
    public var dataBytesSent: UInt64
    public var dataBytesReceived: UInt64

    /// The traffic of anonymous peers (``NodeID/isAnonymous``) that went down and were forgotten:
    /// a node keeps no entry for a client that is gone, only its share of the totals.
    public var retiredAnonymousTraffic = Traffic()

    /// Connections up.
    public var connectionsUp: Int { peers.values.count { $0.isUp } }
    /// The traffic of all peers together.
    public var totalTraffic: Traffic { peers.values.reduce(retiredAnonymousTraffic) { $0 + $1.traffic } }
}

extension NodeStatistics {
    /// The category of a handshake failure's message, for ``handshakeFailures``.
    static func failureCategory(_ message: String) -> String {
        let text = message.lowercased()
        func has(_ words: String...) -> Bool { words.contains { text.contains($0) } }
        if has("already connected", "simultaneous", "ourselves", "self-connection", "echo") { return "duplicate" }
        if has("auth", "secret") { return "auth" }
        if has("tls", "certificate", "ssl") { return "tls" }
        if has("timeout", "timed out") { return "timeout" }
        if has("refused", "unreachable", "no route", "connect", "name or service") { return "refused" }
        if has("end-of-file", "reset", "broken pipe") { return "closed" }
        if has("greeting", "version", "framing", "unexpected", "too long", "malformed") { return "protocol" }
        return "other"
    }
}

/// Reports a node's statistics to the swift-metrics backend, on the node's loop, every
/// ``NodeConfiguration/metricsInterval``. Does nothing while no backend is bootstrapped (the
/// message path only ever adds to plain integers).
///
/// Metrics (dimension `node` on all; `peer` on the per-peer ones, with anonymous nodes together as
/// `anon/*`; `reason` on handshake failures):
/// `aemp_messages_sent_total`, `aemp_messages_received_total`, `aemp_bytes_sent_total`,
/// `aemp_bytes_received_total`, `aemp_liveness_probes_total`, `aemp_liveness_timeouts_total`
/// (counters per peer), `aemp_queued_bytes`, `aemp_peer_up` (gauges per peer),
/// `aemp_connection_attempts_total`, `aemp_handshake_failures_total`, `aemp_dataconn_opened_total`,
/// `aemp_dataconn_bytes_sent_total`, `aemp_dataconn_bytes_received_total` (counters),
/// `aemp_connections`, `aemp_ports`, `aemp_monitors`, `aemp_dataconn_connections` (gauges).
final class NodeMetricsReporter {
    /// A swift-metrics counter fed from a running total: each report adds the growth since the last.
    private final class TotalCounter {
        let counter: Counter
        var last: UInt64 = 0

        init(_ label: String, _ dimensions: [(String, String)]) {
            counter = Counter(label: label, dimensions: dimensions)
        }

        func report(_ total: UInt64) {
            if total > last { counter.increment(by: Int64(clamping: total - last)) }
            last = total
        }
    }

    private struct PeerMetrics {
        let messagesSent, messagesReceived, bytesSent, bytesReceived, probes, silences: TotalCounter
        let queuedBytes, up: Gauge

        init(_ dimensions: [(String, String)]) {
            messagesSent = TotalCounter("aemp_messages_sent_total", dimensions)
            messagesReceived = TotalCounter("aemp_messages_received_total", dimensions)
            bytesSent = TotalCounter("aemp_bytes_sent_total", dimensions)
            bytesReceived = TotalCounter("aemp_bytes_received_total", dimensions)
            probes = TotalCounter("aemp_liveness_probes_total", dimensions)
            silences = TotalCounter("aemp_liveness_timeouts_total", dimensions)
            queuedBytes = Gauge(label: "aemp_queued_bytes", dimensions: dimensions)
            up = Gauge(label: "aemp_peer_up", dimensions: dimensions)
        }

        func report(_ peer: NodeStatistics.Peer) {
            messagesSent.report(peer.traffic.messagesSent)
            messagesReceived.report(peer.traffic.messagesReceived)
            bytesSent.report(peer.traffic.bytesSent)
            bytesReceived.report(peer.traffic.bytesReceived)
            probes.report(peer.traffic.livenessProbes)
            silences.report(peer.traffic.livenessTimeouts)
            queuedBytes.record(peer.queuedBytes)
            up.record(peer.isUp ? 1 : 0)
        }
    }

    /// The node-wide metrics.
    private struct NodeMetrics {
        let attempts, dataOpened, dataSent, dataReceived: TotalCounter
        let connections, ports, monitors, dataConnections: Gauge

        init(_ dimensions: [(String, String)]) {
            attempts = TotalCounter("aemp_connection_attempts_total", dimensions)
            dataOpened = TotalCounter("aemp_dataconn_opened_total", dimensions)
            dataSent = TotalCounter("aemp_dataconn_bytes_sent_total", dimensions)
            dataReceived = TotalCounter("aemp_dataconn_bytes_received_total", dimensions)
            connections = Gauge(label: "aemp_connections", dimensions: dimensions)
            ports = Gauge(label: "aemp_ports", dimensions: dimensions)
            monitors = Gauge(label: "aemp_monitors", dimensions: dimensions)
            dataConnections = Gauge(label: "aemp_dataconn_connections", dimensions: dimensions)
        }

        func report(_ statistics: NodeStatistics) {
            attempts.report(statistics.connectionAttempts)
            dataOpened.report(statistics.dataConnectionsOpened)
            dataSent.report(statistics.dataBytesSent)
            dataReceived.report(statistics.dataBytesReceived)
            connections.record(statistics.connectionsUp)
            ports.record(statistics.ports)
            monitors.record(statistics.monitors)
            dataConnections.record(statistics.dataConnectionsOpen)
        }
    }

    private let dimension: [(String, String)]
    private var peers: [String: PeerMetrics] = [:]
    private var failures: [String: TotalCounter] = [:]
    private lazy var nodeMetrics = NodeMetrics(dimension)

    init(node: NodeID) {
        self.dimension = [("node", node.rawValue)]
    }

    /// Whether a backend is bootstrapped.
    static var isActive: Bool { !(MetricsSystem.factory is NOOPMetricsHandler) }

    /// Pushes what changed since the last report.
    func report(_ statistics: NodeStatistics) {
        guard Self.isActive else { return }
        // Anonymous nodes (clients such as `aemp cal`) come and go with fresh IDs: they share the
        // label `anon/*`, so the label set stays bounded by the named nodes.
        var byLabel: [String: NodeStatistics.Peer] = [:]
        if statistics.retiredAnonymousTraffic != Traffic() {
            byLabel["anon/*"] = NodeStatistics.Peer(
                isUp: false, traffic: statistics.retiredAnonymousTraffic, queuedBytes: 0, queuedMessages: 0)
        }
        for (peer, entry) in statistics.peers {
            let label = peer.isAnonymous ? "anon/*" : peer.rawValue
            if var sum = byLabel[label] {
                sum.traffic = sum.traffic + entry.traffic
                sum.queuedBytes += entry.queuedBytes
                sum.queuedMessages += entry.queuedMessages
                sum.isUp = sum.isUp || entry.isUp
                byLabel[label] = sum
            } else {
                byLabel[label] = entry
            }
        }
        for (label, entry) in byLabel {
            let metrics = peers[label] ?? PeerMetrics(dimension + [("peer", label)])
            metrics.report(entry)
            peers[label] = metrics
        }
        for (category, count) in statistics.handshakeFailures {
            let counter = failures[category] ?? TotalCounter("aemp_handshake_failures_total", dimension + [("reason", category)])
            counter.report(count)
            failures[category] = counter
        }
        nodeMetrics.report(statistics)
    }
}
