import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

/// ``DatabaseClient`` on its own: the exact messages it sends and how it reads answers.
@Suite("Global: DatabaseClient")
struct GlobalClientTests {
    let me = NodeID("client")!
    let seed = NodeID("seed")!
    let seed2 = NodeID("seed2")!

    /// A non-global client whose master is `seed` (greeted and up), with its join traffic discarded.
    func joined() -> DatabaseClient {
        let client = DatabaseClient(localNode: me)
        _ = client.setListeners(["127.0.0.1:4045"])
        _ = client.seedGreeted(seed)
        _ = client.nodeUp(seed)
        return client
    }

    func sends(_ actions: [DatabaseAction]) -> [[Value]] { GlobalTestMessages.messages(actions) }

    @Test("handles(tag:) covers every g_* tag and nothing else")
    func tags() {
        for tag in [
            "g_slave", "g_global", "g_set", "g_upd", "g_find", "g_found", "g_db_family", "g_db_keys", "g_db_values",
            "g_reply", "g_mon1", "g_mon0", "g_chg1", "g_chg2",
        ] {
            #expect(DatabaseClient.handles(tag: tag), "\(tag)")
        }
        for tag in ["mon1", "kil0", "snd", "g_other", ""] { #expect(!DatabaseClient.handles(tag: tag), "\(tag)") }
    }

    @Test("without a master nothing is sent, but the local database is kept")
    func noMaster() {
        let client = DatabaseClient(localNode: me)
        #expect(client.setListeners(["127.0.0.1:4045"]).isEmpty)
        #expect(client.dbSet("fam", "k", 1).isEmpty)
        #expect(client.localDatabase["'l"]?["client"] == ["127.0.0.1:4045"])
        #expect(client.localDatabase["fam"]?["k"] == 1)
        #expect(client.master == nil)
        #expect(!client.isGlobal)
    }

    @Test("join: bare g_slave on greeting, then g_slave with the database, kept requests, bare g_slave")
    func join() {
        let client = DatabaseClient(localNode: me)
        _ = client.setListeners(["127.0.0.1:4045"])
        #expect(sends(client.seedGreeted(seed)) == [["", "g_slave"]])
        let (_, monitorActions) = client.dbMonitor("aemp_ref")
        #expect(sends(monitorActions).isEmpty)
        #expect(sends(client.lookup(NodeID("echo")!)).isEmpty)
        let up = client.nodeUp(seed)
        #expect(up.first == .masterChanged(seed))
        #expect(
            sends(up) == [
                ["", "g_slave", ["'l": ["client": ["127.0.0.1:4045"]]]],
                ["", "g_mon1", "aemp_ref"],
                ["", "g_find", "echo"],
                ["", "g_slave"],
            ])
        #expect(GlobalTestMessages.sends(up).allSatisfy { $0.to == seed })
        #expect(client.master == seed)
    }

    @Test("a node that is not a seed never becomes master")
    func nonSeedUp() {
        let client = DatabaseClient(localNode: me)
        #expect(client.nodeUp(NodeID("other")!).isEmpty)
        #expect(client.master == nil)
        #expect(client.nodeUp(me).isEmpty)
        #expect(client.nodeDown(me).isEmpty)
    }

    @Test("a seed greeted while already connected becomes master at once")
    func greetedWhileUp() {
        let client = DatabaseClient(localNode: me)
        _ = client.nodeUp(seed)
        let actions = client.seedGreeted(seed)
        #expect(client.master == seed)
        #expect(sends(actions) == [["", "g_slave"], ["", "g_slave", [:]]])
        client.resetSeeds()
        #expect(client.seedNodes.isEmpty)
    }

