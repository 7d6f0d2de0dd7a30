import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPTestSupport
import NIOCore
import Testing

/// A Swift node plays the captured Perl node `echo` of conn 4 and 5: a scripted `dc-line` peer replays
/// the captured rendezvous messages byte for byte, then the `aemp-dataconn` handshake with
/// `dataconn_id=b@dc-line` and the captured nonce, and exchanges the captured line.
@Suite("DataConn: replay of the captured Perl rendezvous")
struct DataConnReplayTests {
    static func lookup(_ map: Value, _ key: String) -> Value? {
        guard case .map(let pairs) = map else { return nil }
        return pairs.first { $0.key.stringValue == key }?.value
    }

    /// Replays a captured control connection's data phase byte for byte (as its Perl client) and
    /// returns the peer.
    static func replayControl(_ capture: CapturedConnection, to node: Node) async throws -> ScriptedPeer {
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        let lines = try CapturedConnection.lines(capture.clientBytes, count: 3)
        let greeting = try Greeting(parsing: lines.lines[0])
        let result = try await peer.handshake(
            as: greeting.nodeID, secret: CapturedConnection.secret, framings: greeting.framings, greeting: greeting,
            nonce: lines.lines[1])
        #expect(result.sendFraming == .cbor)
        try await peer.write(ByteBuffer(bytes: lines.rest))
        return peer
    }

    /// Opens a captured `aemp-dataconn` connection with its greeting and nonce; returns the peer and
    /// the raw bytes its Perl client sent after the handshake.
    static func openData(_ capture: CapturedConnection, to node: Node) async throws -> (ScriptedPeer, [UInt8]) {
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        let lines = try CapturedConnection.lines(capture.clientBytes, count: 3)
        let greeting = try Greeting(parsing: lines.lines[0])
        #expect(greeting.protocolName == "aemp-dataconn")
        try await peer.handshake(
            as: greeting.nodeID, secret: CapturedConnection.secret, framings: greeting.framings, greeting: greeting,
            nonce: lines.lines[1])
        return (peer, lines.rest)
    }

    @Test func capturedBulkDataConnGetsTheCapturedAnswers() async throws {
        let control = try CapturedConnection.load(6)
        let data = try CapturedConnection.load(7)
        let echo = try await DataConnScenarioTests.globalNode("echo", exactName: true)
        // Perl: sub dc_sink { my ($port, $size, $hdl) = @_; read $size bytes; snd $port, dc_done => $size, $time, 0 }.
        echo.registerDataConnFunction("main::dc_sink") { context, arguments, handle in
            guard let port = arguments.first?.stringValue.flatMap(PortID.init), let size = arguments.dropFirst().first?.intValue
            else { return }
            let start = ContinuousClock.now
            handle.onError { handle, _ in handle.destroy() }
            // The read callback holds the handle (as Perl's closure over $hdl does) until it is done.
            handle.pushRead(.chunk(size)) { _, chunk in
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                context.node.send(port, ["dc_done", .int(Int64(chunk.readableBytes)), .float(seconds), 0])
                handle.destroy()
            }
        }
        let peer = try await Self.replayControl(control, to: echo)
        var relayed = false
        for _ in 0..<30 where !relayed {
            relayed = try await peer.receive() == ["H9Nw84mi4c"]
        }
        #expect(relayed)

        // conn 7: 65536 raw bytes after the handshake, as captured.
        let (dataPeer, captured) = try await Self.openData(data, to: echo)
        #expect(captured == Array(repeating: UInt8(ascii: "x"), count: 65536))
        try await dataPeer.write(ByteBuffer(bytes: captured))
        let done = try await peer.receive { $0.first == "H9Nw84mi4b" }
        // Captured: ['H9Nw84mi4b', 'dc_done', 65536, <elapsed float>, 0].
        #expect(done.count == 5 && Array(done[0...2]) == ["H9Nw84mi4b", "dc_done", 65536] && done[4] == 0)
        dataPeer.close()
        peer.close()
        await echo.shutdown()
    }

    @Test func capturedLineDataConnGetsTheCapturedAnswers() async throws {
        let control = try CapturedConnection.load(4)
        let data = try CapturedConnection.load(5)
        let echo = try await DataConnScenarioTests.globalNode("echo", exactName: true)
        // Perl: sub dc_echo { my ($port, $hdl) = @_; snd $port, "dc_echo_ready"; echo lines }.
        echo.registerDataConnFunction("main::dc_echo") { context, arguments, handle in
            if let port = arguments.first?.stringValue.flatMap(PortID.init) {
                context.node.send(port, ["dc_echo_ready"])
            }
            handle.onError { handle, _ in handle.destroy() }
            func next() {
                handle.pushRead(.line()) { _, line in
                    handle.pushWrite("echo: \(line.string)\n")
                    next()
                }
            }
            next()
        }

        // conn 4: the aemp connection carrying the rendezvous, data phase byte for byte.
        let peer = try await Self.replayControl(control, to: echo)

        // Captured answers: the `snd` relay `["H4My5nyqAc"]` and the listener family in `g_reply`.
        var relayed = false
        var reply: [Value]?
        for _ in 0..<30 where !relayed || reply == nil {
            let message = try await peer.receive()
            if message == ["H4My5nyqAc"] { relayed = true }
            if message.count == 4, message[1] == "g_reply" { reply = message }
        }
        #expect(relayed)
        let family = try #require(reply)
        #expect(Array(family[0...2]) == ["", "g_reply", "b"])
        #expect(Self.lookup(family[3], "dc-line") == ["127.0.0.1:4047"])
        #expect(Self.lookup(family[3], "echo") == .array(echo.listenerAddresses.map { .text($0) }))

        // conn 5: the DataConn itself, with the captured greeting (dataconn_id=b@dc-line) and nonce.
        let (dataPeer, captured) = try await Self.openData(data, to: echo)
        #expect(try CapturedConnection.lines(data.clientBytes, count: 1).lines[0].hasPrefix("aemp-dataconn;1;dc-line;"))
        // Everything after the auth lines is raw application data, exactly as captured.
        #expect(captured == Array("hello dataconn\n".utf8))
        try await dataPeer.write(ByteBuffer(bytes: captured))
        let answer = try await dataPeer.handle.read(.chunk(21))
        #expect(String(buffer: answer) == "echo: hello dataconn\n")
        #expect(try CapturedConnection.lines(data.serverBytes, count: 3).rest == Array("echo: hello dataconn\n".utf8))

        // And the receiver's message to the caller's port, as captured.
        let ready = try await peer.receive { $0.first == "H4My5nyqAb" }
        #expect(ready == ["H4My5nyqAb", "dc_echo_ready"])
        dataPeer.close()
        peer.close()
        await echo.shutdown()
    }
}
