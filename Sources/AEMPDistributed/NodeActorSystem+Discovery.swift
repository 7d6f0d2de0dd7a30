import AEMP
import AEMPCodecs
import Distributed

/// Finding actors across the network through the global database: an actor registers in a family
/// under its ID (Perl `db_reg`), and the entry disappears when the actor's port dies, so a family is
/// the live set of actors offering a service. A Perl node sees the same family with `db_family` /
/// `db_mon` and can `cal` the actors it lists.
extension NodeActorSystem {
    /// Registers a local actor in `family` of the global database, under its ID, until it dies.
    /// Perl: `db_reg $family => $port, $value`.
    ///
    /// - Parameters:
    ///   - actor: the actor (local to this system).
    ///   - family: the family, e.g. `"workers"`.
    ///   - value: a value to publish with it (a load figure, a version…).
    public func register<Act: DistributedActor>(_ actor: Act, in family: String, value: Value = .null)
    where Act.ID == PortID {
        node.dbReg(family, port: actor.id, value: value)
    }

    /// The actors registered in `family` now, resolved as `Act` (keys that are no port IDs are
    /// skipped). Perl: `db_keys`.
    ///
    /// - Throws: ``AEMP/CallError`` when the database master does not answer in time.
    public func actors<Act: DistributedActor>(
        _ type: Act.Type = Act.self, in family: String, timeout: Duration = .seconds(30)
    ) async throws -> [Act] where Act.ID == PortID, Act.ActorSystem == NodeActorSystem {
        try await node.dbKeys(family, timeout: timeout).sorted().compactMap { key in
            guard let id = PortID(key) else { return nil }
            return try Act.resolve(id: id, using: self)
        }
    }

    /// Waits until `family` lists at least one actor and returns one (the first by ID), watching the
    /// family with `db_mon` meanwhile.
    ///
    /// - Throws: ``AEMP/CallError/timeout(_:)`` when none appears within `timeout`;
    ///   `CancellationError` when the task is cancelled.
    public func firstActor<Act: DistributedActor>(
        _ type: Act.Type = Act.self, in family: String, timeout: Duration = .seconds(30)
    ) async throws -> Act where Act.ID == PortID, Act.ActorSystem == NodeActorSystem {
        let found = try await withThrowingTaskGroup(of: PortID?.self) { group in
            group.addTask { [node] in
                for await change in node.databaseChanges(family) {
                    if let id = change.family.keys.sorted().lazy.compactMap(PortID.init).first { return id }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                throw CallError.timeout(timeout)
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let found else { throw CancellationError() }
        return try Act.resolve(id: found, using: self)
    }
}
