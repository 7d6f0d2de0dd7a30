import AEMPCodecs

/// The global-node role: the merged database of the network, address lookups, and the mesh of
/// global nodes (spec §6).
///
/// Perl: `AnyEvent::MP::Global`. A sans-IO state machine: every input returns the ``Effect``s to
/// apply, in order. A ``DatabaseClient`` owns one of these once its node is global and applies the
/// effects (sends, including sends to its own node, and changes to its own local database); it can
/// also be driven directly in tests.
///
/// Model. Every node that made this node its master (`g_slave` with a database) is a *slave*; this
/// node is its own slave. The state keeps one *shard* per source node: the local database of each
/// slave, and for each other global node the merged databases of *its* slaves (received with
/// `g_set` and kept current with `g_upd`). The *merged* view is the union of all shards; when a key
/// is deleted from one shard but another shard still has it, the merged view takes the remaining
/// value (a slave's value first, so the global nodes agree on what their own slaves hold).
/// Changes made by slaves are forwarded to the other global nodes with `g_upd`; every change to the
/// merged view goes to the family's subscribers as `g_chg2`.
public struct GlobalDatabase: Sendable {
    /// One thing to do after an input.
    public enum Effect: Hashable, Sendable {
        /// Send a node-port message (`["", tag, …]`) to a node; the node may be this node itself.
        case send(to: NodeID, message: [Value])
        /// Set a key in this node's own local database (Perl: `db_set` from inside Global).
        case setLocal(family: String, key: String, value: Value)
        /// Delete a key from this node's own local database (Perl: `db_del` from inside Global).
        case deleteLocal(family: String, key: String)
        /// The message could not be understood and was ignored.
        case malformed(reason: String)
    }

    /// This node.
    public let localNode: NodeID
    /// Nodes whose local databases this node holds as their master (Perl: `%GLOBAL_SLAVE`).
    public private(set) var slaves: Set<NodeID> = []
    /// Other global nodes that announced themselves with `g_global` and are up (Perl: `%GLOBAL_NODE`).
    public private(set) var globalNodes: Set<NodeID> = []
    /// The merged database (Perl: `%GLOBAL_DB`).
    public private(set) var merged: DatabaseContents = [:]
    /// Per-source databases: slaves' local databases and other global nodes' merged slave databases
    /// (Perl: `%LOCAL_DBS`).
    public private(set) var shards: [NodeID: DatabaseContents] = [:]
    /// Subscribers of each family, in subscription order (Perl: `%GLOBAL_MON`).
    public private(set) var subscribers: [String: [NodeID]] = [:]
    /// The families each node monitors, for clean-up when it goes down.
    private var monitoredFamilies: [NodeID: Set<String>] = [:]
    /// Other global nodes this node greeted as global whose `g_set` (their slaves' databases) has
    /// not arrived yet.
    public private(set) var awaitingSet: Set<NodeID> = []
    /// `g_find`s for nodes the merged `'l` does not know yet, held while ``awaitingSet`` is not empty.
    private var deferredFinds: [(from: NodeID, name: String)] = []
    /// At most this many `g_find`s wait for a `g_set`; any further one is answered at once.
    public static let maximumDeferredFinds = 1024

    /// Creates the global role for a node.
    ///
    /// - Parameters:
    ///   - localNode: this node's ID.
    ///   - globalNodes: other nodes already known to be global and up (they sent `g_global`).
    public init(localNode: NodeID, globalNodes: Set<NodeID> = []) {
        self.localNode = localNode
        self.globalNodes = globalNodes
        self.globalNodes.remove(localNode)
    }

    /// Whether a node-port tag is one ``handle(from:tag:arguments:)`` understands.
    ///
    /// - Parameter tag: the node-port tag.
    /// - Returns: true for `g_slave`, `g_global`, `g_set`, `g_upd`, `g_find`, `g_db_family`,
    ///   `g_db_keys`, `g_db_values`, `g_mon1`, `g_mon0`.
    public static func handles(tag: String) -> Bool {
        switch tag {
        case "g_slave", "g_global", "g_set", "g_upd", "g_find", "g_db_family", "g_db_keys", "g_db_values",
            "g_mon1", "g_mon0":
            true
        default: false
        }
    }

