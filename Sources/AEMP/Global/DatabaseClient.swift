import AEMPCodecs

/// Every node's side of the distributed database, master selection and address lookup (spec §6, §7).
///
/// Perl: the `db_*` API and master handling of `AnyEvent::MP::Kernel` (`db_set`, `db_del`, `db_reg`,
/// `db_family`, `db_keys`, `db_values`, `db_mon`, `master_search`, `master_set`, `g_find`), plus the
/// switch into global mode (`AnyEvent::MP::Global`), whose role this object owns as a
/// ``GlobalDatabase`` once the node is global.
///
/// A sans-IO, loop-confined state machine: no sockets, clocks or callbacks. The Node calls one
/// method per event and applies the returned ``DatabaseAction``s in order:
///
/// | Node event | call |
/// |---|---|
/// | configure: listeners known | ``setListeners(_:)`` |
/// | seed's greeting line 1 read (remote node ID known) | ``seedGreeted(_:)`` (own ID: the node becomes global) |
/// | connection attached / lost | ``nodeUp(_:)`` / ``nodeDown(_:)`` |
/// | node-port message with a `g_*` tag (``handles(tag:)``) | ``receive(from:tag:arguments:)`` |
/// | address of an unknown node needed | ``lookup(_:)`` |
/// | a local port died | ``portDied(_:)`` |
/// | user API | ``dbSet(_:_:_:)``, `dbDel(_:_:)`, ``dbReg(_:port:value:)``, ``dbFamily(_:)``, ``dbKeys(_:)``, ``dbValues(_:)``, ``cancelQuery(_:)``, ``dbMonitor(_:)``, ``dbMonitorCancel(_:)`` |
/// | `configure` with a new seed list | ``resetSeeds()`` |
/// | the node loads the global service explicitly | ``becomeGlobal()`` |
///
/// How the Node applies the actions:
///
/// | action | Node does |
/// |---|---|
/// | ``DatabaseAction/send(to:message:)`` | `snd` the array as-is on the connection to `to` (connecting / queueing as for any message) |
/// | ``DatabaseAction/keepConnected(_:)`` / ``DatabaseAction/stopKeepingConnected(_:)`` | start / stop reconnecting to that node with back-off (Perl `keepalive_add` / `keepalive_del`) |
/// | ``DatabaseAction/lookupResult(node:addresses:)`` | dial the addresses of a pending connect; `nil` fails it with `no known address` |
/// | ``DatabaseAction/queryResult(_:_:)`` | call the callback stored under the request ID, then forget it |
/// | ``DatabaseAction/monitorEvent(_:_:)`` | call the `db_mon` callback stored under the monitor ID |
/// | ``DatabaseAction/masterChanged(_:)``, ``DatabaseAction/becameGlobal``, ``DatabaseAction/malformed(from:tag:reason:)`` | log |
///
/// Messages this node addresses to itself (a global node is its own master) never leave: they are
/// handled inside the same call, so a global node's queries and monitors are answered within the
/// call that made them.
public final class DatabaseClient {
    /// This node.
    public let localNode: NodeID
    /// This node's own database (Perl: `%LOCAL_DB`); `'l` holds its listener list.
    public internal(set) var localDatabase: DatabaseContents = [:]
    /// The master all database operations go to (Perl: `$MASTER`); this node itself when global,
    /// `nil` while no seed node is connected.
    public internal(set) var master: NodeID?
    /// Node IDs of the seeds, in the order their greetings were read (Perl: `%NODE_SEED`).
    public internal(set) var seedNodes: [NodeID] = []
    /// Nodes currently connected.
    public internal(set) var upNodes: Set<NodeID> = []
    /// Connected nodes that announced themselves as global (Perl: `%GLOBAL_NODE`).
    public internal(set) var knownGlobalNodes: Set<NodeID> = []
    /// The global role; non-nil once this node is global.
    public internal(set) var globalDatabase: GlobalDatabase?

    /// Requests kept for the master and re-sent to every new master (Perl: `%GLOBAL_REQ`).
    var pending: [String: (sequence: Int, message: [Value])] = [:]
    var pendingSequence = 0
    /// The last request ID handed out (Perl: `$GLOBAL_RES_ID`, starts at `"a"`, pre-incremented).
    var requestCounter = "a"
    /// Outstanding queries by request ID and what they asked for.
    var queries: [String: QueryKind] = [:]

