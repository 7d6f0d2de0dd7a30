import AEMPCodecs
import AEMPTestSupport
import NIOCore
import Testing

@testable import AEMP

/// A Swift node plays the Perl node `echo` of the captured session: a scripted peer replays the
/// captured bytes of `client-json` (conn 2, JSON) and `client-cbor` (conn 3, CBOR) — same greeting,
/// same nonce, the data phase byte for byte — and the Swift node's answers must have the captured shapes.
@Suite("Node: replay of captured Perl sessions")
struct NodeReplayTests {
    /// Messages of a captured direction after the three handshake lines.
    static func messages(_ bytes: [UInt8], framing: Framing) throws -> [[Value]] {
        var buffer = ByteBuffer(bytes: CapturedConnection.lines(bytes, count: 3).rest)
        var result: [[Value]] = []
        if framing == .json {
            var decoder = JSONStreamDecoder()
            while let value = try decoder.next(from: &buffer) { result.append(value.arrayValue ?? []) }
        } else {
            var decoder = CBORStreamDecoder()
            while let value = try decoder.next(from: &buffer) { result.append(value.arrayValue ?? []) }
        }
        return result
    }

    /// Perl sends strings as CBOR byte strings; compare them as text.
    static func normalised(_ value: Value) -> Value {
        switch value {
        case .bytes: return .text(value.stringValue ?? "")
        case .array(let elements): return .array(elements.map(normalised))
        case .map(let pairs): return .map(pairs.map { (normalised($0.key), normalised($0.value)) })
        default: return value
        }
    }

    static func isDatabase(_ message: [Value]) -> Bool {
        message.first?.stringValue == "" && (message.dropFirst().first?.stringValue ?? "").hasPrefix("g_")
    }

    /// The application the captured `echo` node ran, as Swift registrations.
    static func startEcho(evalError: String) async throws -> Node {
        let node = try await Node.start(
            NodeConfiguration(nodeID: "echo", binds: ["127.0.0.1:0"], secret: Captures.secret))
        let echo: PortCallback = { context, message in
            guard let reply = message.first?.stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, Array(message.dropFirst()))
        }
        node.registerFunction("test::echo_port") { context, _ in
            context.node.receive(context.port!, echo)
        }
        node.registerFunction("main::stf_target") { context, arguments in
            guard let reply = arguments.first?.stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, ["stf", .text(context.node.nodeID.rawValue)] + arguments.dropFirst())
        }
        node.registerFunction("main::spawn_echo") { context, arguments in
            let port = try #require(context.port)
            context.node.receive(port, echo)
            if let reply = arguments.first?.stringValue.flatMap(PortID.init) {
                context.node.send(reply, ["spawned", .text(port.description)])
            }
        }
        node.setEvaluator { code in
            switch code {
            case "1 + 2": .success([3])
            case "my $z = 0; 1 / $z": .failure(EvalError(evalError))
            default: .failure(EvalError("unsupported\n"))
            }
        }
        // The captured echo port has the name DIIBdJVBPb; `spawn` on the own node lets us pick it.
        node.sendToFunction(on: node.nodeID, NodeCore.spawnFunction, ["DIIBdJVBPb", "test::echo_port"])
        return node
    }

    @Test(arguments: [(2, Framing.json), (3, Framing.cbor)])
    func capturedClientSessionGetsTheCapturedAnswers(connection number: Int, framing: Framing) async throws {
        let capture = Captures.connection(number)
        let expected = try Self.messages(capture.serverBytes, framing: framing).filter { !Self.isDatabase($0) }
        // Perl numbers its evals per process ("(eval 18)"); the pluggable evaluator answers the same.
        let evalError = try #require(expected.first { $0.dropFirst().first?.stringValue == "eval_err" }?.last?.stringValue)
        let node = try await Self.startEcho(evalError: evalError)
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        let lines = capture.clientLines(2)
        let greeting = try Greeting(parsing: lines[0])
        let result = try await peer.handshake(
            as: greeting.nodeID, secret: Captures.secret, framings: greeting.framings, greeting: greeting, nonce: lines[1])
        #expect(result.receiveFraming == framing)
        #expect(result.sendFraming == framing)

        // The data phase, byte for byte as the Perl client sent it.
        try await peer.write(ByteBuffer(bytes: CapturedConnection.lines(capture.clientBytes, count: 3).rest))

        var answers: [[Value]] = []
        while answers.count < expected.count {
            let message = try await peer.receive(framing: framing)
            if !Self.isDatabase(message) { answers.append(message) }
        }
        for (answer, captured) in zip(answers, expected) {
            let answer = answer.map(Self.normalised)
            let captured = captured.map(Self.normalised)
            if captured.count == 2, case .float = captured[1] {
                // `time`: the node's clock.
                #expect(answer[0] == captured[0])
                #expect((answer[1].doubleValue ?? 0) > 1_700_000_000)
            } else {
                #expect(answer == captured)
            }
        }
        peer.close()
        await node.shutdown()
    }
}
