import AEMP
import AEMPCodecs
import AEMPTestSupport
import NIOCore
import Testing

/// Bad peers get their connection closed; the node and its other connections go on.
@Suite("Node: hostile and broken peers")
struct NodeHostileInputTests {
    static let secret = "hostile-test-secret"

    static func node(_ name: String) async throws -> Node {
        try await Node.start(NodeConfiguration(nodeID: name, binds: ["127.0.0.1:0"], secret: secret))
    }

    /// The node still answers a well-behaved peer: handshake, then a `time` request.
    static func stillWorks(_ node: Node) async throws {
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        let me = NodeID("healthy-\(UInt32.random(in: 0...UInt32.max))")!
        let result = try await peer.handshake(as: me, secret: secret)
        #expect(result.peerNodeID == node.nodeID)
        let reply = "\(me)#r"
        try await peer.send(["", "time", .text(reply)], framing: result.sendFraming)
        var message = try await peer.receive(framing: result.receiveFraming)
        // The node may send database messages first; skip node-port messages.
        var skipped = 0
        while message.first == "" && skipped < 10 {
            message = try await peer.receive(framing: result.receiveFraming)
            skipped += 1
        }
        #expect(message.first == "r" && message.count == 2)
        peer.close()
    }

    @Test func oversizeGreetingClosesTheConnection() async throws {
        let node = try await Self.node("hostile-oversize")
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        try await peer.write(String(repeating: "a", count: 5000))
        #expect(await peer.closedByPeer())
        try await Self.stillWorks(node)
        await node.shutdown()
    }

    @Test func garbageInsteadOfAnAuthLineClosesTheConnection() async throws {
        let node = try await Self.node("hostile-garbage")
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        try await peer.write("aemp;1;garbage-peer;hmac_sha3_512;json\nbm9uY2U=\n\u{01}\u{02}garbage;;;\n")
        #expect(await peer.closedByPeer())
        try await Self.stillWorks(node)
        await node.shutdown()
    }

    @Test func wrongVersionAndProtocolAreRefused() async throws {
        let node = try await Self.node("hostile-version")
        for line in ["aemp;2;v2-peer;hmac_sha3_512;json\n", "http;1;x;y;z\n", "GET / HTTP/1.0\n"] {
            let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
            try await peer.write(line)
            #expect(await peer.closedByPeer())
        }
        try await Self.stillWorks(node)
        await node.shutdown()
    }

    @Test(arguments: [Framing.json, .cbor])
    func malformedFrameAfterAuthClosesAndReportsTheNodeDown(framing: Framing) async throws {
        let node = try await Self.node("hostile-frame-\(framing)")
        let events = Inbox<String>()
        let g = node.monitorNodes { peer, up, reason in events.put("\(peer) \(up)") }
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        let delivered = Inbox<[Value]>()
        let port = node.port { _, message in delivered.put(message) }
        try await peer.handshake(as: NodeID("framer")!, secret: Self.secret, framings: [framing])
        #expect(try await events.next() == "framer true")
        try await peer.send([.text(port.name), "before"], framing: framing)
        #expect(try await delivered.next() == ["before"])
        var garbage = ByteBuffer()
        garbage.writeBytes(framing == .json ? Array("[\"x\", }}}".utf8) : [0xFF, 0xFF, 0xFF])
        try await peer.write(garbage)
        try await peer.send([.text(port.name), "after"], framing: framing)
        #expect(await peer.closedByPeer())
        #expect(try await events.next() == "framer false")
        #expect(delivered.snapshot.isEmpty)
        try await Self.stillWorks(node)
        _ = g
        await node.shutdown()
    }

    @Test func nonArrayMessageClosesTheConnection() async throws {
        let node = try await Self.node("hostile-nonarray")
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        try await peer.handshake(as: NodeID("mapper")!, secret: Self.secret, framings: [.json])
        try await peer.write("{\"not\":\"an array\"}")
        #expect(await peer.closedByPeer())
        try await Self.stillWorks(node)
        await node.shutdown()
    }
}
