import AEMP

/// What the dashboard page receives over its WebSocket, once a second and at once after a node went
/// up or down: the network as this node sees it. Encoded as JSON (the field names are the page's).
struct DashboardSnapshot: Codable, Sendable, Equatable {
    /// When it was taken, seconds since 1970.
    var time: Double
    /// The node serving the dashboard.
    var selfNode: String
    /// The database master of that node, if any.
    var master: String?
    /// Every node known, by node ID.
    var nodes: [Node]
    /// The connections between them.
    var links: [Link]
    /// The newest events, oldest first (at most ``DashboardModel/eventsSent``).
    var events: [Event]
    /// The global database's families (their contents are paged: `GET /db.json`).
    var database: Database
    /// When the last survey of the other nodes ended (seconds since 1970), and how long it took.
    var surveyedAt: Double?
    var surveySeconds: Double?

    /// One node.
    struct Node: Codable, Sendable, Equatable {
        var id: String
        /// `swift`, `perl`, `unknown`, or another implementation's provider.
        var implementation: String
        var provider: String?
        var isGlobal: Bool
        var isSelf: Bool
        /// `up`, `down`, `unreachable` or `nolistener` (connected to others, but nobody can dial it).
        var state: String
        /// Why it is down or unreachable.
        var reason: String?
        /// When it started (its summary), seconds since 1970.
        var startedAt: Int64?
        /// Since when this node has been connected to it, seconds since 1970.
        var connectedSince: Double?
        var ports: Int?
        /// The bytes it has queued towards all its peers (its own summary).
        var queuedBytes: Int?
        /// `known` when it told its connections, `secure` when it did not answer `eval` (secure mode),
        /// else the reason.
        var connections: String?
        /// Liveness probes this node sent it after silences, and timeouts.
        var livenessProbes: UInt64?
        var livenessTimeouts: UInt64?
        /// Its listener addresses from the `'l` family.
        var listeners: [String]?
    }

    /// A connection between two nodes. Rates only for this node's own connections.
    struct Link: Codable, Sendable, Equatable {
        var from: String
        var to: String
        /// Whether it is one of this node's own connections (rates measured here).
        var own: Bool
        /// Messages and bytes per second, both directions together.
        var messagesPerSecond: Double?
        var bytesPerSecond: Double?
        /// Bytes queued here towards the peer.
        var queuedBytes: Int?
    }

    /// An event of the log.
    struct Event: Codable, Sendable, Equatable {
        var sequence: Int
        var time: Double
        /// `up`, `down`, `port` (a port died under a monitor of this node) or `handshake` (refused).
        var kind: String
        var node: String?
        var text: String
    }

    /// The database's families as last read.
    struct Database: Codable, Sendable, Equatable {
        var families: [Family]
        /// Changes whenever a family's contents change (the page refetches its page then).
        var version: Int
        var error: String?

        struct Family: Codable, Sendable, Equatable {
            var name: String
            var count: Int
        }
    }
}

/// One page of a database family: `GET /db.json?family=<name>&page=<n>`.
struct DashboardDatabasePage: Codable, Sendable, Equatable {
    var family: String
    var page: Int
    var pages: Int
    var count: Int
    var entries: [Entry]

    struct Entry: Codable, Sendable, Equatable {
        var key: String
        /// The value in diagnostic notation, cut at ``DashboardModel/valueLimit`` characters.
        var value: String
    }
}
