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
        let peer = try await ScriptedPeer.connect(to: echo.listenerAddresses[0])
        let controlLines = CapturedConnection.lines(control.clientBytes, count: 3)
        let greeting = try Greeting(parsing: controlLines.lines[0])
        let result = try await peer.handshake(
            as: greeting.nodeID, secret: CapturedConnection.secret, framings: greeting.framings, greeting: greeting,
            nonce: controlLines.lines[1])
        #expect(result.sendFraming == .cbor)
        try await peer.write(ByteBuffer(bytes: controlLines.rest))

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
        let dataPeer = try await ScriptedPeer.connect(to: echo.listenerAddresses[0])
        let dataLines = CapturedConnection.lines(data.clientBytes, count: 3)
        let dataGreeting = try Greeting(parsing: dataLines.lines[0])
        #expect(dataLines.lines[0].hasPrefix("aemp-dataconn;1;dc-line;"))
        try await dataPeer.handshake(
            as: dataGreeting.nodeID, secret: CapturedConnection.secret, framings: dataGreeting.framings,
            greeting: dataGreeting, nonce: dataLines.lines[1])
        // Everything after the auth lines is raw application data, exactly as captured.
        let captured = CapturedConnection.lines(data.clientBytes, count: 3).rest
        #expect(captured == Array("hello dataconn\n".utf8))
        try await dataPeer.write(ByteBuffer(bytes: captured))
        let answer = try await dataPeer.handle.read(.chunk(21))
        #expect(String(buffer: answer) == "echo: hello dataconn\n")
        #expect(CapturedConnection.lines(data.serverBytes, count: 3).rest == Array("echo: hello dataconn\n".utf8))

        // And the receiver's message to the caller's port, as captured.
        let ready = try await peer.receive { $0.first == "H4My5nyqAb" }
        #expect(ready == ["H4My5nyqAb", "dc_echo_ready"])
        dataPeer.close()
        peer.close()
        await echo.shutdown()
    }
}
