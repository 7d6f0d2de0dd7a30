import AEMPCodecs
import AEMPHandle
import AEMPSocket
import NIOCore
import Synchronization
import Testing

/// The README's AEMPHandle example, kept compiling and true.
@Suite struct ReadmeHandleExampleTests {
    @Test func example() async throws {
        // The peer, itself a Handle: answers the first line with a line and a netstring.
        let peers = Mutex<[Handle]>([])  // a Handle lives as long as someone holds it
        let server = try tcpServer(host: "127.0.0.1", port: 0) { connection in
            let peer = Handle(channel: connection.channel)
            peers.withLock { $0.append(peer) }
            peer.onError { _, _ in }
            peer.pushRead(.line()) { peer, _ in
                peer.pushWrite("WORLD\r\n")
                try? peer.pushWrite(.netstring("ab"))
                try? peer.pushWrite(.netstring("cde"))
                peer.pushShutdown()
            }
        }
        defer { server.cancel() }

        let handle = try await Handle.connect(host: "127.0.0.1", service: String(server.localPort))
        try await handle.write("HELLO\n")
        let reply = try await handle.read(.line())
        #expect(reply.string == "WORLD")
        var sizes: [Int] = []
        for try await frame in handle.reads(.netstring()) { sizes.append(frame.readableBytes) }
        #expect(sizes == [2, 3])
        handle.destroy()
        for peer in peers.withLock({ $0 }) { peer.destroy() }
    }
}
