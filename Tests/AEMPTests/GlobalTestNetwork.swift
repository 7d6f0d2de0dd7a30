import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

/// An in-memory network of ``DatabaseClient``s: `.send` actions are delivered in order over
/// simulated connections, node up/down events are raised on both ends, and every other action is
/// recorded per node.
final class GlobalTestNetwork {
    struct Delivery {
        var from: NodeID
        var to: NodeID
        var message: [Value]
    }

    private(set) var clients: [NodeID: DatabaseClient] = [:]
    private var seeds: [NodeID: [NodeID]] = [:]
    private var links: Set<[NodeID]> = []
    private var queue: [Delivery] = []
    /// Messages for nodes that are not connected yet (Perl queues them until the connection is up).
    private var parked: [[NodeID]: [[Value]]] = [:]
    /// Every message delivered, in order.
    private(set) var delivered: [Delivery] = []
    /// Non-send actions per node, in order.
    private(set) var events: [NodeID: [DatabaseAction]] = [:]
    /// Convert every text string into a byte string in transit, as a Perl CBOR peer would send it.
    var perlStrings = false

    static func id(_ name: String) -> NodeID { NodeID(name)! }

    /// Adds a node with its seed list and listener address.
    @discardableResult
    func add(_ name: String, seeds seedNames: [String] = [], listener: String? = nil) -> DatabaseClient {
        let node = Self.id(name)
        let client = DatabaseClient(localNode: node)
        clients[node] = client
        seeds[node] = seedNames.map(Self.id)
        apply(node, client.setListeners([listener ?? "127.0.0.1:\(4000 + clients.count)"]))
        if seeds[node]!.contains(node) { apply(node, client.seedGreeted(node)) }
        return client
    }

    subscript(_ name: String) -> DatabaseClient { clients[Self.id(name)]! }

    func isLinked(_ a: NodeID, _ b: NodeID) -> Bool { links.contains([a, b].sorted()) }

    /// Opens a connection between two nodes: seeds are greeted first, then both ends see node-up.
    func connect(_ a: String, _ b: String) {
        let (x, y) = (Self.id(a), Self.id(b))
        guard x != y, !isLinked(x, y) else { return }
        if seeds[x]!.contains(y) { apply(x, clients[x]!.seedGreeted(y)) }
        if seeds[y]!.contains(x) { apply(y, clients[y]!.seedGreeted(x)) }
        links.insert([x, y].sorted())
        for (from, to) in [(x, y), (y, x)] {
            for message in parked.removeValue(forKey: [from, to]) ?? [] {
                queue.append(Delivery(from: from, to: to, message: message))
            }
        }
        apply(x, clients[x]!.nodeUp(y))
        apply(y, clients[y]!.nodeUp(x))
    }

    /// Loses the connection between two nodes: undelivered messages are dropped, both see node-down.
    func disconnect(_ a: String, _ b: String) {
        let (x, y) = (Self.id(a), Self.id(b))
        guard links.remove([x, y].sorted()) != nil else { return }
        queue.removeAll { ($0.from == x && $0.to == y) || ($0.from == y && $0.to == x) }
        apply(x, clients[x]!.nodeDown(y))
        apply(y, clients[y]!.nodeDown(x))
    }

    /// Kills a node: every connection of it is lost, and it leaves the network.
    func kill(_ name: String) {
        let node = Self.id(name)
        for link in links where link.contains(node) {
            let other = link[0] == node ? link[1] : link[0]
            disconnect(name, other.rawValue)
        }
        parked = parked.filter { !$0.key.contains(node) }
        clients[node] = nil
    }

    /// Applies the actions a node returned.
    func apply(_ node: NodeID, _ actions: [DatabaseAction]) {
        for action in actions {
            if case .send(let to, let message) = action {
                if isLinked(node, to) {
                    queue.append(Delivery(from: node, to: to, message: message))
                } else {
                    parked[[node, to], default: []].append(message)
                }
            } else {
                events[node, default: []].append(action)
            }
        }
    }

    /// Applies a user call's actions: `network.call("a") { $0.dbSet("f", "k", 1) }`.
    func call(_ name: String, _ body: (DatabaseClient) -> [DatabaseAction]) {
        apply(Self.id(name), body(self[name]))
    }

    /// Delivers queued messages until none are left (bounded).
    func run(limit: Int = 100_000) {
        var steps = 0
        var head = 0
        defer { queue.removeFirst(head) }
        while head < queue.count && steps < limit {
            steps += 1
            let delivery = queue[head]
            head += 1
            guard let client = clients[delivery.to], delivery.message.count >= 2,
                let tag = delivery.message[1].stringValue
            else { continue }
            delivered.append(delivery)
            var arguments = Array(delivery.message.dropFirst(2))
            if perlStrings { arguments = arguments.map(Self.perlify) }
            apply(delivery.to, client.receive(from: delivery.from, tag: tag, arguments: arguments))
        }
        if head < queue.count { Issue.record("network did not settle within \(limit) deliveries") }
    }

    /// Events of a node, removing them.
    func takeEvents(_ name: String) -> [DatabaseAction] {
        events.removeValue(forKey: Self.id(name)) ?? []
    }

    /// Query results of a node by request ID (keeps other events).
    func queryResult(_ name: String, _ id: DatabaseRequestID) -> DatabaseQueryResult? {
        for case .queryResult(let rid, let result) in events[Self.id(name)] ?? [] where rid == id { return result }
        return nil
    }

    /// Monitor events of a node for one monitor.
    func monitorEvents(_ name: String, _ id: DatabaseMonitorID) -> [DatabaseChange] {
        var result: [DatabaseChange] = []
        for case .monitorEvent(let mid, let change) in events[Self.id(name)] ?? [] where mid == id {
            result.append(change)
        }
        return result
    }

    /// Lookup results of a node.
    func lookups(_ name: String) -> [(NodeID, [String]?)] {
        var result: [(NodeID, [String]?)] = []
        for case .lookupResult(let node, let addresses) in events[Self.id(name)] ?? [] {
            result.append((node, addresses))
        }
        return result
    }

    /// Messages delivered with a given tag.
    func delivered(tag: String) -> [Delivery] {
        delivered.filter { $0.message.count >= 2 && $0.message[1].stringValue == tag }
    }

    /// Byte strings back to text strings (for comparing with literals).
    static func textify(_ value: Value) -> Value {
        switch value {
        case .bytes: return .text(value.stringValue ?? "")
        case .array(let a): return .array(a.map(textify))
        case .map(let pairs): return .map(pairs.map { (textify($0.key), textify($0.value)) })
        default: return value
        }
    }

    static func perlify(_ value: Value) -> Value {
        switch value {
        case .text(let s): return .bytes(ByteBuffer(string: s))
        case .array(let a): return .array(a.map(perlify))
        case .map(let pairs): return .map(pairs.map { (perlify($0.key), perlify($0.value)) })
        default: return value
        }
    }
}

/// Small helpers for reading messages in tests.
enum GlobalTestMessages {
    /// The `.send` actions of a list, as (to, message).
    static func sends(_ actions: [DatabaseAction]) -> [(to: NodeID, message: [Value])] {
        actions.compactMap {
            if case .send(let to, let message) = $0 { return (to, message) }
            return nil
        }
    }

    /// The messages of the `.send` actions.
    static func messages(_ actions: [DatabaseAction]) -> [[Value]] {
        sends(actions).map(\.message)
    }

    /// The tag of a node-port message.
    static func tag(_ message: [Value]) -> String? {
        message.count >= 2 ? message[1].stringValue : nil
    }
}
