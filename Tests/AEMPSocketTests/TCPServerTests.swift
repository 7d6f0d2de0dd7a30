@testable import AEMPSocket
import Dispatch
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("tcpServer") struct TCPServerTests {
    @Test func ephemeralPortIsReportedAndPrepareSeesIt() async throws {
        let seen = TCPLockedBox<(String, Int, String)?>(nil)
        let accepted = Recorder<TCPConnection>()
        let server = try tcpServer(
            host: "127.0.0.1",
            service: nil,
            prepare: { socket in
                seen.withLock { $0 = (socket.localHost, socket.localPort, socket.localService) }
                #expect(socket.descriptor >= 0)
                return nil
            },
            accept: accepted.callback
        )
        #expect(server.localHost == "127.0.0.1")
        #expect(server.localPort > 0)
        #expect(server.localService == String(server.localPort))
        #expect(server.backlog == TCPServer.defaultBacklog)
        let prepared = try #require(seen.withLock { $0 })
        #expect(prepared.0 == "127.0.0.1")
        #expect(prepared.1 == server.localPort)
        #expect(prepared.2 == String(server.localPort))
        let client = try await tcpConnect(host: "127.0.0.1", service: server.localService)
        let connection = try await accepted.element(1)
        #expect(try await connection.channel.getOption(.autoRead).get() == false)
        #expect(connection.eventLoop === server.eventLoop)
        try await expectDataFlows(client.channel, connection.channel)
        try await client.channel.close()
    }

    @Test func numericServiceAndPortForms() async throws {
        let first = try tcpServer(host: "127.0.0.1", service: "0") { _ in }
        #expect(first.localPort > 0)
        let port = first.localPort
        await first.close()
        // The port is free again; bind it by number, both ways.
        let second = try tcpServer(host: "127.0.0.1", service: String(port)) { _ in }
        #expect(second.localPort == port)
        await second.close()
        let third = try tcpServer(host: "127.0.0.1", port: port) { _ in }
        #expect(third.localPort == port)
        await third.close()
    }

    @Test func serviceNamesComeFromTheServicesDatabase() throws {
        #expect(servicePort("no-such-service-here") == nil)
        if let http = servicePort("http") {
            #expect(http == 80)
        }
        let error = #expect(throws: SocketError.self) {
            _ = try tcpServer(host: "127.0.0.1", service: "no-such-service-here") { _ in }
        }
        #expect(error?.code == .noSuchAddress)
        #expect(error?.message.contains("no-such-service-here") == true)
    }

    @Test func addressInUseIsThrownWithHostAndPort() async throws {
        let first = try tcpServer(host: "127.0.0.1", port: 0) { _ in }
        let port = first.localPort
        let error = #expect(throws: SocketError.self) {
            _ = try tcpServer(host: "127.0.0.1", port: port) { _ in }
        }
        #expect(error?.code == .addressInUse)
        #expect(error?.message.contains("127.0.0.1") == true)
        #expect(error?.message.contains(String(port)) == true)
        await first.close()
    }

    @Test(arguments: [
        ("localhost", SocketError.Code.invalidArgument),
        ("not an address", .invalidArgument),
        ("unix/", .invalidArgument),
    ])
    func badHostsAreRejected(host: String, code: SocketError.Code) {
        let error = #expect(throws: SocketError.self) { _ = try tcpServer(host: host, port: 0) { _ in } }
        #expect(error?.code == code)
    }

    @Test(arguments: [-1, 65536, 1 << 40])
    func badPortsAreRejected(port: Int) {
        #expect(throws: SocketError(.invalidArgument)) { _ = try tcpServer(host: "127.0.0.1", port: port) { _ in } }
    }

    @Test func badServiceTextIsRejected() {
        #expect(throws: SocketError(.invalidArgument)) {
            _ = try tcpServer(host: "127.0.0.1", service: "70000") { _ in }
        }
        #expect(throws: SocketError(.invalidArgument)) {
            _ = try tcpServer(host: "127.0.0.1", service: "123456789012345678901234567890") { _ in }
        }
        #expect(throws: SocketError(.invalidArgument)) { _ = try tcpServer(host: "unix/", service: nil) { _ in } }
        #expect(throws: SocketError(.invalidArgument)) { _ = try tcpServer(host: "unix/", service: "") { _ in } }
    }

    @Test func unassignableAddressIsReported() {
        // 192.0.2.1 (TEST-NET-1) is not configured here; binding fails locally, no traffic is sent.
        do {
            let server = try tcpServer(host: "192.0.2.1", port: 0) { _ in }
            server.cancel()  // this machine allows non-local binds (net.ipv4.ip_nonlocal_bind)
        } catch {
            #expect(error.code == .addressNotAvailable)
            #expect(error.message.contains("192.0.2.1"))
        }
    }

    @Test func hostFormsMapToWhatIsBound() throws {
        // The wildcard forms are checked without binding: tests listen on loopback only.
        guard case (.wildcard(port: 0), _) = try serverBindSpec(host: nil, service: nil) else {
            Issue.record("nil host is not the wildcard")
            return
        }
        guard case (.ip(.ipv4Any, port: 80), _) = try serverBindSpec(host: "0", service: "80") else {
            Issue.record("\"0\" is not the IPv4 wildcard")
            return
        }
        guard case (.ip(.ipv6Any, port: 4040), _) = try serverBindSpec(host: "::", service: "4040") else {
            Issue.record("\"::\" is not the IPv6 wildcard")
            return
        }
        guard case (.ip(.ipv4Loopback, port: 0), _) = try serverBindSpec(host: "127.0.0.1", service: "") else {
            Issue.record("127.0.0.1 is not parsed")
            return
        }
        guard case (.unix("/tmp/x.sock"), _) = try serverBindSpec(host: "unix/", service: "/tmp/x.sock") else {
            Issue.record("unix/ is not a Unix-domain path")
            return
        }
    }

    /// Binds the wildcard for real (all interfaces), so it runs only when `AEMP_TEST_WILDCARD=1` is set.
    @Test(.enabled(if: getenv("AEMP_TEST_WILDCARD") != nil, "set AEMP_TEST_WILDCARD=1 to bind the wildcard"))
    func wildcardServerReportsIPv4PeersAsIPv4() async throws {
        let accepted = Recorder<TCPConnection>()
        let server = try tcpServer(host: nil, port: 0, accept: accepted.callback)
        #expect(server.localHost == (machineHasIPv6 ? "::" : "0.0.0.0"))
        let v4 = try await tcpConnect(host: "127.0.0.1", service: server.localService)
        let v4peer = try await accepted.element(1)
        #expect(v4peer.peerHost == "127.0.0.1")
        #expect(v4peer.peerPort == v4.channel.localAddress?.port)
        let v4any = try tcpServer(host: "0", port: 0) { _ in }
        #expect(v4any.localHost == "0.0.0.0")
        v4.channel.close(promise: nil)
        await server.close()
        await v4any.close()
    }

    @Test func cancelStopsListeningButAcceptedConnectionsGoOn() async throws {
        let accepted = Recorder<TCPConnection>()
        let server = try tcpServer(host: "127.0.0.1", port: 0, accept: accepted.callback)
        let port = server.localService
        let client = try await tcpConnect(host: "127.0.0.1", service: port)
        let connection = try await accepted.element(1)
        await server.close()
        #expect(server.isCancelled)
        let error = await #expect(throws: SocketError.self) {
            _ = try await tcpConnect(host: "127.0.0.1", service: port)
        }
        #expect(error?.code == .connectionRefused)
        try await expectDataFlows(client.channel, connection.channel)
        #expect(accepted.count == 1)
        try await client.channel.close()
    }

    @Test func droppingTheServerStopsListening() async throws {
        var server: TCPServer? = try tcpServer(host: "127.0.0.1", port: 0) { _ in }
        let port = try #require(server?.localService)
        let listening = try await #require(server).listeningChannel.get()
        server = nil
        #expect(await becomesClosed(listening))
        let error = await #expect(throws: SocketError.self) {
            _ = try await tcpConnect(host: "127.0.0.1", service: port)
        }
        #expect(error?.code == .connectionRefused)
    }

    @Test func prepareErrorAbortsTheServerAndFreesThePort() throws {
        let seenPort = TCPLockedBox(0)
        let error = #expect(throws: SocketError.self) {
            _ = try tcpServer(
                host: "127.0.0.1",
                port: 0,
                prepare: { socket in
                    seenPort.withLock { $0 = socket.localPort }
                    throw SocketError(.addressNotAvailable, "refused by prepare")
                }
            ) { _ in }
        }
        #expect(error?.code == .addressNotAvailable)
        let port = seenPort.withLock { $0 }
        #expect(port > 0)
        let again = try tcpServer(host: "127.0.0.1", port: port) { _ in }
        #expect(again.localPort == port)
        again.cancel()
    }

    @Test func backlogFromPrepareIsHonoured() async throws {
        // The server's loop is kept busy, so nothing is accepted: the kernel queues backlog + 1 connections and
        // then drops further SYNs, so the next connect times out. With the default backlog it would connect.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let server = try tcpServer(host: "127.0.0.1", port: 0, on: loop, prepare: { _ in 1 }) { _ in }
        #expect(server.backlog == 1)
        _ = try await server.listeningChannel.get()
        // Everything the server queued on its loop (re-applying the backlog among it) runs before this.
        try await loop.submit {}.get()
        let release = DispatchSemaphore(value: 0)
        loop.execute { _ = release.wait(timeout: .now() + 10) }
        var clients: [TCPConnection] = []
        var outcome: SocketError?
        for _ in 0..<4 {
            do {
                clients.append(
                    try await tcpConnect(host: "127.0.0.1", service: server.localService) { _ in .milliseconds(300) }
                )
            } catch {
                outcome = error
                break
            }
        }
        release.signal()
        #expect(outcome?.code == .timedOut)
        // Linux queues backlog + 1 connections; a SYN that races the queue filling up can make one more.
        // With the default backlog all four would connect.
        #expect(clients.count >= 1 && clients.count < 4)
        for client in clients { try await client.channel.close() }
        await server.close()
        try await group.shutdownGracefully()
    }

    @Test func unixDomainServer() async throws {
        let directory = try makeSocketDirectory()
        defer { rmdir(directory) }
        let path = directory + "/server.sock"
        let accepted = Recorder<TCPConnection>()
        let seen = TCPLockedBox<(String, String)?>(nil)
        let server = try tcpServer(
            host: "unix/",
            service: path,
            prepare: { socket in
                seen.withLock { $0 = (socket.localHost, socket.localService) }
                return nil
            },
            accept: accepted.callback
        )
        #expect(server.localHost == "unix/")
        #expect(server.localService == path)
        #expect(server.localPort == 0)
        #expect(seen.withLock { $0 }?.0 == "unix/")
        #expect(seen.withLock { $0 }?.1 == path)
        let client = try await tcpConnect(host: "unix/", service: path)
        let connection = try await accepted.element(1)
        try await expectDataFlows(client.channel, connection.channel)
        #expect(access(path, F_OK) == 0)
        await server.close()
        #expect(access(path, F_OK) != 0)  // removed when the server stops, like Perl
        try await expectDataFlows(client.channel, connection.channel)
        try await client.channel.close()
    }

    @Test func unixServerReplacesAStaleSocketButNotOtherFiles() async throws {
        let directory = try makeSocketDirectory()
        defer { rmdir(directory) }
        let stale = directory + "/stale.sock"
        // Leave a socket file behind: bind a socket and close it without unlinking.
        let fd = try RawSocket.make(family: AF_UNIX, describing: "stale")
        try RawSocket.bind(fd, path: stale, describing: "stale")
        RawSocket.close(fd)
        #expect(access(stale, F_OK) == 0)
        let server = try tcpServer(host: "unix/", service: stale) { _ in }
        let client = try await tcpConnect(host: "unix/", service: stale)
        try await client.channel.close()
        await server.close()

        let plain = directory + "/plain"
        let file = open(plain, O_CREAT | O_WRONLY, 0o600)
        #expect(file >= 0)
        close(file)
        defer { unlink(plain) }
        let error = #expect(throws: SocketError.self) { _ = try tcpServer(host: "unix/", service: plain) { _ in } }
        #expect(error?.code == .addressInUse)
        #expect(access(plain, F_OK) == 0)

        let tooLong = directory + "/" + String(repeating: "x", count: 200)
        #expect(throws: SocketError(SocketError.Code(errno: ENAMETOOLONG))) {
            _ = try tcpServer(host: "unix/", service: tooLong) { _ in }
        }
    }

    @Test func noAcceptCallbackAfterCancel() async throws {
        let accepted = Recorder<TCPConnection>()
        let server = try tcpServer(host: "127.0.0.1", port: 0, accept: accepted.callback)
        server.cancel()
        server.cancel()  // idempotent
        if let client = try? await tcpConnect(host: "127.0.0.1", service: server.localService) {
            try? await client.channel.close()
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(accepted.count == 0)
    }

    @Test func connectionsAsAsyncSequence() async throws {
        let connections = try TCPServer.connections(host: "127.0.0.1", service: nil)
        let service = connections.server.localService
        let first = try await tcpConnect(host: "127.0.0.1", service: service)
        let second = try await tcpConnect(host: "127.0.0.1", service: service)
        var iterator = connections.makeAsyncIterator()
        let one = try #require(await iterator.next())
        let two = try #require(await iterator.next())
        let clientPorts = Set([first.channel.localAddress?.port, second.channel.localAddress?.port])
        #expect(Set([one.channel.remoteAddress?.port, two.channel.remoteAddress?.port]) == clientPorts)
        #expect(one.peerHost == "127.0.0.1")
        let client = one.channel.remoteAddress?.port == first.channel.localAddress?.port ? first : second
        try await expectDataFlows(client.channel, one.channel)
        connections.server.cancel()
        #expect(await iterator.next() == nil)
        #expect(one.channel.isActive && two.channel.isActive)  // accepted connections outlive the server
        // Once one end closes, NIO may close the other on its own: no `try` here.
        for channel in [one.channel, two.channel, first.channel, second.channel] { channel.close(promise: nil) }
    }

    @Test func connectionsWaitEndsWhenTheTaskIsCancelled() async throws {
        let connections = try TCPServer.connections(host: "127.0.0.1", service: "0")
        let waiting = Task { () -> Bool in
            var iterator = connections.makeAsyncIterator()
            return await iterator.next() == nil
        }
        try await Task.sleep(for: .milliseconds(20))
        waiting.cancel()
        #expect(await waiting.value)
        await connections.server.close()
    }

    @Test func droppingTheConnectionsStopsTheServer() async throws {
        var connections: TCPServerConnections? = try TCPServer.connections(host: "127.0.0.1", service: nil)
        let service = try #require(connections?.server.localService)
        let listening = try await #require(connections?.server.listeningChannel).get()
        connections = nil
        #expect(await becomesClosed(listening))
        let error = await #expect(throws: SocketError.self) {
            _ = try await tcpConnect(host: "127.0.0.1", service: service)
        }
        #expect(error?.code == .connectionRefused)
    }

    @Test func stoppingAReplacedUnixServerLeavesTheNewSocketFile() async throws {
        let directory = try makeSocketDirectory()
        defer { rmdir(directory) }
        let path = directory + "/shared.sock"
        let old = try tcpServer(host: "unix/", service: path) { _ in }
        let accepted = Recorder<TCPConnection>()
        let new = try tcpServer(host: "unix/", service: path, accept: accepted.callback)
        await old.close()
        #expect(access(path, F_OK) == 0)
        let client = try await tcpConnect(host: "unix/", service: path)
        _ = try await accepted.element(1)
        client.channel.close(promise: nil)
        await new.close()
        #expect(access(path, F_OK) != 0)
    }
}
