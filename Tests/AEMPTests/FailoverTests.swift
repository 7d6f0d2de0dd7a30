import AEMP
import AEMPCodecs
import AEMPTestSupport
import Testing

@testable import AEMP

/// The global database when its master goes away (as after kill -9: the connections close): the
/// node picks the other global node as master, re-sends what it had in flight, and `db_set`,
/// `db_family` and `db_mon` keep working. The recovery time is printed for RELIABILITY.md.
@Suite("Global: master failover")
struct FailoverTests {
    static func master(of node: Node) async -> NodeID? {
        await node.evaluate { $0.database.master }
    }

    @Test(.timeLimit(.minutes(1)))
    func masterFailover() async throws {
        let secret = NodeNetworkTests.secret
        // Two global nodes: each has both seeds, itself among them.
        var addresses: [String] = []
        for _ in 0..<2 {
            let probe = try await Node.start(NodeConfiguration(nodeID: "probe", binds: ["127.0.0.1:0"], secret: secret))
            addresses.append(probe.listenerAddresses[0])
            await probe.shutdown()
        }
        func global(_ index: Int) async throws -> Node {
            try await Node.start(
                NodeConfiguration(
                    nodeID: "failover-g\(index)-\(UInt32.random(in: 0...UInt32.max))", binds: [addresses[index]],
                    seeds: addresses, secret: secret))
        }
        let globals = [try await global(0), try await global(1)]
        let worker = try await Node.start(NodeNetworkTests.configuration("failover-w", seeds: addresses))
        let writer = try await Node.start(NodeNetworkTests.configuration("failover-x", seeds: addresses))
        for node in [worker, writer] {
            try await NodeNetworkTests.waitUntil {
                let master = await Self.master(of: node)
                return master != nil && master != node.nodeID
            }
        }
        let changes = Inbox<DatabaseChange>()
        let monitor = worker.dbMonitor("failover") { changes.put($0) }
        worker.dbSet("failover", "w", "worker")
        writer.dbSet("failover", "x", 1)
        try await NodeNetworkTests.waitUntil {
            (try? await worker.dbFamily("failover", timeout: .seconds(1)).count) == 2
        }

        // The worker's master dies.
        let oldMaster = try #require(await Self.master(of: worker))
        let dying = try #require(globals.first { $0.nodeID == oldMaster })
        let survivor = try #require(globals.first { $0.nodeID != oldMaster })
        let killed = ContinuousClock.now
        await dying.shutdown()
        try await NodeNetworkTests.waitUntil { await Self.master(of: worker) == survivor.nodeID }
        let newMaster = ContinuousClock.now - killed
        // Reads, writes and the monitor work through the new master.
        try await NodeNetworkTests.waitUntil {
            let family = try? await worker.dbFamily("failover", timeout: .seconds(1))
            return family?["w"] == "worker" && family?["x"] == 1
        }
        let readsAgain = ContinuousClock.now - killed
        writer.dbSet("failover", "x", 2)
        worker.dbSet("failover", "w2", "after")
        try await NodeNetworkTests.waitUntil {
            let family = try? await writer.dbFamily("failover", timeout: .seconds(1))
            return family?["w2"] == "after" && family?["x"] == 2
        }
        var sawChange = false
        while !sawChange, let change = try? await changes.next(within: .seconds(5)) {
            sawChange = change.family["x"] == 2
        }
        #expect(sawChange, "db_mon reported the change made after the failover")
        print("failover: new master after \(newMaster), db_family answered after \(readsAgain)")
        #expect(readsAgain < .seconds(5))
        _ = monitor
        for node in [writer, worker, survivor] { await node.shutdown() }
    }
}