    /// Monitor ID → family.
    var monitors: [DatabaseMonitorID: String] = [:]
    /// Family → monitors in creation order (Perl: `%LOCAL_MON`).
    var familyMonitors: [String: [DatabaseMonitorID]] = [:]
    /// The node's copy of each monitored family (Perl: `%MON_DB`).
    var monitorCopies: [String: DatabaseFamily] = [:]
    var nextMonitor = 0
    /// Monitors whose events this object consumes itself (the `'g` keep-alive monitor).
    var internalMonitors: Set<DatabaseMonitorID> = []
    /// Nodes for which ``DatabaseAction/keepConnected(_:)`` is in force.
    var keptConnected: Set<NodeID> = []
    /// Families each port was registered in with ``dbReg(_:port:value:)``.
    var registrations: [PortID: Set<String>] = [:]

    /// Messages to this node itself, handled before a call returns.
    var selfQueue: [[Value]] = []
    var selfQueueHead = 0
    /// Actions collected during the current call.
    var output: [DatabaseAction] = []

    /// The most self-addressed messages handled in one call (a guard; the protocol needs a handful).
    static let selfDeliveryLimit = 1_000_000

    enum QueryKind {
        case family, keys, values
    }

    /// Creates the database side of a node.
    ///
    /// - Parameter localNode: this node's ID.
    public init(localNode: NodeID) {
        self.localNode = localNode
    }

    /// Whether this node is a global node.
    public var isGlobal: Bool { globalDatabase != nil }

    /// The node's copy of a family it monitors (Perl: `$MON_DB{$family}`); `nil` if not monitored.
    ///
    /// - Parameter family: the family name.
    /// - Returns: the family as last reported by the master.
    public func monitoredFamily(_ family: String) -> DatabaseFamily? {
        monitorCopies[family]
    }

    /// The merged network-wide view of a family on a global node (Perl: `grp_get`, which reads
    /// `%GLOBAL_DB`); `nil` on other nodes or if the family is empty.
    ///
    /// - Parameter family: the family name.
    /// - Returns: the merged family.
    public func globalFamily(_ family: String) -> DatabaseFamily? {
        globalDatabase?.merged[family]
    }

    /// Whether a node-port tag belongs to the database protocol (route it to ``receive(from:tag:arguments:)``).
    ///
    /// - Parameter tag: the node-port tag.
    /// - Returns: true for every `g_*` tag of spec §6.3.
    public static func handles(tag: String) -> Bool {
        switch tag {
        case "g_found", "g_reply", "g_chg1", "g_chg2": true
        default: GlobalDatabase.handles(tag: tag)
        }
    }

    // MARK: - Node events

    /// Sets this node's listener list (`'l` → own node ID → addresses). Perl: `configure` runs
    /// `db_set "'l" => $NODE => $BINDS`.
    ///
    /// - Parameter addresses: the concrete `host:port` strings the node listens on.
    /// - Returns: actions to apply.
    public func setListeners(_ addresses: [String]) -> [DatabaseAction] {
        dbSet(DatabaseFamilyName.listeners, localNode.rawValue, DatabaseCoding.encode(strings: addresses))
    }

    /// The greeting of a connection to a seed address named `node` (Perl: `on_greeted` of `seed_connect`).
    ///
    /// If `node` is this node, the node becomes global (its seed list contains itself). Otherwise the
    /// node is recorded as a seed node and gets `["","g_slave"]` (the Node queues it until the
    /// connection is attached, or sends it on another connection to that node).
    ///
    /// - Parameter node: the node ID from the seed's greeting.
    /// - Returns: actions to apply.
    public func seedGreeted(_ node: NodeID) -> [DatabaseAction] {
        if node == localNode {
            becomeGlobalNow()
            return finish()
        }
        if !seedNodes.contains(node) { seedNodes.append(node) }
        send(node, DatabaseCoding.message("g_slave"))
        // Deviation: Perl only picks a master on a later node-up; a seed that is already connected
        // (for another reason) becomes master at once here.
        if globalDatabase == nil && master == nil && upNodes.contains(node) { setMaster(node) }
        return finish()
    }

    /// Forgets the seed nodes (Perl: `set_seeds` clears `%NODE_SEED`). The current master stays.
    public func resetSeeds() {
        seedNodes.removeAll()
    }

    /// Makes this node a global node (Perl: loading `AnyEvent::MP::Global`). Also happens on a bare
    /// `["","g_slave"]` and when ``seedGreeted(_:)`` names this node.
    ///
    /// - Returns: actions to apply (`g_global` to every connected node, `g_set` to known global nodes,
    ///   ``DatabaseAction/keepConnected(_:)`` for global nodes, ...).
    public func becomeGlobal() -> [DatabaseAction] {
        becomeGlobalNow()
        return finish()
    }

