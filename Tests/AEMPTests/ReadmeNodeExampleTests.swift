import AEMP
import AEMPCodecs
import AEMPTestSupport
import Testing

/// The README's AEMP example, kept compiling and true.
@Suite struct ReadmeNodeExampleTests {
    @Test func example() async throws {
        let node = try await Node.start(
            NodeConfiguration(nodeID: "echo", binds: ["127.0.0.1:0"], seeds: [], secret: "s3cr3t"))

        let echo = node.messagePort()
        let server = Task {
            for await message in echo.messages {
                guard let reply = message.values.last?.stringValue.flatMap(PortID.init) else { continue }
                node.send(reply, Array(message.values.dropLast()))
            }
        }

        let reply = try await node.call(echo.id, ["hello", 1])
        #expect(reply == ["hello", 1])

        let died = Inbox<KillReason>()
        let guardian = node.monitor(echo.id) { reason in died.put(reason) }
        node.kill(echo.id, reason: .user(["shutdown", "bye"]))
        #expect(try await died.next().values == ["shutdown", "bye"])
        await server.value  // the kill ended the loop
        _ = guardian
        await node.shutdown()
    }
}
