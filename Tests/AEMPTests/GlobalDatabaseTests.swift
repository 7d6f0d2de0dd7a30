import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

/// ``GlobalDatabase`` driven directly: merging, answers, subscriptions, propagation, clean-up.
@Suite("Global: GlobalDatabase")
struct GlobalDatabaseTests {
    let g = NodeID("g")!
    let g2 = NodeID("g2")!
    let a = NodeID("a")!
    let b = NodeID("b")!

    func sends(_ effects: [GlobalDatabase.Effect]) -> [(to: NodeID, message: [Value])] {
        effects.compactMap {
            if case .send(let to, let message) = $0 { return (to, message) }
            return nil
        }
    }

    func messages(_ effects: [GlobalDatabase.Effect], to node: NodeID) -> [[Value]] {
        sends(effects).filter { $0.to == node }.map(\.message)
    }

    /// A global node `g` with slaves `a` and `b`.
    func populated() -> GlobalDatabase {
        var db = GlobalDatabase(localNode: g)
        _ = db.handle(from: a, tag: "g_slave", arguments: [["'l": ["a": ["127.0.0.1:1"]], "svc": ["a#1": "x", "shared": 1]]])
        _ = db.handle(from: b, tag: "g_slave", arguments: [["'l": ["b": ["127.0.0.1:2"]], "svc": ["b#1": "y", "shared": 2]]])
        return db
    }

    @Test("g_slave with a database makes the sender a slave and merges its data")
    func slaveMerge() {
        let db = populated()
        #expect(db.slaves == [a, b])
        #expect(db.merged["'l"] == ["a": ["127.0.0.1:1"], "b": ["127.0.0.1:2"]])
        #expect(db.merged["svc"]?["a#1"] == "x" && db.merged["svc"]?["b#1"] == "y")
        #expect(db.merged["svc"]?["shared"] == 2, "the last writer wins")
        #expect(db.addresses(of: a) == ["127.0.0.1:1"])
        #expect(db.addresses(of: g) == nil)
    }

    @Test("a bare g_slave changes nothing")
    func bareSlave() {
        var db = GlobalDatabase(localNode: g)
        #expect(db.handle(from: a, tag: "g_slave", arguments: []).isEmpty)
        #expect(db.slaves.isEmpty)
    }

    @Test("g_find answers from the merged 'l, null if unknown")
    func find() {
        var db = populated()
        #expect(messages(db.handle(from: b, tag: "g_find", arguments: ["a"]), to: b) == [["", "g_found", "a", ["127.0.0.1:1"]]])
        #expect(messages(db.handle(from: b, tag: "g_find", arguments: ["zz"]), to: b) == [["", "g_found", "zz", nil]])
    }

    @Test("g_db_family / g_db_keys / g_db_values reply with g_reply and the request ID as sent")
    func queries() throws {
        var db = populated()
        let family = messages(db.handle(from: a, tag: "g_db_family", arguments: ["svc", "b"]), to: a)
        #expect(family == [["", "g_reply", "b", ["a#1": "x", "b#1": "y", "shared": 2]]])
        let keys = try #require(messages(db.handle(from: a, tag: "g_db_keys", arguments: ["svc", "c"]), to: a).first)
        #expect(keys.count == 4 && keys[2] == "c")
        #expect(Set(try #require(keys[3].arrayValue)) == ["a#1", "b#1", "shared"])
        let values = try #require(messages(db.handle(from: a, tag: "g_db_values", arguments: ["svc", "d"]), to: a).first)
        #expect(Set(try #require(values[3].arrayValue)) == ["x", "y", 2])
        // Unknown family: empty map / arrays. A byte-string request ID is echoed unchanged.
        let id = Value.bytes(ByteBuffer(string: "e"))
        #expect(messages(db.handle(from: a, tag: "g_db_family", arguments: ["none", id]), to: a) == [["", "g_reply", id, [:]]])
        #expect(messages(db.handle(from: a, tag: "g_db_keys", arguments: ["none", "f"]), to: a) == [["", "g_reply", "f", []]])
        #expect(messages(db.handle(from: a, tag: "g_db_values", arguments: ["none", "g"]), to: a) == [["", "g_reply", "g", []]])
    }

    @Test("g_mon1 replies g_chg1 (null for an empty family); changes reach subscribers as g_chg2 until g_mon0")
    func subscriptions() {
        var db = populated()
        #expect(messages(db.handle(from: a, tag: "g_mon1", arguments: ["none"]), to: a) == [["", "g_chg1", "none", nil]])
        #expect(
            messages(db.handle(from: a, tag: "g_mon1", arguments: ["svc"]), to: a)
                == [["", "g_chg1", "svc", ["a#1": "x", "b#1": "y", "shared": 2]]])
        _ = db.handle(from: a, tag: "g_mon1", arguments: ["svc"])
        #expect(db.subscribers["svc"] == [a], "subscribing twice keeps one subscription")