    /// A connection to `node` was attached (Perl: `mon_nodes` up event).
    ///
    /// - Parameter node: the node that came up.
    /// - Returns: actions to apply (the first seed to come up becomes master: `g_slave` with the local
    ///   database, then every kept request; seeds get a bare `g_slave`; a global node says `g_global`).
    public func nodeUp(_ node: NodeID) -> [DatabaseAction] {
        guard node != localNode else { return [] }
        upNodes.insert(node)
        let isSeed = seedNodes.contains(node)
        if isSeed && globalDatabase == nil && master == nil { setMaster(node) }
        if isSeed { send(node, DatabaseCoding.message("g_slave")) }
        if let effects = globalDatabase?.nodeUp(node) { apply(effects, from: node, tag: "node-up") }
        return finish()
    }

    /// A connection to `node` was lost (Perl: `mon_nodes` down event).
    ///
    /// - Parameter node: the node that went down.
    /// - Returns: actions to apply (a new master is picked if the master went down; a global node
    ///   removes the node's data and tells subscribers and other global nodes).
    public func nodeDown(_ node: NodeID) -> [DatabaseAction] {
        guard node != localNode else { return [] }
        upNodes.remove(node)
        knownGlobalNodes.remove(node)
        if globalDatabase != nil {
            let effects = globalDatabase!.nodeDown(node)
            apply(effects, from: node, tag: "node-down")
        } else if master == node {
            master = nil
            searchMaster()
            if master == nil { output.append(.masterChanged(nil)) }
        }
        return finish()
    }

    // MARK: - User API

    /// Sets `key` in `family` of this node's database; nothing is sent if the stored value is equal
    /// (Perl: `db_set`, which compares with `sv_eq`; see ``PerlValueEquality``).
    ///
    /// - Parameters:
    ///   - family: the family name.
    ///   - key: the key.
    ///   - value: the value (Perl's optional value defaults to `undef` = null).
    /// - Returns: actions to apply (`["","g_upd",family,{key:value}]` to the master).
    public func dbSet(_ family: String, _ key: String, _ value: Value = .null) -> [DatabaseAction] {
        setLocal(family, key, value)
        return finish()
    }

    /// Deletes keys from `family` of this node's database; keys it does not hold are ignored, and
    /// nothing is sent if none remain (Perl: `db_del`).
    ///
    /// - Parameters:
    ///   - family: the family name.
    ///   - keys: the keys to delete.
    /// - Returns: actions to apply (`["","g_upd",family,null,[keys]]` to the master).
    public func dbDel(_ family: String, _ keys: [String]) -> [DatabaseAction] {
        deleteLocal(family, keys)
        return finish()
    }

    /// Deletes keys from `family` of this node's database (variadic form).
    ///
    /// - Parameters:
    ///   - family: the family name.
    ///   - keys: the keys to delete.
    /// - Returns: actions to apply.
    public func dbDel(_ family: String, _ keys: String...) -> [DatabaseAction] {
        dbDel(family, keys)
    }

    /// Registers a port in a family: sets `family`/`port` to `value` now and deletes it when the
    /// port dies (the Node reports that with ``portDied(_:)``). Perl: `db_reg`.
    ///
    /// - Parameters:
    ///   - family: the family name.
    ///   - port: the port (its full port ID is the key).
    ///   - value: the value, null by default.
    /// - Returns: actions to apply.
    public func dbReg(_ family: String, port: PortID, value: Value = .null) -> [DatabaseAction] {
        registrations[port, default: []].insert(family)
        setLocal(family, port.description, value)
        return finish()
    }

    /// A local port died: delete every ``dbReg(_:port:value:)`` registration of it.
    ///
    /// - Parameter port: the port that died.
    /// - Returns: actions to apply.
    public func portDied(_ port: PortID) -> [DatabaseAction] {
        guard let families = registrations.removeValue(forKey: port) else { return [] }
        for family in families.sorted() { deleteLocal(family, [port.description]) }
        return finish()
    }

    /// Asks the master for a whole family. Perl: `db_family`.
    ///
    /// - Parameter family: the family name.
    /// - Returns: the request ID (the answer arrives as ``DatabaseAction/queryResult(_:_:)`` with
    ///   ``DatabaseQueryResult/family(_:)``) and actions to apply.
    public func dbFamily(_ family: String) -> (DatabaseRequestID, [DatabaseAction]) {
        query("g_db_family", family, .family)
    }

    /// Asks the master for the keys of a family. Perl: `db_keys`.
    ///
    /// - Parameter family: the family name.
    /// - Returns: the request ID (answer: ``DatabaseQueryResult/keys(_:)``) and actions to apply.
    public func dbKeys(_ family: String) -> (DatabaseRequestID, [DatabaseAction]) {
        query("g_db_keys", family, .keys)
    }