    @Test("db_set sends g_upd with one key; an unchanged value sends nothing")
    func dbSet() {
        let client = joined()
        #expect(sends(client.dbSet("aemp_ref_test", "k1", ["v": 1])) == [["", "g_upd", "aemp_ref_test", ["k1": ["v": 1]]]])
        #expect(client.dbSet("aemp_ref_test", "k1", ["v": 1]).isEmpty)
        #expect(sends(client.dbSet("aemp_ref_test", "k2")) == [["", "g_upd", "aemp_ref_test", ["k2": nil]]])
        #expect(client.dbSet("aemp_ref_test", "k2", nil).isEmpty)
        #expect(sends(client.dbSet("aemp_ref_test", "k1", ["v": 2])) == [["", "g_upd", "aemp_ref_test", ["k1": ["v": 2]]]])
        // Perl compares plain scalars as strings: 1 and "1" are equal, undef differs from "".
        _ = client.dbSet("f", "n", 1)
        #expect(client.dbSet("f", "n", "1").isEmpty)
        #expect(client.dbSet("f", "n", .bytes(.init(string: "1"))).isEmpty)
        _ = client.dbSet("f", "e", "")
        #expect(!client.dbSet("f", "e", nil).isEmpty)
    }

    @Test("db_del sends g_upd with null and the keys actually held")
    func dbDel() {
        let client = joined()
        _ = client.dbSet("aemp_ref_test", "k1", ["v": 1])
        _ = client.dbSet("aemp_ref_test", "k2")
        #expect(
            sends(client.dbDel("aemp_ref_test", ["k1", "nope", "k2"]))
                == [["", "g_upd", "aemp_ref_test", nil, ["k1", "k2"]]])
        #expect(client.localDatabase["aemp_ref_test"] == nil)
        #expect(client.dbDel("aemp_ref_test", ["k1"]).isEmpty)
        #expect(client.dbDel("unknown", ["k1"]).isEmpty)
        _ = client.dbSet("f", "a", 1)
        _ = client.dbSet("f", "b", 2)
        #expect(sends(client.dbDel("f", "b", "a")) == [["", "g_upd", "f", nil, ["b", "a"]]])
        #expect(client.globalFamily("f") == nil, "not a global node")
    }

    @Test("db_reg sets the port's key and deletes it when the port dies")
    func dbReg() {
        let client = joined()
        let port = PortID("client#abc")!
        #expect(sends(client.dbReg("svc", port: port, value: "x")) == [["", "g_upd", "svc", ["client#abc": "x"]]])
        _ = client.dbReg("other", port: port)
        let died = sends(client.portDied(port))
        #expect(died == [["", "g_upd", "other", nil, ["client#abc"]], ["", "g_upd", "svc", nil, ["client#abc"]]])
        #expect(client.portDied(port).isEmpty)
    }

    @Test("queries use Perl's string counter and come back through g_reply")
    func queries() throws {
        let client = joined()
        let (family, familyActions) = client.dbFamily("aemp_ref_test")
        let (keys, keysActions) = client.dbKeys("aemp_ref_test")
        let (values, valuesActions) = client.dbValues("aemp_ref_test")
        #expect([family, keys, values].map(\.rawValue) == ["b", "c", "d"])
        #expect(sends(familyActions) == [["", "g_db_family", "aemp_ref_test", "b"]])
        #expect(sends(keysActions) == [["", "g_db_keys", "aemp_ref_test", "c"]])
        #expect(sends(valuesActions) == [["", "g_db_values", "aemp_ref_test", "d"]])

        #expect(
            client.receive(from: seed, tag: "g_reply", arguments: ["b", ["k1": ["v": 1], "k2": nil]])
                == [.queryResult(family, .family(["k1": ["v": 1], "k2": nil]))])
        #expect(client.receive(from: seed, tag: "g_reply", arguments: ["c", ["k1", "k2"]]) == [.queryResult(keys, .keys(["k1", "k2"]))])
        #expect(client.receive(from: seed, tag: "g_reply", arguments: ["d", [["v": 1], nil]]) == [.queryResult(values, .values([["v": 1], nil]))])
        // Answered: a second reply is ignored; so is a reply for an unknown ID.
        #expect(client.receive(from: seed, tag: "g_reply", arguments: ["b", [:]]).isEmpty)
        #expect(client.receive(from: seed, tag: "g_reply", arguments: ["zz", [:]]).isEmpty)
        // Answered requests are not re-sent to a new master.
        _ = client.nodeDown(seed)
        #expect(sends(client.nodeUp(seed)) == [["", "g_slave", ["'l": ["client": ["127.0.0.1:4045"]]]], ["", "g_slave"]])
    }

    @Test("a cancelled query is neither re-sent nor reported")
    func cancelQuery() {
        let client = joined()
        let (id, _) = client.dbKeys("f")
        client.cancelQuery(id)
        #expect(client.receive(from: seed, tag: "g_reply", arguments: [.text(id.rawValue), ["k"]]).isEmpty)
    }

    @Test("g_reply with the wrong shape is reported as malformed")
    func badReplies() {
        let client = joined()
        let (id, _) = client.dbKeys("f")
        let actions = client.receive(from: seed, tag: "g_reply", arguments: [.text(id.rawValue), 5])
        guard case .malformed(let from, let tag, _) = actions.first else {
            Issue.record("expected malformed, got \(actions)")
            return
        }
        #expect(from == seed && tag == "g_reply")
        #expect(client.receive(from: seed, tag: "g_reply", arguments: []).count == 1)
        let (fam, _) = client.dbFamily("f")
        #expect(client.receive(from: seed, tag: "g_reply", arguments: [.text(fam.rawValue), [1]]).count == 1)
        let (vals, _) = client.dbValues("f")
        #expect(client.receive(from: seed, tag: "g_reply", arguments: [.text(vals.rawValue), nil]) == [.queryResult(vals, .values([]))])
    }

    @Test("g_find is kept until g_found; null means unknown")
    func lookup() {
        let client = joined()
        let echo = NodeID("echo")!
        #expect(sends(client.lookup(echo)) == [["", "g_find", "echo"]])
        #expect(sends(client.lookup(echo)).isEmpty, "an outstanding lookup is not sent twice")
        #expect(
            client.receive(from: seed, tag: "g_found", arguments: ["echo", ["127.0.0.1:4040"]])
                == [.lookupResult(node: echo, addresses: ["127.0.0.1:4040"])])
        #expect(sends(client.lookup(echo)) == [["", "g_find", "echo"]])
        #expect(client.receive(from: seed, tag: "g_found", arguments: ["echo", nil]) == [.lookupResult(node: echo, addresses: nil)])
        #expect(client.receive(from: seed, tag: "g_found", arguments: ["echo"]) == [.lookupResult(node: echo, addresses: nil)])
    }

    @Test("malformed g_found is reported", arguments: [[Value]([]), [5], ["a#b", nil], ["echo", 5], ["echo", [1]]])
    func badFound(arguments: [Value]) {
        let client = joined()
        let actions = client.receive(from: seed, tag: "g_found", arguments: arguments)
        #expect(actions.count == 1)
        if case .malformed = actions.first {} else { Issue.record("expected malformed, got \(actions)") }
    }

    @Test("db_mon: g_mon1 once per family, first event from g_chg1, later monitors get the copy at once")
    func monitors() throws {
        let client = joined()
        let (first, firstActions) = client.dbMonitor("aemp_ref")
        #expect(sends(firstActions) == [["", "g_mon1", "aemp_ref"]])
        let full: Value = ["echo#DIIBdJVBPc": "sink", "echo#DIIBdJVBPb": "echo"]
        let events = client.receive(from: seed, tag: "g_chg1", arguments: ["aemp_ref", full])
        guard case .monitorEvent(let id, let change) = try #require(events.first) else {
            Issue.record("no event")
            return
        }
        #expect(id == first)
        #expect(Set(change.added) == ["echo#DIIBdJVBPb", "echo#DIIBdJVBPc"])
        #expect(change.changed.isEmpty && change.deleted.isEmpty)
        #expect(change.family == ["echo#DIIBdJVBPb": "echo", "echo#DIIBdJVBPc": "sink"])

        let (second, secondActions) = client.dbMonitor("aemp_ref")
        #expect(sends(secondActions).isEmpty)
        guard case .monitorEvent(let id2, let change2) = try #require(secondActions.first) else {
            Issue.record("no immediate event")
            return
        }
        #expect(id2 == second && Set(change2.added) == Set(change.added))

        // Incremental change reaches both monitors, in creation order.
        let chg2 = client.receive(
            from: seed, tag: "g_chg2", arguments: ["aemp_ref", ["echo#new": 1, "echo#DIIBdJVBPb": "echo2"], ["echo#DIIBdJVBPc", "gone"]])
        let expected = DatabaseChange(
            familyName: "aemp_ref", family: ["echo#DIIBdJVBPb": "echo2", "echo#new": 1], added: ["echo#new"],
            changed: ["echo#DIIBdJVBPb"], deleted: ["echo#DIIBdJVBPc"])
        #expect(chg2 == [.monitorEvent(first, expected), .monitorEvent(second, expected)])

        // g_chg* from a node that is not the master are ignored.
        #expect(client.receive(from: NodeID("intruder")!, tag: "g_chg2", arguments: ["aemp_ref", ["x": 1], []]).isEmpty)
        #expect(client.receive(from: NodeID("intruder")!, tag: "g_chg1", arguments: ["aemp_ref", nil]).isEmpty)

        #expect(client.dbMonitorCancel(first).isEmpty)
        #expect(sends(client.dbMonitorCancel(second)) == [["", "g_mon0", "aemp_ref"]])
        #expect(client.dbMonitorCancel(second).isEmpty)
        #expect(client.monitoredFamily("aemp_ref") == nil)
        #expect(client.receive(from: seed, tag: "g_chg2", arguments: ["aemp_ref", ["x": 1], []]).isEmpty)
    }

    @Test("g_chg1 from a new master reports the difference to the old copy")
    func resync() throws {
        let client = joined()
        let (id, _) = client.dbMonitor("f")
        _ = client.receive(from: seed, tag: "g_chg1", arguments: ["f", ["a": 1, "b": 2]])
        let events = client.receive(from: seed, tag: "g_chg1", arguments: ["f", ["b": 3, "c": 4]])
        #expect(
            events == [
                .monitorEvent(
                    id, DatabaseChange(familyName: "f", family: ["b": 3, "c": 4], added: ["c"], changed: ["b"], deleted: ["a"]))
            ])
        let empty = client.receive(from: seed, tag: "g_chg1", arguments: ["f", nil])
        guard case .monitorEvent(_, let change) = try #require(empty.first) else { return }
        #expect(Set(change.deleted) == ["b", "c"] && change.family.isEmpty)
    }

    @Test("malformed monitor messages are reported", arguments: ["g_chg1", "g_chg2"])
    func badChanges(tag: String) {
        let client = joined()
        _ = client.dbMonitor("f")
        for arguments: [Value] in [[], [5], ["f", 5], ["f", [1]]] {
            let actions = client.receive(from: seed, tag: tag, arguments: arguments)
            #expect(actions.count == 1, "\(arguments)")
        }
        #expect(client.receive(from: seed, tag: "g_chg2", arguments: ["f", [:], 5]).count == 1)
    }

    @Test("master failover: next connected seed, fresh g_slave, kept requests re-sent")
    func failover() {
        let client = DatabaseClient(localNode: me)
        _ = client.setListeners(["127.0.0.1:4045"])
        _ = client.seedGreeted(seed)
        _ = client.seedGreeted(seed2)
        _ = client.nodeUp(seed)
        _ = client.nodeUp(seed2)
        #expect(client.master == seed)
        _ = client.dbMonitor("f")
        let (query, _) = client.dbKeys("f")
        _ = client.lookup(NodeID("x")!)
        _ = client.dbSet("f", "k", 1)

        let down = client.nodeDown(seed)
        #expect(client.master == seed2)
        #expect(down.first == .masterChanged(seed2))
        #expect(
            sends(down) == [
                ["", "g_slave", ["'l": ["client": ["127.0.0.1:4045"]], "f": ["k": 1]]],
                ["", "g_mon1", "f"],
                ["", "g_db_keys", "f", .text(query.rawValue)],
                ["", "g_find", "x"],
            ])
        #expect(GlobalTestMessages.sends(down).allSatisfy { $0.to == seed2 })

        // No seed left: no master, requests wait.
        #expect(client.nodeDown(seed2) == [.masterChanged(nil)])
        #expect(client.master == nil)
        #expect(client.dbSet("f", "k", 2).isEmpty)
        let up = client.nodeUp(seed)
        #expect(sends(up).count == 5)
        #expect(sends(up).first == ["", "g_slave", ["'l": ["client": ["127.0.0.1:4045"]], "f": ["k": 2]]])
        // Downs of other nodes change nothing.
        #expect(client.nodeDown(NodeID("other")!).isEmpty)
    }

    @Test("global requests to a non-global node and unknown tags are reported, not handled")
    func notGlobal() {
        let client = joined()
        for tag in ["g_set", "g_upd", "g_find", "g_db_family", "g_db_keys", "g_db_values", "g_mon1", "g_mon0", "g_bogus"] {
            let actions = client.receive(from: seed, tag: tag, arguments: ["x", "y"])
            #expect(actions.count == 1, "\(tag)")
            if case .malformed(let from, let reportedTag, _) = actions.first {
                #expect(from == seed && reportedTag == tag)
            } else {
                Issue.record("\(tag): \(actions)")
            }
        }
        #expect(!client.isGlobal)
    }

    @Test("g_global is recorded on a normal node")
    func globalAnnouncement() {
        let client = joined()
        #expect(client.receive(from: seed, tag: "g_global", arguments: []).isEmpty)
        #expect(client.knownGlobalNodes == [seed])
        _ = client.nodeDown(seed)
        #expect(client.knownGlobalNodes.isEmpty)
    }

    @Test("a bare g_slave makes the node global: own master, g_global to everyone, g_set to known globals")
    func becomesGlobal() {
        let client = joined()
        let other = NodeID("other")!
        _ = client.nodeUp(other)
        _ = client.receive(from: other, tag: "g_global", arguments: [])
        let (monitor, _) = client.dbMonitor("f")
        let actions = client.receive(from: seed, tag: "g_slave", arguments: [])
        #expect(client.isGlobal)
        #expect(client.master == me)
        #expect(actions.contains(.becameGlobal))
        #expect(actions.contains(.masterChanged(me)))
        let sent = GlobalTestMessages.sends(actions)
        #expect(sent.contains { $0.to == seed && $0.message == ["", "g_global"] })
        #expect(sent.contains { $0.to == other && $0.message == ["", "g_global"] })
        #expect(sent.contains { $0.to == other && GlobalTestMessages.tag($0.message) == "g_set" })
        #expect(actions.contains(.keepConnected(other)))
        // The monitor was re-established with ourselves: its first event comes from our own data.
        #expect(actions.contains { if case .monitorEvent(monitor, _) = $0 { true } else { false } })
        #expect(client.localDatabase["'g"]?["client"] == .null)
        #expect(client.localDatabase["'g"]?["other"] == .null)
        // Further g_slave calls do not start over.
        #expect(client.receive(from: seed, tag: "g_slave", arguments: []).isEmpty)
        // A global node answers lookups itself.
        #expect(client.lookup(me) == [.lookupResult(node: me, addresses: ["127.0.0.1:4045"])])
        // An unknown node: the answer waits for the g_set of the global node `other`, then it is null.
        #expect(client.lookup(NodeID("nobody")!) == [])
        #expect(
            client.receive(from: other, tag: "g_set", arguments: [["'l": [:]]]).contains(
                .lookupResult(node: NodeID("nobody")!, addresses: nil)))
        #expect(client.lookup(NodeID("nobody")!) == [.lookupResult(node: NodeID("nobody")!, addresses: nil)])
    }

    @Test("a seed list containing the node itself makes it global")
    func selfSeed() {
        let client = DatabaseClient(localNode: me)
        _ = client.setListeners(["127.0.0.1:4045"])
        let actions = client.seedGreeted(me)
        #expect(client.isGlobal && client.master == me)
        #expect(actions.contains(.becameGlobal))
        #expect(GlobalTestMessages.sends(actions).isEmpty)
        #expect(client.becomeGlobal().isEmpty)
        // Queries are answered within the call.
        let (id, query) = client.dbFamily("'l")
        #expect(query == [.queryResult(id, .family(["client": ["127.0.0.1:4045"]]))])
        let (keysID, keys) = client.dbKeys("'g")
        #expect(keys == [.queryResult(keysID, .keys(["client"]))])
        #expect(client.globalFamily("'l") == ["client": ["127.0.0.1:4045"]])
        let (valuesID, values) = client.dbValues("none")
        #expect(values == [.queryResult(valuesID, .values([]))])
    }
}