        let set = db.handle(from: b, tag: "g_upd", arguments: ["svc", ["b#2": "z"]])
        #expect(messages(set, to: a) == [["", "g_chg2", "svc", ["b#2": "z"], []]])
        let del = db.handle(from: b, tag: "g_upd", arguments: ["svc", nil, ["b#2", "never"]])
        #expect(messages(del, to: a) == [["", "g_chg2", "svc", [:], ["b#2", "never"]]])
        #expect(db.merged["svc"]?["b#2"] == nil)

        _ = db.handle(from: a, tag: "g_mon0", arguments: ["svc"])
        #expect(db.subscribers["svc"] == nil)
        #expect(sends(db.handle(from: b, tag: "g_upd", arguments: ["svc", ["b#3": 1]])).isEmpty)
        _ = db.handle(from: a, tag: "g_mon0", arguments: ["unknown"])
    }

    @Test("a key held by two slaves survives the deletion by one, with the other's value")
    func sharedKey() {
        var db = populated()
        _ = db.handle(from: g, tag: "g_mon1", arguments: ["svc"])
        let effects = db.handle(from: b, tag: "g_upd", arguments: ["svc", nil, ["shared"]])
        #expect(db.merged["svc"]?["shared"] == 1)
        #expect(messages(effects, to: g) == [["", "g_chg2", "svc", ["shared": 1], []]])
        // Deleting a key whose remaining value is the same as the merged one tells nobody.
        _ = db.handle(from: b, tag: "g_upd", arguments: ["svc", ["shared": 1]])
        #expect(messages(db.handle(from: b, tag: "g_upd", arguments: ["svc", nil, ["shared"]]), to: g).isEmpty)
    }

    @Test("a slave going down removes its keys; subscribers get the deletions")
    func slaveDown() throws {
        var db = populated()
        _ = db.handle(from: a, tag: "g_mon1", arguments: ["svc"])
        _ = db.handle(from: b, tag: "g_mon1", arguments: ["svc"])
        let effects = db.nodeDown(b)
        #expect(effects.contains(.deleteLocal(family: "'g", key: "b")))
        #expect(effects.contains(.deleteLocal(family: "'l", key: "b")))
        let toA = messages(effects, to: a)
        #expect(toA.count == 1)
        let change = try #require(toA.first)
        #expect(change[2] == "svc" && change[3] == ["shared": 1])
        #expect(Set(try #require(change[4].arrayValue)) == ["b#1"])
        #expect(messages(effects, to: b).isEmpty, "the dead node's subscriptions are gone")
        #expect(db.merged["svc"] == ["a#1": "x", "shared": 1])
        #expect(db.merged["'l"] == ["a": ["127.0.0.1:1"]])
        #expect(db.slaves == [a] && db.subscribers["svc"] == [a])
        #expect(db.shards[b] == nil)
    }

    @Test("a repeated g_slave replaces the shard instead of merging stale keys")
    func slaveReplace() {
        var db = populated()
        _ = db.handle(from: a, tag: "g_slave", arguments: [["svc": ["a#9": "new"]]])
        #expect(db.merged["svc"]?["a#1"] == nil && db.merged["svc"]?["a#9"] == "new")
        #expect(db.merged["'l"]?["a"] == nil)
    }

    @Test("every node that comes up hears g_global")
    func nodeUp() {
        let db = GlobalDatabase(localNode: g)
        #expect(sends(db.nodeUp(a)).map(\.message) == [["", "g_global"]])
        #expect(db.nodeUp(g).isEmpty)
    }

    @Test("g_global from another node: 'g entry, g_set with the slaves' merged data")
    func globalConnect() throws {
        var db = populated()
        _ = db.handle(from: g, tag: "g_slave", arguments: [["'g": ["g": nil]]])
        let effects = db.handle(from: g2, tag: "g_global", arguments: [])
        #expect(db.globalNodes == [g2])
        #expect(effects.contains(.setLocal(family: "'g", key: "g2", value: .null)))
        let gSet = try #require(messages(effects, to: g2).first)
        #expect(gSet[1] == "g_set")
        let contents = try #require(DatabaseCoding.decodeContents(gSet[2]))
        #expect(contents["'l"] == ["a": ["127.0.0.1:1"], "b": ["127.0.0.1:2"]])
        #expect(contents["'g"] == ["g": nil])
        #expect(contents["svc"]?.count == 3)
        // From itself: ignored.
        #expect(db.handle(from: g, tag: "g_global", arguments: []).isEmpty)
    }

    @Test("slave updates are forwarded to other global nodes; theirs are not forwarded again")
    func propagation() {
        var db = populated()
        _ = db.handle(from: g2, tag: "g_global", arguments: [])
        let fromSlave = db.handle(from: a, tag: "g_upd", arguments: ["svc", ["a#2": "w"]])
        #expect(messages(fromSlave, to: g2) == [["", "g_upd", "svc", ["a#2": "w"], []]])
        let delFromSlave = db.handle(from: a, tag: "g_upd", arguments: ["svc", nil, ["a#2"]])
        #expect(messages(delFromSlave, to: g2) == [["", "g_upd", "svc", [:], ["a#2"]]])

        let fromGlobal = db.handle(from: g2, tag: "g_upd", arguments: ["svc", ["c#1": "v"], []])
        #expect(sends(fromGlobal).isEmpty)
        #expect(db.merged["svc"]?["c#1"] == "v")
        // A key both a slave and another global hold: the slave's deletion hands it to the global's value
        // and tells the other global nodes it is gone from our side.
        _ = db.handle(from: g2, tag: "g_upd", arguments: ["svc", ["a#1": "remote"]])
        _ = db.handle(from: a, tag: "g_upd", arguments: ["svc", ["a#1": "x"]])
        let handover = db.handle(from: a, tag: "g_upd", arguments: ["svc", nil, ["a#1"]])
        #expect(messages(handover, to: g2) == [["", "g_upd", "svc", [:], ["a#1"]]])
        #expect(db.merged["svc"]?["a#1"] == "remote")
        // The other global node going down takes its data with it.
        _ = db.nodeDown(g2)
        #expect(db.merged["svc"]?["c#1"] == nil && db.merged["svc"]?["a#1"] == nil)
        #expect(db.globalNodes.isEmpty)
    }

    @Test("g_set stores the other global's data and mirrors its 'l entry locally")
    func gSet() {
        var db = GlobalDatabase(localNode: g)
        _ = db.handle(from: g2, tag: "g_global", arguments: [])
        let effects = db.handle(from: g2, tag: "g_set", arguments: [["'l": ["g2": ["10.0.0.2:4040"], "c": ["10.0.0.3:1"]], "'g": ["g2": nil]]])
        #expect(effects.contains(.setLocal(family: "'l", key: "g2", value: ["10.0.0.2:4040"])))
        #expect(db.addresses(of: NodeID("c")!) == ["10.0.0.3:1"])
        #expect(db.merged["'g"] == ["g2": nil])
        // Without an 'l entry for the sender, null is mirrored (Perl: db_set with undef).
        let bare = db.handle(from: g2, tag: "g_set", arguments: [[:]])
        #expect(bare.contains(.setLocal(family: "'l", key: "g2", value: .null)))
        #expect(db.merged.isEmpty)
    }

    @Test(
        "malformed requests are reported and change nothing",
        arguments: [
            ("g_slave", [Value](arrayLiteral: 5)), ("g_slave", [["f": 5]]), ("g_set", []), ("g_set", [[1]]),
            ("g_upd", []), ("g_upd", [5]), ("g_upd", ["f", 5]), ("g_upd", ["f", nil, 5]), ("g_find", []),
            ("g_db_family", ["f"]), ("g_db_keys", [5, "b"]), ("g_db_values", []), ("g_mon1", []), ("g_mon0", [5]),
            ("g_found", ["x"]),
        ] as [(String, [Value])])
    func malformed(tag: String, arguments: [Value]) {
        var db = populated()
        let before = db.merged
        let effects = db.handle(from: a, tag: tag, arguments: arguments)
        #expect(effects.count == 1)
        if case .malformed = effects.first {} else { Issue.record("\(tag): \(effects)") }
        #expect(db.merged == before)
    }

    @Test("g_upd ignores deletions of keys it also sets")
    func setAndDelete() {
        var db = GlobalDatabase(localNode: g)
        _ = db.handle(from: a, tag: "g_slave", arguments: [[:]])
        _ = db.handle(from: a, tag: "g_upd", arguments: ["f", ["k": 1], ["k"]])
        #expect(db.merged["f"] == ["k": 1])
    }
}

