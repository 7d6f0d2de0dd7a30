import AEMP
import AEMPCodecs
import AEMPTestSupport
import Testing

/// The README's AEMP example, kept compiling and true.
@Suite struct ReadmeNodeExampleTests {
    @Test func example() async throws {
        let node = try await Node.start(
            NodeConfiguration(nodeID: "echo", binds: ["127.0.0.1:0"], seeds: [], secret: "s3cr3t"))

        let echo = node.port { context, message in
            guard let reply = message.last?.stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, Array(message.dropLast()))
        }

        let reply = try await node.call(echo, ["hello", 1])
        #expect(reply == ["hello", 1])

        let died = Inbox<KillReason>()
        let guardian = node.monitor(echo) { reason in died.put(reason) }
        node.kill(echo, reason: .user(["shutdown", "bye"]))
        #expect(try await died.next().values == ["shutdown", "bye"])
        _ = guardian
        await node.shutdown()
    }
}
