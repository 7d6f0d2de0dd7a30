import AEMPCodecs
import Testing

@testable import AEMP

/// Several nodes' ``DatabaseClient``s wired through ``GlobalTestNetwork``.
@Suite("Global: in-memory networks")
struct GlobalNetworkTests {
    func id(_ name: String) -> NodeID { NodeID(name)! }

    /// Seed `g` (global because its seed list names itself) and three nodes seeded with it.
    func star(perlStrings: Bool = false) -> GlobalTestNetwork {
        let net = GlobalTestNetwork()
        net.perlStrings = perlStrings
        net.add("g", seeds: ["g"], listener: "127.0.0.1:4040")
        for (index, name) in ["a", "b", "c"].enumerated() {
            net.add(name, seeds: ["g"], listener: "127.0.0.1:\(4041 + index)")
            net.connect(name, "g")
        }
        net.run()
        return net
    }

    @Test("Swift-only network: set, del, family, keys, values, mon and g_find", arguments: [false, true])
    func swiftOnly(perlStrings: Bool) throws {
        let net = star(perlStrings: perlStrings)
        #expect(net["g"].isGlobal)
        for name in ["a", "b", "c"] {
            #expect(net[name].master == id("g"))
            #expect(!net[name].isGlobal)
        }

        let (monitor, monitorActions) = net["c"].dbMonitor("svc")
        net.apply(id("c"), monitorActions)
        net.run()
        #expect(net.monitorEvents("c", monitor).map(\.family) == [[:]])

        net.call("a") { $0.dbSet("svc", "a#1", "alpha") }
        net.call("b") { $0.dbSet("svc", "b#1", ["n": 2]) }
        net.call("b") { $0.dbReg("svc", port: PortID("b#2")!, value: 3) }
        net.run()

        let (familyID, familyActions) = net["c"].dbFamily("svc")
        let (keysID, keysActions) = net["c"].dbKeys("svc")
        let (valuesID, valuesActions) = net["c"].dbValues("svc")
        net.apply(id("c"), familyActions + keysActions + valuesActions)
        net.run()
        guard case .family(let family) = try #require(net.queryResult("c", familyID)) else { return }
        #expect(family.mapValues(GlobalTestNetwork.textify) == ["a#1": "alpha", "b#1": ["n": 2], "b#2": 3])
        guard case .keys(let keys) = try #require(net.queryResult("c", keysID)) else { return }
        #expect(Set(keys) == ["a#1", "b#1", "b#2"])
        guard case .values(let values) = try #require(net.queryResult("c", valuesID)) else { return }
        #expect(Set(values.map(GlobalTestNetwork.textify)) == ["alpha", ["n": 2], 3])

        var changes = net.monitorEvents("c", monitor)
        #expect(changes.count == 4)
        #expect(changes.last?.family.mapValues(GlobalTestNetwork.textify) == ["a#1": "alpha", "b#1": ["n": 2], "b#2": 3])
        #expect(changes.dropFirst().flatMap(\.added) == ["a#1", "b#1", "b#2"])

        net.call("a") { $0.dbDel("svc", ["a#1"]) }
        net.call("b") { $0.portDied(PortID("b#2")!) }
        net.run()
        changes = net.monitorEvents("c", monitor)
        #expect(changes.suffix(2).map(\.deleted) == [["a#1"], ["b#2"]])
        #expect(changes.last?.family.mapValues(GlobalTestNetwork.textify) == ["b#1": ["n": 2]])

        // A second monitor on another node, and address lookups through the master.
        let (other, otherActions) = net["a"].dbMonitor("svc")
        net.apply(id("a"), otherActions)
        net.call("a") { $0.lookup(NodeID("b")!) }
        net.call("a") { $0.lookup(NodeID("nobody")!) }
        net.run()
        #expect(net.monitorEvents("a", other).first.map { Set($0.added) } == ["b#1"])
        let lookups = net.lookups("a")
        #expect(lookups.count == 2)
        #expect(lookups.first { $0.0 == NodeID("b")! }?.1 == ["127.0.0.1:4042"])
        #expect(lookups.contains { $0.0 == NodeID("nobody")! && $0.1 == nil })

        // The global node's own view and its own queries.
        #expect(net["g"].globalDatabase?.addresses(of: id("c")) == ["127.0.0.1:4043"])
        let (gID, gActions) = net["g"].dbKeys("'l")
        guard case .queryResult(_, .keys(let gKeys)) = try #require(gActions.first { if case .queryResult(gID, _) = $0 { true } else { false } })
        else { return }
        #expect(Set(gKeys) == ["g", "a", "b", "c"])

        // Cancelling the last monitor on c unsubscribes c at the master.
        net.call("c") { $0.dbMonitorCancel(monitor) }
        net.run()
        #expect(net["g"].globalDatabase?.subscribers["svc"] == [id("a")])
    }