/// Perl's `sv_eq` as used by `db_set`.
@Suite("Global: value equality")
struct GlobalValueEqualityTests {
    @Test(
        "equal pairs",
        arguments: [
            (Value.null, Value.null), (1, "1"), (1, 1.0), ("a", .bytes(ByteBuffer(string: "a"))), (true, 1),
            (["a": [1, "x"]], [.bytes(ByteBuffer(string: "a")): [1, .bytes(ByteBuffer(string: "x"))]]),
            (["a": 1, "b": 2], ["b": 2, "a": 1]), (1.5, 1.5), ([nil], [nil]),
        ] as [(Value, Value)])
    func equal(lhs: Value, rhs: Value) {
        #expect(PerlValueEquality.equal(lhs, rhs))
        #expect(PerlValueEquality.equal(rhs, lhs))
    }

    @Test(
        "different pairs",
        arguments: [
            (Value.null, Value.text("")), (1, 2), ("a", "b"), ([1], ["1"]), (["a": 1], ["a": 1, "b": 2]), ([1], [1, 2]),
            (["a": 1], [1]), (1, [1]), (["a": 1], ["b": 1]), (false, nil),
        ] as [(Value, Value)])
    func different(lhs: Value, rhs: Value) {
        #expect(!PerlValueEquality.equal(lhs, rhs))
        #expect(!PerlValueEquality.equal(rhs, lhs))
    }
}