    /// The listener addresses of a node from the merged `'l` family; `nil` if unknown.
    ///
    /// Perl: `$GLOBAL_DB{"'l"}{$node}` (used for `g_find` and by a global node's own lookups).
    /// - Parameter node: the node to look up.
    /// - Returns: its `host:port` strings, or `nil`.
    public func addresses(of node: NodeID) -> [String]? {
        guard let value = merged[DatabaseFamilyName.listeners]?[node.rawValue] else { return nil }
        return DatabaseCoding.decodeStrings(value)
    }

    // MARK: - Node events

    /// A node came up: tell it that this node is global. Perl: the `mon_nodes` hook of Global.
    ///
    /// - Parameter node: the node that is now connected.
    /// - Returns: `["","g_global"]` for that node.
    public func nodeUp(_ node: NodeID) -> [Effect] {
        node == localNode ? [] : [.send(to: node, message: DatabaseCoding.message("g_global"))]
    }

    /// A node went down: forget its database, its subscriptions and its global status.
    /// Perl: `g_disconnect`.
    ///
    /// - Parameter node: the node whose connection was lost.
    /// - Returns: the resulting deletions (`g_upd` to other global nodes, `g_chg2` to subscribers,
    ///   and removal of the node's `'g`/`'l` entries from this node's local database).
    public mutating func nodeDown(_ node: NodeID) -> [Effect] {
        var effects: [Effect] = []
        disconnect(node, into: &effects)
        answerDeferredFinds(into: &effects)
        return effects
    }

    // MARK: - Messages

    /// Handles a `g_*` message sent to this node's node port.
    ///
    /// - Parameters:
    ///   - from: the sending node (Perl `$SRCNODE`); may be this node.
    ///   - tag: the node-port tag (see ``handles(tag:)``).
    ///   - arguments: the message elements after the tag.
    /// - Returns: what to do; unknown tags and malformed arguments give a single ``Effect/malformed(reason:)``.
    public mutating func handle(from: NodeID, tag: String, arguments: [Value]) -> [Effect] {
        var effects: [Effect] = []
        switch tag {
        case "g_slave":
            guard let first = arguments.first else { return [] }  // bare g_slave: nothing to store
            guard let contents = DatabaseCoding.decodeContents(first) else {
                return [.malformed(reason: "g_slave: database is not a map of maps")]
            }
            slaves.insert(from)
            replace(source: from, with: contents, into: &effects)
        case "g_global":
            guard from != localNode else { return [] }
            disconnect(from, into: &effects)
            globalNodes.insert(from)
            connectGlobal(from, into: &effects)
        case "g_set":
            guard let first = arguments.first, let contents = DatabaseCoding.decodeContents(first) else {
                return [.malformed(reason: "g_set: database is not a map of maps")]
            }
            let binds = contents[DatabaseFamilyName.listeners]?[from.rawValue] ?? .null
            replace(source: from, with: contents, into: &effects)
            // A global node's listeners are mirrored into our own database, so that every global
            // node can find every other one.
            effects.append(.setLocal(family: DatabaseFamilyName.listeners, key: from.rawValue, value: binds))
            awaitingSet.remove(from)
            answerDeferredFinds(into: &effects)
        case "g_upd":
            guard let familyName = arguments.first?.stringValue else {
                return [.malformed(reason: "g_upd: family is not a string")]
            }
            guard let set = DatabaseCoding.decodePairs(arguments.count > 1 ? arguments[1] : .null),
                let delete = DatabaseCoding.decodeStrings(arguments.count > 2 ? arguments[2] : .null)
            else { return [.malformed(reason: "g_upd: bad set map or delete list")] }
            let setKeys = Set(set.map { $0.key })
            update(
                source: from, familyName: familyName, set: set, delete: delete.filter { !setKeys.contains($0) },
                into: &effects)
        case "g_find":
            guard let name = arguments.first?.stringValue else {
                return [.malformed(reason: "g_find: node ID is not a string")]
            }
            // Deviation: a node that has just become global does not know the other global nodes'
            // slaves until their g_set arrives (a round trip); Perl answers null meanwhile, and the
            // asking node fails with "no known address". Here the answer waits for those g_sets.
            if merged[DatabaseFamilyName.listeners]?[name] == nil, !awaitingSet.isEmpty,
                deferredFinds.count < Self.maximumDeferredFinds
            {
                deferredFinds.append((from, name))
            } else {
                answerFind(from: from, name: name, into: &effects)
            }
        case "g_db_family", "g_db_keys", "g_db_values":
            guard arguments.count >= 2, let familyName = arguments[0].stringValue else {
                return [.malformed(reason: "\(tag): expected family and request ID")]
            }
            let family = merged[familyName] ?? [:]
            let result: Value
            switch tag {
            case "g_db_family": result = DatabaseCoding.encode(family)
            case "g_db_keys": result = .array(family.keys.map { .text($0) })
            default: result = .array(Array(family.values))
            }
            effects.append(.send(to: from, message: DatabaseCoding.message("g_reply", arguments[1], result)))
        case "g_mon1":
            guard let familyName = arguments.first?.stringValue else {
                return [.malformed(reason: "g_mon1: family is not a string")]
            }
            monitoredFamilies[from, default: []].insert(familyName)
            if !(subscribers[familyName]?.contains(from) ?? false) { subscribers[familyName, default: []].append(from) }
            let family = merged[familyName].map { DatabaseCoding.encode($0) } ?? .null
            effects.append(.send(to: from, message: DatabaseCoding.message("g_chg1", .text(familyName), family)))
        case "g_mon0":
            guard let familyName = arguments.first?.stringValue else {
                return [.malformed(reason: "g_mon0: family is not a string")]
            }
            unsubscribe(from, familyName)
            monitoredFamilies[from]?.remove(familyName)
            if monitoredFamilies[from]?.isEmpty ?? false { monitoredFamilies[from] = nil }
        default:
            return [.malformed(reason: "\(tag): not a global database request")]
        }
        return effects
    }