    @Test("a slave going down: its keys leave the merged view and monitors see them deleted")
    func slaveDown() throws {
        let net = star()
        let (monitor, actions) = net["c"].dbMonitor("svc")
        net.apply(id("c"), actions)
        net.call("b") { $0.dbSet("svc", "b#1", 1) }
        net.call("a") { $0.dbSet("svc", "a#1", 1) }
        net.run()
        net.kill("b")
        net.run()
        let last = try #require(net.monitorEvents("c", monitor).last)
        #expect(last.deleted == ["b#1"])
        #expect(last.family == ["a#1": 1])
        #expect(net["g"].globalDatabase?.addresses(of: id("b")) == nil)
        #expect(net["g"].globalDatabase?.slaves == [id("g"), id("a"), id("c")])
    }

    @Test("master failover: next seed, pending request re-sent, subscription re-established")
    func failover() throws {
        let net = GlobalTestNetwork()
        net.add("g1", seeds: ["g1", "g2"], listener: "127.0.0.1:5001")
        net.add("g2", seeds: ["g1", "g2"], listener: "127.0.0.1:5002")
        net.add("a", seeds: ["g1", "g2"], listener: "127.0.0.1:5003")
        net.add("b", seeds: ["g2"], listener: "127.0.0.1:5004")
        net.connect("g1", "g2")
        net.connect("a", "g1")
        net.connect("a", "g2")
        net.connect("b", "g2")
        net.run()
        #expect(net["a"].master == id("g1"))
        #expect(net["b"].master == id("g2"))
        #expect(net["g1"].isGlobal && net["g2"].isGlobal)

        let (monitor, monitorActions) = net["a"].dbMonitor("svc")
        net.apply(id("a"), monitorActions)
        net.call("b") { $0.dbSet("svc", "b#1", "one") }
        net.run()
        #expect(net.monitorEvents("a", monitor).last?.family == ["b#1": "one"])

        // A query is on its way to g1 when g1 dies: it is kept and re-sent to g2.
        let (query, queryActions) = net["a"].dbFamily("svc")
        net.apply(id("a"), queryActions)
        net.kill("g1")
        #expect(net["a"].master == id("g2"))
        net.call("b") { $0.dbSet("svc", "b#2", "two") }
        net.run()
        #expect(net.queryResult("a", query).map { if case .family(let f) = $0 { f.keys.contains("b#1") } else { false } } == true)
        let resent = net.delivered.filter { $0.from == id("a") && $0.to == id("g2") }.compactMap { GlobalTestMessages.tag($0.message) }
        #expect(resent.contains("g_mon1") && resent.contains("g_db_family"))
        #expect(resent.filter { $0 == "g_slave" }.count >= 2, "bare g_slave on node-up plus g_slave with the database")
        let last = try #require(net.monitorEvents("a", monitor).last)
        #expect(last.family == ["b#1": "one", "b#2": "two"])
        // a's data arrived at its new master.
        #expect(net["g2"].globalDatabase?.addresses(of: id("a")) == ["127.0.0.1:5003"])
        #expect(net["g2"].globalDatabase?.slaves.contains(id("a")) == true)
    }

