import AEMPCodecs
import NIOCore
import Synchronization

extension Node {
    /// Sets `key` in `family` of this node's part of the global database (nothing is sent when the
    /// value is unchanged). Perl: `db_set $family => $key => $value`.
    ///
    /// User families should match `[A-Za-z][A-Za-z0-9_:]*`; names starting with `'` are reserved.
    public func dbSet(_ family: String, _ key: String, _ value: Value = .null) {
        perform { core in core.apply(core.database.dbSet(family, key, value)) }
    }

    /// Sets `key` like ``dbSet(_:_:_:)`` and deletes it again when the guard is cancelled or dropped.
    /// Perl: the guard `db_set` returns in non-void context.
    public func dbSetGuarded(_ family: String, _ key: String, _ value: Value = .null) -> DatabaseGuard {
        dbSet(family, key, value)
        return DatabaseGuard(node: self, family: family, key: key)
    }

    /// Deletes keys of `family` from this node's part of the database. Perl: `db_del $family => @keys`.
    public func dbDel(_ family: String, _ keys: [String]) {
        perform { core in core.apply(core.database.dbDel(family, keys)) }
    }

    /// Sets `port`'s ID as key of `family` and deletes it when the port dies. Perl: `db_reg`.
    public func dbReg(_ family: String, port: PortID, value: Value = .null) {
        perform { core in core.apply(core.database.dbReg(family, port: port, value: value)) }
    }

    /// The merged contents of `family` across the network, from this node's master. Perl: `db_family`.
    ///
    /// - Throws: ``CallError/timeout(_:)`` when no master answers in time (a node without seeds has
    ///   none), ``CallError/nodeShutDown``.
    public func dbFamily(_ family: String, timeout: Duration = .seconds(30)) async throws(CallError) -> [String: Value] {
        guard case .family(let contents) = try await query(timeout, { $0.dbFamily(family) }) else { return [:] }
        return contents
    }

    /// The keys of `family`. Perl: `db_keys`.
    public func dbKeys(_ family: String, timeout: Duration = .seconds(30)) async throws(CallError) -> [String] {
        guard case .keys(let keys) = try await query(timeout, { $0.dbKeys(family) }) else { return [] }
        return keys
    }

    /// The values of `family`. Perl: `db_values`.
    public func dbValues(_ family: String, timeout: Duration = .seconds(30)) async throws(CallError) -> [Value] {
        guard case .values(let values) = try await query(timeout, { $0.dbValues(family) }) else { return [] }
        return values
    }

    /// The global node this node's database operations go to (Perl's `$MASTER`): this node itself
    /// when it is global, `nil` while no global node is connected (operations wait for one). It
    /// changes when the master is lost; pending requests are then re-sent to the new one.
    public func databaseMaster() async -> NodeID? {
        await evaluate { $0.database.master }
    }

    private func query(
        _ timeout: Duration, _ make: @escaping @Sendable (DatabaseClient) -> (DatabaseRequestID, [DatabaseAction])
    ) async throws(CallError) -> DatabaseQueryResult {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<DatabaseQueryResult, CallError>, Never>) in
            perform { core in
                core.query(make, timeout: timeout) { continuation.resume(returning: $0) }
            }
        }
        return try result.get()
    }

    /// Calls `callback` with every change of `family`: first the whole family, then each change, with
    /// the added, changed and deleted keys. Perl: `db_mon $family => $cb->(\%family, \@a, \@c, \@d)`.
    ///
    /// - Returns: a guard; cancelling or dropping it ends the monitor.
    public func dbMonitor(_ family: String, _ callback: @escaping @Sendable (DatabaseChange) -> Void) -> MonitorGuard {
        let guardObject = MonitorGuard(node: self)
        let attach = guardObject.attach
        perform { core in attach(core.monitorDatabase(family, callback)) }
        return guardObject
    }
}

/// Deletes a database key when cancelled or dropped. Perl: the guard of `db_set`.
public final class DatabaseGuard: Sendable {
    private let node: Node
    private let family: String
    private let key: String
    private let done = Mutex<Bool>(false)

    init(node: Node, family: String, key: String) {
        self.node = node
        self.family = family
        self.key = key
    }

    /// Deletes the key now; later calls do nothing.
    public func cancel() {
        let first = done.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        if first { node.dbDel(family, [key]) }
    }

    deinit {
        cancel()
    }
}