    /// Asks the master for the values of a family. Perl: `db_values`.
    ///
    /// - Parameter family: the family name.
    /// - Returns: the request ID (answer: ``DatabaseQueryResult/values(_:)``) and actions to apply.
    public func dbValues(_ family: String) -> (DatabaseRequestID, [DatabaseAction]) {
        query("g_db_values", family, .values)
    }

    /// Forgets an outstanding query; a late answer is then ignored. (No Perl counterpart: Perl keeps
    /// queries until answered.)
    ///
    /// - Parameter id: the request ID.
    public func cancelQuery(_ id: DatabaseRequestID) {
        queries.removeValue(forKey: id.rawValue)
        pending.removeValue(forKey: id.rawValue)
    }

    /// Starts monitoring a family. Perl: `db_mon`.
    ///
    /// The first event of the monitor holds the whole family as `added` (at once if the node already
    /// monitors the family, otherwise when the master's `g_chg1` arrives); later events report changes.
    ///
    /// - Parameter family: the family name.
    /// - Returns: the monitor ID (events arrive as ``DatabaseAction/monitorEvent(_:_:)``) and actions
    ///   to apply (`["","g_mon1",family]` to the master for the first monitor of a family).
    public func dbMonitor(_ family: String) -> (DatabaseMonitorID, [DatabaseAction]) {
        let id = addMonitor(family)
        return (id, finish())
    }

    /// Stops a monitor (Perl: dropping the `db_mon` guard); the last one of a family sends `g_mon0`.
    ///
    /// - Parameter id: the monitor ID.
    /// - Returns: actions to apply.
    public func dbMonitorCancel(_ id: DatabaseMonitorID) -> [DatabaseAction] {
        removeMonitor(id)
        return finish()
    }

    /// Looks up the addresses of a node (spec §7 step 2). A global node answers from its merged `'l`
    /// (at once, unless it is still waiting for another global node's `g_set` and does not know the
    /// node yet: then when that arrives); any other node asks its master with `["","g_find",node]`
    /// (kept and re-sent to a new master until answered).
    ///
    /// - Parameter node: the node to find.
    /// - Returns: actions to apply; the answer is a ``DatabaseAction/lookupResult(node:addresses:)``.
    public func lookup(_ node: NodeID) -> [DatabaseAction] {
        if globalDatabase != nil {
            forwardToGlobal(from: localNode, tag: "g_find", arguments: [.text(node.rawValue)])
        } else {
            addPending("g_find \(node.rawValue)", DatabaseCoding.message("g_find", .text(node.rawValue)))
        }
        return finish()
    }

    // MARK: - Internals shared with the message handlers

    func setLocal(_ family: String, _ key: String, _ value: Value) {
        if let old = localDatabase[family]?[key], PerlValueEquality.equal(old, value) { return }
        localDatabase[family, default: [:]][key] = value
        sendToMaster(DatabaseCoding.message("g_upd", .text(family), DatabaseCoding.encode([(key, value)])))
    }

    func deleteLocal(_ family: String, _ keys: [String]) {
        guard localDatabase[family] != nil else { return }
        var deleted: [String] = []
        for key in keys where localDatabase[family]?.removeValue(forKey: key) != nil { deleted.append(key) }
        if localDatabase[family]?.isEmpty ?? false { localDatabase[family] = nil }
        guard !deleted.isEmpty else { return }
        sendToMaster(DatabaseCoding.message("g_upd", .text(family), .null, DatabaseCoding.encode(strings: deleted)))
    }

    func query(_ tag: String, _ family: String, _ kind: QueryKind) -> (DatabaseRequestID, [DatabaseAction]) {
        requestCounter = PerlStringIncrement.increment(requestCounter)
        let id = requestCounter
        queries[id] = kind
        addPending(id, DatabaseCoding.message(tag, .text(family), .text(id)))
        return (DatabaseRequestID(id), finish())
    }

    func addMonitor(_ family: String, isInternal: Bool = false) -> DatabaseMonitorID {
        nextMonitor += 1
        let id = DatabaseMonitorID(nextMonitor)
        monitors[id] = family
        if isInternal { internalMonitors.insert(id) }
        if let copy = monitorCopies[family] {
            familyMonitors[family, default: []].append(id)
            let change = DatabaseChange(
                familyName: family, family: copy, added: Array(copy.keys), changed: [], deleted: [])
            deliver(change, to: id)
        } else {
            familyMonitors[family] = [id]
            monitorCopies[family] = [:]
            addPending("mon1 \(family)", DatabaseCoding.message("g_mon1", .text(family)))
        }
        return id
    }

