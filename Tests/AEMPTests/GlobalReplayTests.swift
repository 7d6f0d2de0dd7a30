import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Testing

@testable import AEMP

/// The data-phase messages of the captured Perl session (`Tests/Fixtures/captures/aemp-session.txt`).
enum CapturedMessages {
    struct Message {
        /// true: client → server (`C>`), false: server → client (`S>`).
        var fromClient: Bool
        var value: [Value]
        var tag: String? { value.count >= 2 ? value[1].stringValue : nil }
    }

    static let path = "captures/aemp-session.txt"

    /// Every decoded message per connection number, or why the transcript could not be loaded.
    static let byConnection: Result<[Int: [Message]], FixtureError> = Result { () throws(FixtureError) in
        let data = try Fixtures.data(path)
        func malformed(_ problem: String) -> FixtureError {
            Fixtures.error(path, problem)
        }
        var result: [Int: [Message]] = [:]
        var connection = 0
        for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
            if line.hasPrefix("=== connection ") {
                let number = line.dropFirst("=== connection ".count).prefix { $0.isNumber }
                guard let parsed = Int(number) else { throw malformed("line \(index + 1): no connection number") }
                connection = parsed
                continue
            }
            guard let marker = line.firstRange(of: " msg: ") else { continue }
            let fromClient = line[..<marker.lowerBound].hasSuffix("C>")
            let rest = line[marker.upperBound...]
            let value: Value?
            if let cbor = rest.firstRange(of: "[cbor ") {
                let hex = rest[cbor.upperBound...].prefix { $0 != "]" }
                value = try? CBORDecoder().decode(Captures.hexBytes(String(hex)))
            } else {
                var buffer = ByteBuffer(string: String(rest))
                var decoder = JSONStreamDecoder()
                value = (try? decoder.next(from: &buffer)) ?? nil
            }
            guard let elements = value?.arrayValue else {
                throw malformed("line \(index + 1): the message does not decode to an array")
            }
            result[connection, default: []].append(Message(fromClient: fromClient, value: elements))
        }
        guard !result.isEmpty else { throw malformed("holds no messages") }
        return result
    }

    /// The `g_*` messages of a connection.
    static func global(_ connection: Int) throws -> [Message] {
        (try byConnection.get()[connection] ?? []).filter { $0.tag?.hasPrefix("g_") ?? false }
    }

    /// A message made comparable with ours: byte strings as text, the arrays of `g_reply` sorted
    /// (Perl hash order is arbitrary).
    static func normalized(_ message: [Value]) -> [Value] {
        var message = message.map(GlobalTestNetwork.textify)
        if message.count == 4, message[1] == "g_reply", let elements = message[3].arrayValue {
            message[3] = .array(elements.sorted { "\($0)" < "\($1)" })
        }
        return message
    }
}

/// Replays of the captured Perl traffic against our state machines.
@Suite("Global: capture replay")
struct GlobalReplayTests {
    let echo = NodeID("echo")!

    func sent(_ actions: [DatabaseAction], to node: NodeID? = nil) -> [[Value]] {
        GlobalTestMessages.sends(actions).filter { node == nil || $0.to == node }.map(\.message)
    }

    /// The Perl seed `echo`: global, listening on 127.0.0.1:4040, with the two `aemp_ref` ports.
    func perlEcho() -> DatabaseClient {
        let client = DatabaseClient(localNode: echo)
        _ = client.setListeners(["127.0.0.1:4040"])
        _ = client.seedGreeted(echo)
        _ = client.dbReg("aemp_ref", port: PortID("echo#DIIBdJVBPb")!, value: "echo")
        _ = client.dbReg("aemp_ref", port: PortID("echo#DIIBdJVBPc")!, value: "sink")
        return client
    }

    /// Feeds the client's captured `g_*` messages of `connection` to `server` and checks that it
    /// answers exactly the captured server messages.
    func replayServer(_ server: DatabaseClient, connection: Int, peer: String) throws {
        let peerID = try #require(NodeID(peer))
        let captured = try CapturedMessages.global(connection)
        try #require(!captured.isEmpty, "capture missing")
        var ours = sent(server.nodeUp(peerID), to: peerID)
        for message in captured where message.fromClient {
            let actions = server.receive(
                from: peerID, tag: message.tag!, arguments: Array(message.value.dropFirst(2)))
            #expect(!actions.contains { if case .malformed = $0 { true } else { false } }, "\(message.value)")
            ours += sent(actions, to: peerID)
        }
        let theirs = captured.filter { !$0.fromClient }.map { CapturedMessages.normalized($0.value) }
        #expect(ours.map(CapturedMessages.normalized) == theirs, "conn \(connection)")
    }

