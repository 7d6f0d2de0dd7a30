import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPTestSupport
import Testing

/// The README's AEMPDataConn example, kept compiling and true.
@Suite struct ReadmeDataConnExampleTests {
    @Test func example() async throws {
        let node = try await Node.start(
            NodeConfiguration(nodeID: "echo", binds: ["127.0.0.1:0"], secret: "s3cr3t"))
        let other = try await Node.start(
            NodeConfiguration(nodeID: "node1", binds: [], seeds: node.listenerAddresses, secret: "s3cr3t"))
        let lines = Inbox<String>()

        node.registerDataConnFunction("pkg::receiver") { context, arguments, handle in
            handle.onError { _, _ in }
            handle.pushRead(.line()) { _, line in lines.put(line.string); handle.destroy() }
        }
        let handle = try await other.dataConnection(to: "echo", timeout: .seconds(5), function: "pkg::receiver", arguments: [1])
        try await handle.write("blabla\n")

        #expect(try await lines.next() == "blabla")
        handle.destroy()
        await other.shutdown()
        await node.shutdown()
    }
}
