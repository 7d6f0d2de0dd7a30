import AEMPSocket
import NIOCore
import Testing

/// The README's AEMPSocket example, kept compiling and true.
@Suite struct ReadmeSocketExampleTests {
    @Test func example() async throws {
        #expect(parseIP("10.1") == IPAddress(bytes: [10, 0, 0, 1]))
        #expect(formatIP(try #require(parseIP("2001:DB8:0:0::1"))) == "2001:db8::1")
        let hostPort = try HostPort(parsing: "[::1]:4040")
        #expect(hostPort.host == "::1" && hostPort.port == "4040")
        #expect(try await resolve("localhost") == [.ipv4Loopback, .ipv6Loopback])

        let accepted = Recorder<String>()
        let server = try tcpServer(host: "127.0.0.1", port: 0) { connection in
            accepted.callback("\(connection.peerHost):\(connection.peerPort)")
            connection.channel.close(promise: nil)
        }
        let connection = try await tcpConnect(host: "127.0.0.1", service: String(server.localPort))
        #expect(try await accepted.element(1).hasPrefix("127.0.0.1:"))
        try? await connection.channel.close()  // the server may have closed it first
        server.cancel()
    }
}
