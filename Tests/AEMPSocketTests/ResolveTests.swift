import NIOCore
import NIOPosix
import Testing

@testable import AEMPSocket

private func ip(_ text: String) -> IPAddress { parseIP(text)! }

@Suite struct ResolveTests {
    @Test(arguments: [
        ("127.0.0.1", ["127.0.0.1"]), ("::1", ["::1"]), ("2001:db8::9", ["2001:db8::9"]),
        ("localhost", ["127.0.0.1", "::1"]), ("LocalHost.", ["127.0.0.1", "::1"]),
    ])
    func numericAndLocalhostNeedNoServer(_ name: String, _ expected: [String]) async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = server.resolver(timeout: .seconds(10))
        #expect(try await resolve(name, resolver: resolver) == expected.map(ip))
        #expect(try await server.queryCount() == 0)
    }

    @Test func everyFormParseIPAcceptsIsNumeric() async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = server.resolver(timeout: .seconds(10))
        for text in ["10.1", "0x7f000001", "192.0.2.1", "::ffff:192.0.2.1"] {
            let parsed = try #require(parseIP(text))
            #expect(try await resolve(text, resolver: resolver) == [parsed])
        }
        #expect(try await server.queryCount() == 0)
    }

    @Test func hostsFileComesFirst() async throws {
        let hosts = try temporaryFile("192.0.2.99 hosted.example alias\n2001:db8::99 hosted.example\n", name: "hosts")
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = server.resolver(timeout: .seconds(10), hostsFile: hosts)
        #expect(try await resolve("HOSTED.example", resolver: resolver) == [ip("192.0.2.99"), ip("2001:db8::99")])
        #expect(try await resolve("alias", resolver: resolver) == [ip("192.0.2.99")])
        #expect(try await server.queryCount() == 0)
    }

    @Test func missingHostsFileFallsThroughToDNS() async throws {
        let server = try await FakeUDPNameserver.start { query in
            [FakeReply.answer(query, addresses: FakeReply.type(of: query) == 1 ? [ip("192.0.2.5")] : [])]
        }
        defer { Task { await server.stop() } }
        let resolver = server.resolver(hostsFile: "/nonexistent/hosts")
        #expect(try await resolve("x.example", resolver: resolver) == [ip("192.0.2.5")])
    }

    @Test func callbackRunsOnTheGivenLoop() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = server.resolver(timeout: .milliseconds(100))
        let (result, onLoop) = await withCheckedContinuation { continuation in
            resolve("localhost", on: loop, resolver: resolver) { result in
                continuation.resume(returning: (result, loop.inEventLoop))
            }
        }
        #expect(onLoop)
        #expect(try result.get() == [.ipv4Loopback, .ipv6Loopback])

        let failure = await withCheckedContinuation { continuation in
            resolve("x.aemp.test", resolver: resolver) { continuation.resume(returning: $0) }
        }
        #expect(throws: SocketError(.timedOut)) { try failure.get() }
    }

    @Test(.enabled(if: DNSMasqServer.isAvailable)) func resolvesThroughDNS() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        #expect(try await resolve("both.aemp.test", resolver: resolver) == [ip("192.0.2.2"), ip("2001:db8::2")])
        await #expect(throws: SocketError(.noSuchAddress)) { try await resolve("nope.aemp.test", resolver: resolver) }
    }

    @Test func cancellation() async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = server.resolver(timeout: .seconds(30))
        let task = Task { try await resolve("slow.aemp.test", resolver: resolver) }
        for _ in 0..<200 where try await server.queryCount() == 0 {
            try await Task.sleep(for: .milliseconds(10))
        }
        task.cancel()
        await #expect(throws: SocketError(.cancelled)) { try await task.value }
    }

    @Test func sharedResolverReadsSystemConfiguration() {
        // Reading /etc/resolv.conf must not crash whatever it holds; the shared resolver is lazy.
        #expect(DNSResolver.shared.configuration.effectiveNameservers.count >= 1)
    }
}
