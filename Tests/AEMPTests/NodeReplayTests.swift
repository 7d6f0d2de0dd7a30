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
        var buffer = ByteBuffer(bytes: try CapturedConnection.lines(bytes, count: 3).rest)
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

    /// A database message with its volatile parts made comparable: listener addresses become
    /// "<address>", arrays in replies are sorted (Perl's order is hash order).
    static func comparable(_ message: [Value], node: String) -> [Value] {
        var message = message.map(normalised)
        if message.count == 4, message[1] == "g_found", message[3] != .null { message[3] = ["<address>"] }
        if message.count == 4, message[1] == "g_reply", case .array(let elements) = message[3] {
            message[3] = .array(elements.sorted { "\($0)" < "\($1)" })
        }
        return message
    }

    static func isDatabase(_ message: [Value]) -> Bool {
        message.first?.stringValue == "" && (message.dropFirst().first?.stringValue ?? "").hasPrefix("g_")
    }

    /// The application the captured `echo` node ran, as Swift registrations.
    static func startEcho(evalError: String) async throws -> Node {
        // The captured echo was its own seed, hence a global node.
        let probe = try await Node.start(NodeConfiguration(nodeID: "echo-probe", binds: ["127.0.0.1:0"], secret: Captures.secret))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()
        let node = try await Node.start(
            NodeConfiguration(nodeID: "echo", binds: [address], seeds: [address], secret: Captures.secret))
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
        // Both ports were registered in family aemp_ref.
        node.registerFunction("test::sink_port") { context, _ in
            context.node.receive(context.port!) { _, _ in }
        }
        node.sendToFunction(on: node.nodeID, NodeCore.spawnFunction, ["DIIBdJVBPb", "test::echo_port"])
        node.sendToFunction(on: node.nodeID, NodeCore.spawnFunction, ["DIIBdJVBPc", "test::sink_port"])
        node.dbReg("aemp_ref", port: PortID("echo#DIIBdJVBPb")!, value: "echo")
        node.dbReg("aemp_ref", port: PortID("echo#DIIBdJVBPc")!, value: "sink")
        try await Task.sleep(for: .milliseconds(100))
        return node
    }

    @Test(arguments: [(2, Framing.json), (3, Framing.cbor)])
    func capturedClientSessionGetsTheCapturedAnswers(connection number: Int, framing: Framing) async throws {
        let capture = try Captures.connection(number)
        let allExpected = try Self.messages(capture.serverBytes, framing: framing)
        let expected = allExpected.filter { !Self.isDatabase($0) }
        let expectedDatabase = allExpected.filter(Self.isDatabase).map { Self.comparable($0, node: "echo") }
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
        try await peer.write(ByteBuffer(bytes: try CapturedConnection.lines(capture.clientBytes, count: 3).rest))

        var answers: [[Value]] = []
        var databaseAnswers: [[Value]] = []
        while answers.count < expected.count || databaseAnswers.count < expectedDatabase.count {
            let message = try await peer.receive(framing: framing)
            if Self.isDatabase(message) {
                databaseAnswers.append(Self.comparable(message, node: "echo"))
            } else {
                answers.append(message)
            }
        }
        // Database answers: the same messages (timing decides their interleaving with the rest).
        for captured in expectedDatabase {
            #expect(databaseAnswers.contains(captured), "missing \(captured) in \(databaseAnswers)")
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