    @Test("two global nodes exchange g_set and g_upd; lookups and monitors span both")
    func twoGlobals() throws {
        let net = GlobalTestNetwork()
        net.add("g1", seeds: ["g1"], listener: "127.0.0.1:6001")
        net.add("g2", seeds: ["g2"], listener: "127.0.0.1:6002")
        net.add("a", seeds: ["g1"], listener: "127.0.0.1:6003")
        net.add("b", seeds: ["g2"], listener: "127.0.0.1:6004")
        net.connect("a", "g1")
        net.connect("b", "g2")
        net.run()
        net.call("a") { $0.dbSet("svc", "a#1", "from-a") }
        net.run()

        net.connect("g1", "g2")
        net.run()
        #expect(!net.delivered(tag: "g_set").isEmpty)
        #expect(net.delivered(tag: "g_global").contains { $0.from == id("g1") && $0.to == id("g2") })
        // Both global nodes keep a connection to each other.
        #expect(net.takeEvents("g1").contains(.keepConnected(id("g2"))))
        #expect(net.takeEvents("g2").contains(.keepConnected(id("g1"))))
        for g in ["g1", "g2"] {
            let merged = try #require(net[g].globalDatabase?.merged)
            #expect(merged["'g"]?.keys.sorted() == ["g1", "g2"], "\(g)")
            #expect(Set(merged["'l"].map { Array($0.keys) } ?? []) == ["g1", "g2", "a", "b"], "\(g)")
            #expect(merged["svc"] == ["a#1": "from-a"], "\(g)")
        }

        // b (slave of g2) monitors; a (slave of g1) sets and deletes.
        let (monitor, actions) = net["b"].dbMonitor("svc")
        net.apply(id("b"), actions)
        net.run()
        #expect(net.monitorEvents("b", monitor).last?.family == ["a#1": "from-a"])
        let updates = net.delivered(tag: "g_upd").count
        net.call("a") { $0.dbSet("svc", "a#2", 2) }
        net.run()
        #expect(net.delivered(tag: "g_upd").suffix(from: updates).contains { $0.from == id("g1") && $0.to == id("g2") })
        #expect(net.monitorEvents("b", monitor).last?.family == ["a#1": "from-a", "a#2": 2])
        net.call("a") { $0.dbDel("svc", ["a#1"]) }
        net.run()
        #expect(net.monitorEvents("b", monitor).last?.deleted == ["a#1"])

        // b finds a's address through g2, which learned it from g1.
        net.call("b") { $0.lookup(id("a")) }
        net.run()
        #expect(net.lookups("b").last?.1 == ["127.0.0.1:6003"])

        // a goes down: g1 forwards the deletions, g2 tells b.
        net.kill("a")
        net.run()
        #expect(net.monitorEvents("b", monitor).last?.deleted == ["a#2"])
        #expect(net["g2"].globalDatabase?.addresses(of: id("a")) == nil)

        // g1 goes down: g2 forgets it and stops keeping the connection.
        net.kill("g1")
        net.run()
        #expect(net.takeEvents("g2").contains(.stopKeepingConnected(id("g1"))))
        #expect(net["g2"].globalDatabase?.merged["'g"]?.keys.sorted() == ["g2"])
        #expect(net["g2"].globalDatabase?.addresses(of: id("g1")) == nil)
    }

    @Test("many slaves: registrations, then half the nodes die (bounded work, consistent views)")
    func manySlaves() throws {
        let net = GlobalTestNetwork()
        net.add("g1", seeds: ["g1"], listener: "127.0.0.1:8001")
        net.add("g2", seeds: ["g2"], listener: "127.0.0.1:8002")
        net.connect("g1", "g2")
        let count = 120
        for index in 0..<count {
            let name = "n\(index)"
            let seed = index % 2 == 0 ? "g1" : "g2"
            net.add(name, seeds: [seed], listener: "10.0.0.\(index % 250):\(9000 + index)")
            net.connect(name, seed)
        }
        net.run()
        let (monitor, actions) = net["n0"].dbMonitor("workers")
        net.apply(id("n0"), actions)
        for index in 0..<count {
            for port in 0..<4 {
                net.call("n\(index)") { $0.dbReg("workers", port: PortID("n\(index)#p\(port)")!, value: .int(Int64(port))) }
            }
        }
        net.run()
        #expect(net.monitorEvents("n0", monitor).last?.family.count == count * 4)
        for index in stride(from: 1, to: count, by: 2) { net.kill("n\(index)") }
        net.run()
        let expected = count / 2 * 4
        #expect(net.monitorEvents("n0", monitor).last?.family.count == expected)
        for g in ["g1", "g2"] {
            #expect(net[g].globalDatabase?.merged["workers"]?.count == expected, "\(g)")
            #expect(net[g].globalDatabase?.merged["'l"]?.count == count / 2 + 2, "\(g)")
        }
    }

    @Test("a normal node turned global by a bare g_slave joins the mesh")
    func promotedNode() throws {
        let net = GlobalTestNetwork()
        net.add("g", seeds: ["g"], listener: "127.0.0.1:7001")
        net.add("n", seeds: ["g"], listener: "127.0.0.1:7002")
        net.add("x", seeds: ["n"], listener: "127.0.0.1:7003")
        net.connect("n", "g")
        net.run()
        #expect(!net["n"].isGlobal)
        net.connect("x", "n")  // x seeds n: its bare g_slave makes n global
        net.run()
        #expect(net["n"].isGlobal)
        #expect(net["x"].master == id("n"))
        #expect(net["g"].globalDatabase?.globalNodes == [id("n")])
        #expect(net["g"].globalDatabase?.addresses(of: id("x")) == ["127.0.0.1:7003"])
        #expect(net["n"].globalDatabase?.addresses(of: id("g")) == ["127.0.0.1:7001"])
    }
}
