import AEMPCodecs
import Testing

@testable import AEMP

/// A node that has just become global knows the other global nodes' slaves only once their `g_set`
/// arrives; a `g_find` for a node it does not know yet waits for that instead of failing the
/// asker with `no known address` (the race the multi-host test met on each host's first client).
@Suite("Global: g_find waits for the other global nodes' g_set")
struct GlobalDeferredFindTests {
    let g = NodeID("g")!
    let g2 = NodeID("g2")!
    let client = NodeID("client")!
    let other = NodeID("other")!

    func found(_ effects: [GlobalDatabase.Effect], to node: NodeID) -> [[Value]] {
        effects.compactMap {
            if case .send(let to, let message) = $0, to == node, message.count > 1, message[1] == "g_found" {
                return message
            }
            return nil
        }
    }

    /// `g2` has just become global and greeted `g` (so it waits for g's `g_set`); `client` is its slave.
    func freshGlobal() -> GlobalDatabase {
        var db = GlobalDatabase(localNode: g2)
        _ = db.handle(from: g, tag: "g_global", arguments: [])
        _ = db.handle(from: client, tag: "g_slave", arguments: [["'l": ["client": ["127.0.0.1:9"]]]])
        return db
    }

    @Test func aFindWaitsForTheGSetAndIsAnsweredFromIt() {
        var db = freshGlobal()
        #expect(db.awaitingSet == [g])
        #expect(found(db.handle(from: client, tag: "g_find", arguments: ["g"]), to: client).isEmpty)
        #expect(found(db.handle(from: client, tag: "g_find", arguments: ["nobody"]), to: client).isEmpty)
        // A node it already knows is answered at once.
        #expect(found(db.handle(from: client, tag: "g_find", arguments: ["client"]), to: client)
                == [["", "g_found", "client", ["127.0.0.1:9"]]])

        let effects = db.handle(from: g, tag: "g_set", arguments: [["'l": ["g": ["10.77.0.1:4040"], "other": ["10.77.0.3:4040"]]]])
        #expect(found(effects, to: client) == [["", "g_found", "g", ["10.77.0.1:4040"]], ["", "g_found", "nobody", .null]])
        #expect(db.awaitingSet.isEmpty)
        // Afterwards answers come at once again, null included.
        #expect(found(db.handle(from: client, tag: "g_find", arguments: ["nobody"]), to: client) == [["", "g_found", "nobody", .null]])
    }

    @Test func theAwaitedNodeGoingDownAnswersWithWhatIsKnown() {
        var db = freshGlobal()
        _ = db.handle(from: client, tag: "g_find", arguments: ["g"])
        #expect(found(db.nodeDown(g), to: client) == [["", "g_found", "g", .null]])
    }

    @Test func anAskerGoingDownIsForgotten() {
        var db = freshGlobal()
        _ = db.handle(from: client, tag: "g_find", arguments: ["other"])
        _ = db.nodeDown(client)
        let effects = db.handle(from: g, tag: "g_set", arguments: [["'l": ["g": ["10.77.0.1:4040"]]]])
        #expect(found(effects, to: client).isEmpty)
    }

    @Test func findsOfKnownNodesGoFirstWhileOthersStillWait() {
        var db = GlobalDatabase(localNode: g2)
        _ = db.handle(from: g, tag: "g_global", arguments: [])
        _ = db.handle(from: other, tag: "g_global", arguments: [])
        _ = db.handle(from: client, tag: "g_find", arguments: ["x"])
        _ = db.handle(from: client, tag: "g_find", arguments: ["y"])
        let first = db.handle(from: g, tag: "g_set", arguments: [["'l": ["x": ["10.0.0.1:1"]]]])
        #expect(found(first, to: client) == [["", "g_found", "x", ["10.0.0.1:1"]]])
        let second = db.handle(from: other, tag: "g_set", arguments: [["'l": [:]]])
        #expect(found(second, to: client) == [["", "g_found", "y", .null]])
    }

    @Test func theNumberOfWaitingFindsIsBounded() {
        var db = freshGlobal()
        for index in 0..<GlobalDatabase.maximumDeferredFinds {
            #expect(found(db.handle(from: client, tag: "g_find", arguments: [.text("n\(index)")]), to: client).isEmpty)
        }
        #expect(found(db.handle(from: client, tag: "g_find", arguments: ["late"]), to: client) == [["", "g_found", "late", .null]])
        let answered = found(db.handle(from: g, tag: "g_set", arguments: [["'l": [:]]]), to: client)
        #expect(answered.count == GlobalDatabase.maximumDeferredFinds)
    }

    /// The global node's own lookups wait the same way (DatabaseClient on a global node).
    @Test func aGlobalNodesOwnLookupWaitsToo() {
        let node = DatabaseClient(localNode: g2)
        _ = node.nodeUp(g)
        _ = node.receive(from: g, tag: "g_global", arguments: [])
        _ = node.becomeGlobal()
        let lookup = node.lookup(other)
        #expect(!lookup.contains { if case .lookupResult = $0 { true } else { false } })
        let actions = node.receive(from: g, tag: "g_set", arguments: [["'l": ["other": ["10.77.0.3:4040"]]]])
        #expect(actions.contains { $0 == .lookupResult(node: other, addresses: ["10.77.0.3:4040"]) })
    }
}