    @Test("the capture decodes: conn 3 has the join sequence of spec §6.4")
    func captureShape() throws {
        let tags = try CapturedMessages.global(3).map { ($0.fromClient ? "C>" : "S>") + ($0.tag ?? "") }
        #expect(
            tags == [
                "C>g_slave", "C>g_slave", "C>g_mon1", "C>g_find", "C>g_slave", "S>g_global", "S>g_chg1", "C>g_mon0",
                "S>g_found", "C>g_upd", "C>g_upd", "C>g_db_family", "S>g_reply", "C>g_db_keys", "S>g_reply",
                "C>g_db_values", "S>g_reply", "C>g_upd", "C>g_db_keys", "S>g_reply",
            ])
    }

    @Test("client side of conn 3: our join sequence and answers have the captured shapes")
    func clientJoin() throws {
        let client = DatabaseClient(localNode: NodeID("client-cbor")!)
        let captured = try CapturedMessages.global(3)
        let clientMessages = captured.filter(\.fromClient).map { CapturedMessages.normalized($0.value) }
        let serverMessages = captured.filter { !$0.fromClient }

        #expect(sent(client.setListeners(["127.0.0.1:4046"])).isEmpty)
        var ours = sent(client.seedGreeted(echo))
        let (monitor, monitorActions) = client.dbMonitor("aemp_ref")
        ours += sent(monitorActions)
        ours += sent(client.lookup(echo))
        ours += sent(client.nodeUp(echo))
        #expect(ours == Array(clientMessages.prefix(5)))

        // g_global, then g_chg1 → the monitor's first event.
        #expect(client.receive(from: echo, tag: "g_global", arguments: Array(serverMessages[0].value.dropFirst(2))).isEmpty)
        let chg1 = client.receive(from: echo, tag: "g_chg1", arguments: Array(serverMessages[1].value.dropFirst(2)))
        guard case .monitorEvent(let id, let change) = try #require(chg1.first) else { return }
        #expect(id == monitor)
        #expect(Set(change.added) == ["echo#DIIBdJVBPb", "echo#DIIBdJVBPc"])
        #expect(change.family.mapValues(GlobalTestNetwork.textify) == ["echo#DIIBdJVBPb": "echo", "echo#DIIBdJVBPc": "sink"])
        // Dropping the monitor: g_mon0, as captured.
        #expect(sent(client.dbMonitorCancel(monitor)) == [clientMessages[5]])
        // g_found → address for the pending connect.
        let found = client.receive(from: echo, tag: "g_found", arguments: Array(serverMessages[2].value.dropFirst(2)))
        #expect(found == [.lookupResult(node: echo, addresses: ["127.0.0.1:4040"])])
    }

    @Test("client side of the db_* calls (conn 2, JSON; conn 3, CBOR): captured requests, decoded replies", arguments: [2, 3])
    func clientDatabaseCalls(connection: Int) throws {
        let client = DatabaseClient(localNode: NodeID("client")!)
        _ = client.seedGreeted(echo)
        _ = client.nodeUp(echo)
        let captured = try CapturedMessages.global(connection).drop { $0.tag != "g_upd" }
        let requests = captured.filter(\.fromClient).map { CapturedMessages.normalized($0.value) }
        let replies = captured.filter { !$0.fromClient }

        var ours: [[Value]] = []
        ours += sent(client.dbSet("aemp_ref_test", "k1", ["v": 1]))
        ours += sent(client.dbSet("aemp_ref_test", "k2"))
        let (family, a1) = client.dbFamily("aemp_ref_test")
        let (keys, a2) = client.dbKeys("aemp_ref_test")
        let (values, a3) = client.dbValues("aemp_ref_test")
        ours += sent(a1 + a2 + a3)
        ours += sent(client.dbDel("aemp_ref_test", ["k1", "k2"]))
        let (emptyKeys, a4) = client.dbKeys("aemp_ref_test")
        ours += sent(a4)
        #expect(ours == requests)

        var results: [DatabaseRequestID: DatabaseQueryResult] = [:]
        for reply in replies {
            for case .queryResult(let id, let result) in client.receive(
                from: echo, tag: "g_reply", arguments: Array(reply.value.dropFirst(2)))
            {
                results[id] = result
            }
        }
        guard case .family(let f) = try #require(results[family]) else { return }
        #expect(f.mapValues(GlobalTestNetwork.textify) == ["k1": ["v": 1], "k2": nil])
        guard case .keys(let k) = try #require(results[keys]) else { return }
        #expect(Set(k) == ["k1", "k2"])
        guard case .values(let v) = try #require(results[values]) else { return }
        #expect(Set(v.map(GlobalTestNetwork.textify)) == [["v": 1], nil])
        #expect(results[emptyKeys] == .keys([]))
    }

    @Test("server side: a Swift echo answers the captured requests exactly as Perl did", arguments: [2, 3, 4, 6])
    func serverReplay(connection: Int) throws {
        let peers = [2: "client-json", 3: "client-cbor", 4: "dc-line", 6: "dc-bulk"]
        try replayServer(perlEcho(), connection: connection, peer: peers[connection]!)
    }

    @Test("server side: echo2 joins (conn 8), then monitor finds echo2 and echo (conn 9)")
    func serverJoinAndFind() throws {
        let server = perlEcho()
        try replayServer(server, connection: 8, peer: "echo2")
        let merged = try #require(server.globalDatabase?.merged["aemp_ref"])
        #expect(merged.count == 4)
        #expect(server.globalDatabase?.slaves.contains(NodeID("echo2")!) == true)
        try replayServer(server, connection: 9, peer: "monitor")
        // echo2 is killed: its registrations leave the merged view.
        _ = server.nodeDown(NodeID("echo2")!)
        #expect(server.globalDatabase?.merged["aemp_ref"]?.count == 2)
        #expect(server.globalDatabase?.addresses(of: NodeID("echo2")!) == nil)
    }
}