    // MARK: - Internals

    /// `["","g_found",name,addresses-or-null]` for `from`.
    private func answerFind(from: NodeID, name: String, into effects: inout [Effect]) {
        let addresses = merged[DatabaseFamilyName.listeners]?[name] ?? .null
        effects.append(.send(to: from, message: DatabaseCoding.message("g_found", .text(name), addresses)))
    }

    /// Answers the held `g_find`s that can be answered: those whose node is now known, and all of
    /// them once no `g_set` is awaited.
    private mutating func answerDeferredFinds(into effects: inout [Effect]) {
        guard !deferredFinds.isEmpty else { return }
        var waiting: [(from: NodeID, name: String)] = []
        for find in deferredFinds {
            if awaitingSet.isEmpty || merged[DatabaseFamilyName.listeners]?[find.name] != nil {
                answerFind(from: find.from, name: find.name, into: &effects)
            } else {
                waiting.append(find)
            }
        }
        deferredFinds = waiting
    }

    /// Perl: `g_global_connect`: note the other global node in `'g` and send it our slaves' data.
    private mutating func connectGlobal(_ node: NodeID, into effects: inout [Effect]) {
        awaitingSet.insert(node)
        effects.append(.setLocal(family: DatabaseFamilyName.globalNodes, key: node.rawValue, value: .null))
        var combined = DatabaseContents()
        for source in slaves.sorted() {
            guard let shard = shards[source] else { continue }
            for (familyName, family) in shard {
                combined[familyName, default: [:]].merge(family) { $1 }
            }
        }
        effects.append(.send(to: node, message: DatabaseCoding.message("g_set", DatabaseCoding.encode(combined))))
    }

    /// Perl: `g_disconnect`.
    private mutating func disconnect(_ node: NodeID, into effects: inout [Effect]) {
        globalNodes.remove(node)
        awaitingSet.remove(node)
        deferredFinds.removeAll { $0.from == node }
        // Deviation: Perl drops the subscriptions after the clean-up and so sends g_chg2 to the
        // node that just went down; dropping them first sends nothing to it.
        if let families = monitoredFamilies.removeValue(forKey: node) {
            for familyName in families { unsubscribe(node, familyName) }
        }
        effects.append(.deleteLocal(family: DatabaseFamilyName.globalNodes, key: node.rawValue))
        effects.append(.deleteLocal(family: DatabaseFamilyName.listeners, key: node.rawValue))
        if let shard = shards[node] {
            for familyName in shard.keys.sorted() {
                update(
                    source: node, familyName: familyName, set: [], delete: Array(shard[familyName]!.keys),
                    into: &effects)
            }
            shards[node] = nil
        }
        slaves.remove(node)
    }

    private mutating func unsubscribe(_ node: NodeID, _ familyName: String) {
        guard var list = subscribers[familyName] else { return }
        list.removeAll { $0 == node }
        subscribers[familyName] = list.isEmpty ? nil : list
    }