    func removeMonitor(_ id: DatabaseMonitorID) {
        guard let family = monitors.removeValue(forKey: id) else { return }
        internalMonitors.remove(id)
        familyMonitors[family]?.removeAll { $0 == id }
        guard familyMonitors[family]?.isEmpty ?? true else { return }
        familyMonitors[family] = nil
        monitorCopies[family] = nil
        pending.removeValue(forKey: "mon1 \(family)")
        sendToMaster(DatabaseCoding.message("g_mon0", .text(family)))
    }

    /// Perl: `global_req_add`: keep the request and send it if there is a master.
    func addPending(_ key: String, _ message: [Value]) {
        guard pending[key] == nil else { return }
        pendingSequence += 1
        pending[key] = (pendingSequence, message)
        sendToMaster(message)
    }

    func sendToMaster(_ message: [Value]) {
        if let master { send(master, message) }
    }

    func send(_ node: NodeID, _ message: [Value]) {
        if node == localNode {
            selfQueue.append(message)
        } else {
            output.append(.send(to: node, message: message))
        }
    }

    /// Perl: `master_set`.
    func setMaster(_ node: NodeID) {
        master = node
        output.append(.masterChanged(node))
        send(node, DatabaseCoding.message("g_slave", DatabaseCoding.encode(localDatabase)))
        for entry in pending.values.sorted(by: { $0.sequence < $1.sequence }) { send(node, entry.message) }
    }

    /// Perl: `master_search`: the first connected seed node.
    func searchMaster() {
        guard globalDatabase == nil else { return }
        if let seed = seedNodes.first(where: { upNodes.contains($0) }) { setMaster(seed) }
    }

    /// Perl: loading `AnyEvent::MP::Global` (its `post_configure` block).
    func becomeGlobalNow() {
        guard globalDatabase == nil else { return }
        globalDatabase = GlobalDatabase(localNode: localNode, globalNodes: knownGlobalNodes.intersection(upNodes))
        output.append(.becameGlobal)
        setMaster(localNode)
        drainSelfQueue()
        setLocal(DatabaseFamilyName.globalNodes, localNode.rawValue, .null)
        drainSelfQueue()
        for node in upNodes.sorted() {
            send(node, DatabaseCoding.message("g_global"))
            if knownGlobalNodes.contains(node) {
                // Perl: g_global_connect for nodes already known as global.
                let effects = globalDatabase!.handle(from: node, tag: "g_global", arguments: [])
                apply(effects, from: node, tag: "g_global")
            }
        }
        // Keep connections to every global node (Perl: `db_mon "'g"` with keepalive_add/del).
        _ = addMonitor(DatabaseFamilyName.globalNodes, isInternal: true)
    }

    func apply(_ effects: [GlobalDatabase.Effect], from node: NodeID, tag: String) {
        for effect in effects {
            switch effect {
            case .send(let to, let message): send(to, message)
            case .setLocal(let family, let key, let value): setLocal(family, key, value)
            case .deleteLocal(let family, let key): deleteLocal(family, [key])
            case .malformed(let reason): output.append(.malformed(from: node, tag: tag, reason: reason))
            }
        }
    }

    func deliver(_ change: DatabaseChange, to id: DatabaseMonitorID) {
        guard internalMonitors.contains(id) else {
            output.append(.monitorEvent(id, change))
            return
        }
        // The 'g keep-alive monitor.
        for key in change.added {
            guard let node = NodeID(key), node != localNode, keptConnected.insert(node).inserted else { continue }
            output.append(.keepConnected(node))
        }
        for key in change.deleted {
            guard let node = NodeID(key), keptConnected.remove(node) != nil else { continue }
            output.append(.stopKeepingConnected(node))
        }
    }

    /// Handles self-addressed messages, then hands out the collected actions.
    func finish() -> [DatabaseAction] {
        drainSelfQueue()
        var result: [DatabaseAction] = []
        swap(&result, &output)
        return result
    }

    func drainSelfQueue() {
        var handled = 0
        while selfQueueHead < selfQueue.count && handled < Self.selfDeliveryLimit {
            let message = selfQueue[selfQueueHead]
            selfQueueHead += 1
            handled += 1
            guard message.count >= 2, let tag = message[1].stringValue else { continue }
            dispatch(from: localNode, tag: tag, arguments: Array(message.dropFirst(2)))
        }
        if selfQueueHead >= selfQueue.count {
            selfQueue.removeAll(keepingCapacity: true)
            selfQueueHead = 0
        }
    }
}

@available(*, unavailable)
extension DatabaseClient: Sendable {}
