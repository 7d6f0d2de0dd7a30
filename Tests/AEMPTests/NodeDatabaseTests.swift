import AEMP
import AEMPCodecs
import AEMPTestSupport
import Testing

/// Swift-only networks: a Swift seed is a global node; lookups and the database work through it.
@Suite("Node: seeds, address lookup and the global database")
struct NodeDatabaseTests {
    static let secret = "database-test-secret"

    /// A global seed (its own seed) and `count` nodes using it.
    static func network(_ name: String, count: Int) async throws -> (seed: Node, nodes: [Node]) {
        let probe = try await Node.start(NodeConfiguration(nodeID: "\(name)-probe", binds: ["127.0.0.1:0"], secret: secret))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()
        let seed = try await Node.start(
            NodeConfiguration(nodeID: "\(name)-seed", binds: [address], seeds: [address], secret: secret))
        var nodes: [Node] = []
        for index in 0..<count {
            nodes.append(
                try await Node.start(
                    NodeConfiguration(nodeID: "\(name)-\(index)", binds: ["127.0.0.1:0"], seeds: [address], secret: secret)))
        }
        // Every node is up at the seed, and has sent its listeners (family 'l).
        let expected = Set(nodes.map(\.nodeID.rawValue) + [seed.nodeID.rawValue])
        try await NodeNetworkTests.waitUntil {
            let listeners = (try? await seed.dbKeys("'l", timeout: .seconds(1))) ?? []
            return Set(listeners) == expected
        }
        return (seed, nodes)
    }

    static func shutdown(_ seed: Node, _ nodes: [Node]) async {
        for node in nodes { await node.shutdown() }
        await seed.shutdown()
    }

    @Test func nodesFindEachOtherThroughTheSeed() async throws {
        let (seed, nodes) = try await Self.network("lookup", count: 2)
        let inbox = Inbox<[Value]>()
        let port = nodes[1].port { context, message in inbox.put([.text(context.sourceNode.rawValue)] + message) }
        // Node 0 never talked to node 1: it asks the seed (g_find), dials, and delivers.
        nodes[0].send(port, "found you")
        #expect(try await inbox.next() == [.text(nodes[0].nodeID.rawValue), "found you"])
        #expect(await nodes[0].state(of: nodes[1].nodeID) == .up)
        await Self.shutdown(seed, nodes)
    }

    @Test func setQueryDeleteAndMonitorAcrossNodes() async throws {
        let (seed, nodes) = try await Self.network("db", count: 2)
        let changes = Inbox<DatabaseChange>()
        let monitor = nodes[1].dbMonitor("aemp_test") { changes.put($0) }
        let initial = try await changes.next()
        #expect(initial.family.isEmpty)

        nodes[0].dbSet("aemp_test", "k1", ["v": 1])
        let added = try await changes.next()
        #expect(added.added == ["k1"] && added.family["k1"] == ["v": 1])
        #expect(try await nodes[1].dbFamily("aemp_test") == ["k1": ["v": 1]])
        #expect(try await nodes[1].dbKeys("aemp_test") == ["k1"])
        #expect(try await nodes[0].dbValues("aemp_test") == [["v": 1]])

        nodes[0].dbDel("aemp_test", ["k1"])
        #expect(try await changes.next().deleted == ["k1"])
        #expect(try await nodes[1].dbKeys("aemp_test") == [])

        // A registered port's key disappears when the port dies.
        let port = nodes[0].port { _, _ in }
        nodes[0].dbReg("aemp_test", port: port, value: "worker")
        #expect(try await changes.next().added == [port.description])
        nodes[0].kill(port)
        #expect(try await changes.next().deleted == [port.description])

        // A guarded key goes away with its guard; a node that goes down takes its keys along.
        do {
            let guarded = nodes[0].dbSetGuarded("aemp_test", "temporary", 1)
            #expect(try await changes.next().added == ["temporary"])
            _ = guarded
        }
        #expect(try await changes.next().deleted == ["temporary"])
        nodes[0].dbSet("aemp_test", "owned", 2)
        #expect(try await changes.next().added == ["owned"])
        await nodes[0].shutdown()
        #expect(try await changes.next().deleted == ["owned"])
        _ = monitor
        await Self.shutdown(seed, nodes)
    }

    @Test func queriesWithoutAMasterTimeOut() async throws {
        let node = try await Node.start(NodeConfiguration(nodeID: "db-alone", binds: [], secret: Self.secret))
        await #expect(throws: CallError.timeout(.milliseconds(100))) {
            _ = try await node.dbFamily("x", timeout: .milliseconds(100))
        }
        await node.shutdown()
    }
}