    /// Replaces a source's whole shard (Perl: `g_set`, which expects an empty shard; here keys the
    /// source no longer has are deleted, so a repeated `g_slave`/`g_set` cannot leave stale keys).
    private mutating func replace(source: NodeID, with contents: DatabaseContents, into effects: inout [Effect]) {
        let old = shards[source] ?? [:]
        for familyName in Set(old.keys).union(contents.keys).sorted() {
            let new = contents[familyName] ?? [:]
            let stale = old[familyName].map { $0.keys.filter { new[$0] == nil } } ?? []
            update(
                source: source, familyName: familyName, set: Array(new), delete: stale,
                into: &effects)
        }
    }

    /// Applies one family update from `source` (Perl: `g_upd`). `delete` must not contain keys of `set`.
    private mutating func update(
        source: NodeID,
        familyName: String,
        set: [(key: String, value: Value)],
        delete: [String],
        into effects: inout [Effect]
    ) {
        let sourceIsSlave = slaves.contains(source)
        var forwardSet = set  // for the other global nodes (only when the source is our slave)
        var notifySet = set  // for subscribers
        var forwardDelete: [String] = []
        var notifyDelete: [String] = []

        for (key, value) in set {
            shards[source, default: [:]][familyName, default: [:]][key] = value
            merged[familyName, default: [:]][key] = value
        }
        for key in delete {
            shards[source]?[familyName]?.removeValue(forKey: key)
            if let holder = remainingHolder(familyName: familyName, key: key) {
                let current = merged[familyName]?[key]
                let differs = current.map { !PerlValueEquality.equal($0, holder.value) } ?? true
                if holder.isSlave {
                    // Still held by one of our slaves: the key stays, with that slave's value.
                    if differs {
                        merged[familyName, default: [:]][key] = holder.value
                        forwardSet.append((key, holder.value))
                        notifySet.append((key, holder.value))
                    }
                } else {
                    // Only another global node's slaves still hold it.
                    forwardDelete.append(key)
                    if differs {
                        merged[familyName, default: [:]][key] = holder.value
                        notifySet.append((key, holder.value))
                    }
                }
            } else {
                merged[familyName]?.removeValue(forKey: key)
                notifyDelete.append(key)
                if sourceIsSlave { forwardDelete.append(key) }
            }
        }
        if merged[familyName]?.isEmpty ?? false { merged[familyName] = nil }
        if shards[source]?[familyName]?.isEmpty ?? false { shards[source]?[familyName] = nil }
        if shards[source]?.isEmpty ?? false { shards[source] = nil }

        if sourceIsSlave && (!forwardSet.isEmpty || !forwardDelete.isEmpty) {
            let message = DatabaseCoding.message(
                "g_upd", .text(familyName), DatabaseCoding.encode(Self.unique(forwardSet)),
                DatabaseCoding.encode(strings: forwardDelete))
            for node in globalNodes.sorted() where node != localNode {
                effects.append(.send(to: node, message: message))
            }
        }
        if !notifySet.isEmpty || !notifyDelete.isEmpty, let list = subscribers[familyName] {
            let message = DatabaseCoding.message(
                "g_chg2", .text(familyName), DatabaseCoding.encode(Self.unique(notifySet)),
                DatabaseCoding.encode(strings: notifyDelete))
            for node in list { effects.append(.send(to: node, message: message)) }
        }
    }

    /// Another shard that still holds `key` (a slave's shard first; the smallest node ID among equals).
    private func remainingHolder(familyName: String, key: String) -> (value: Value, isSlave: Bool)? {
        var best: (node: NodeID, value: Value, isSlave: Bool)?
        for (node, shard) in shards {
            guard let value = shard[familyName]?[key] else { continue }
            let isSlave = slaves.contains(node)
            if let current = best {
                if current.isSlave && !isSlave { continue }
                if current.isSlave == isSlave && current.node < node { continue }
            }
            best = (node, value, isSlave)
        }
        return best.map { ($0.value, $0.isSlave) }
    }

    /// Pairs with repeated keys collapsed (the last value wins), first-occurrence order kept.
    private static func unique(_ pairs: [(key: String, value: Value)]) -> [(key: String, value: Value)] {
        var index: [String: Int] = [:]
        var result: [(key: String, value: Value)] = []
        result.reserveCapacity(pairs.count)
        for pair in pairs {
            if let existing = index[pair.key] {
                result[existing].value = pair.value
            } else {
                index[pair.key] = result.count
                result.append(pair)
            }
        }
        return result
    }
}
