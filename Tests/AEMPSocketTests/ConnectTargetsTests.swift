import Testing

@testable import AEMPSocket

private func ip(_ text: String) -> IPAddress { parseIP(text)! }

@Suite struct ConnectTargetsTests {
    static let services = """
        multi   4000/tcp
        none    4001/tcp
        plain   4002/tcp   plain-alias
        dup     4003/tcp
        udponly 4004/udp
        """

    /// A resolver whose only nameserver is silent, so tests can check nothing is asked.
    static func offlineResolver(_ server: FakeUDPNameserver) throws -> DNSResolver {
        DNSResolver(configuration: .init(
            nameservers: [server.nameserver], timeout: .milliseconds(200), attempts: 1, hostsFile: nil,
            servicesFile: try temporaryFile(services, name: "services")
        ))
    }

    @Test func unixSocket() async throws {
        #expect(try await resolveConnectTargets(host: "unix/", service: "/tmp/x.sock") == [.unix(path: "/tmp/x.sock")])
        await #expect(throws: SocketError(.noSuchAddress)) { try await resolveConnectTargets(host: "unix/", service: "rel.sock") }
    }

    @Test func numericAndLocalhostNeedNoLookup() async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = try Self.offlineResolver(server)
        #expect(try await resolveConnectTargets(host: "192.0.2.1", service: "80", resolver: resolver) == [.ip(ip("192.0.2.1"), port: 80)])
        #expect(try await resolveConnectTargets(host: "::1", service: "plain", resolver: resolver) == [.ip(ip("::1"), port: 4002)])
        #expect(try await resolveConnectTargets(host: "localhost", service: "plain=99", resolver: resolver) == [
            .ip(.ipv4Loopback, port: 99), .ip(.ipv6Loopback, port: 99),
        ])
        #expect(try await server.queryCount() == 0)
    }

    @Test(arguments: [
        ("80", nil, 80), ("0", nil, 0), ("65535", nil, 65535), ("plain", "plain", 4002), ("plain-alias", "plain-alias", 4002),
        ("xmpp=5222", "xmpp", 5222), ("a=b=7", "a=b", 7),
    ] as [(String, String?, Int)])
    func serviceForms(_ service: String, _ name: String?, _ port: Int) async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let parsed = try await Self.offlineResolver(server).parseService(service)
        #expect(parsed.srvName == name)
        #expect(parsed.port == port)
    }

    @Test(arguments: ["65536", "99999999999999999999999", "unknown-service", "udponly", "=5", "a b=5", ""])
    func badServicesAreENXIO(_ service: String) async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = try Self.offlineResolver(server)
        await #expect(throws: SocketError(.noSuchAddress)) {
            try await resolveConnectTargets(host: "192.0.2.1", service: service, resolver: resolver)
        }
    }

    @Test func manySRVTargetsKeepTheirOrder() async throws {
        // More targets than are looked up at once; each target has one A record.
        let count = DNSResolver.maximumParallelTargetLookups + 5
        let server = try await FakeUDPNameserver.start { query in
            let name = FakeReply.name(of: query)
            switch FakeReply.type(of: query) {
            case 33:
                let records = (0..<count).map { (UInt16($0), UInt16(0), UInt16(1000 + $0), "t\($0).srv.example") }
                return [(try? FakeReply.srvAnswer(query, records: records)) ?? []]
            case 1 where name.hasPrefix("t"):
                let number = UInt8(name.dropFirst().prefix { $0.isNumber })!
                return [FakeReply.answer(query, addresses: [IPAddress(bytes: [192, 0, 2, number])!])]
            default:
                return [FakeReply.answer(query, addresses: [])]
            }
        }
        defer { Task { await server.stop() } }
        let resolver = DNSResolver(configuration: .init(
            nameservers: [server.nameserver], timeout: .seconds(2), hostsFile: nil,
            servicesFile: try temporaryFile(Self.services, name: "services")
        ))
        let targets = try await resolveConnectTargets(host: "srv.example", service: "plain", resolver: resolver)
        #expect(targets == (0..<count).map { .ip(IPAddress(bytes: [192, 0, 2, UInt8($0)])!, port: 1000 + $0) })
    }

    @Test func lookupFailureIsENXIOWithTheCause() async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let error = await #expect(throws: SocketError(.noSuchAddress)) {
            try await resolveConnectTargets(host: "x.aemp.test", service: "80", resolver: try Self.offlineResolver(server))
        }
        #expect((error?.underlying as? SocketError)?.code == .timedOut)
        #expect(error?.message.contains("x.aemp.test:80") == true)
    }
}

@Suite(.enabled(if: DNSMasqServer.isAvailable, "needs dnsmasq (apt-get install -y dnsmasq)"))
struct ConnectTargetsDNSTests {
    static func resolver() async throws -> DNSResolver {
        try await DNSMasqServer.shared.value.resolver(
            servicesFile: try temporaryFile(ConnectTargetsTests.services, name: "services")
        )
    }

    @Test func srvTargetsComeFirstIPv4BeforeIPv6() async throws {
        let resolver = try await Self.resolver()
        for _ in 0..<10 {
            let targets = try await resolveConnectTargets(host: "aemp.test", service: "multi", resolver: resolver)
            // t1/t2 (priority 10) in weighted order, then t3 (priority 20); IPv6 after all IPv4.
            #expect(targets.count == 4)
            #expect(Set(targets.prefix(2)) == [.ip(ip("192.0.2.11"), port: 1001), .ip(ip("192.0.2.12"), port: 1002)])
            #expect(targets[2] == .ip(ip("192.0.2.13"), port: 1003))
            #expect(targets[3] == .ip(ip("2001:db8::12"), port: 1002))
        }
    }

    @Test func nameEqualsPortUsesTheNameForSRV() async throws {
        let resolver = try await Self.resolver()
        let targets = try await resolveConnectTargets(host: "aemp.test", service: "multi=1", resolver: resolver)
        #expect(targets.count == 4 && !targets.contains(where: { if case .ip(_, 1) = $0 { true } else { false } }))
    }

    @Test func noSRVFallsBackToTheHost() async throws {
        let resolver = try await Self.resolver()
        #expect(try await resolveConnectTargets(host: "plain.aemp.test", service: "plain", resolver: resolver) == [
            .ip(ip("192.0.2.20"), port: 4002), .ip(ip("2001:db8::20"), port: 4002),
        ])
        #expect(try await resolveConnectTargets(host: "plain.aemp.test", service: "x=77", resolver: resolver) == [
            .ip(ip("192.0.2.20"), port: 77), .ip(ip("2001:db8::20"), port: 77),
        ])
    }

    @Test func numericServiceSkipsSRV() async throws {
        let resolver = try await Self.resolver()
        // aemp.test itself has no address records: with a numeric port there is no SRV step.
        await #expect(throws: SocketError(.noSuchAddress)) {
            try await resolveConnectTargets(host: "aemp.test", service: "4000", resolver: resolver)
        }
    }

    @Test func srvTargetDotMeansUnavailable() async throws {
        let resolver = try await Self.resolver()
        let error = await #expect(throws: SocketError(.noSuchAddress)) {
            try await resolveConnectTargets(host: "aemp.test", service: "none", resolver: resolver)
        }
        #expect(error?.message.contains("not available") == true)
    }

    @Test func duplicatesAreRemoved() async throws {
        // Two SRV records whose targets (a name and its CNAME) have the same addresses and port.
        let resolver = try await Self.resolver()
        #expect(try await resolveConnectTargets(host: "aemp.test", service: "dup", resolver: resolver) == [
            .ip(ip("192.0.2.2"), port: 2000), .ip(ip("2001:db8::2"), port: 2000),
        ])
    }

    @Test func unknownHostIsENXIO() async throws {
        let resolver = try await Self.resolver()
        let error = await #expect(throws: SocketError(.noSuchAddress)) {
            try await resolveConnectTargets(host: "nope.aemp.test", service: "plain", resolver: resolver)
        }
        #expect(error?.message.contains("nope.aemp.test") == true)
    }
}

@Suite struct ImmediateConnectTargetsTests {
    @Test func numericHostAndPortNeedNoLookup() throws {
        #expect(DNSResolver.immediateConnectTargets(host: "127.0.0.1", service: "4040") == [.ip(.ipv4Loopback, port: 4040)])
        #expect(DNSResolver.immediateConnectTargets(host: "::1", service: "0") == [.ip(.ipv6Loopback, port: 0)])
        #expect(DNSResolver.immediateConnectTargets(host: "unix/", service: "/tmp/s") == [.unix(path: "/tmp/s")])
    }

    @Test(arguments: [
        ("localhost", "4040"), ("127.0.0.1", "http"), ("127.0.0.1", "aemp=4040"), ("127.0.0.1", "65536"),
        ("127.0.0.1", ""), ("unix/", "relative"), ("example.org", "80"),
    ])
    func everythingElseGoesThroughTheResolver(host: String, service: String) {
        #expect(DNSResolver.immediateConnectTargets(host: host, service: service) == nil)
    }

    @Test func immediateTargetsEqualTheResolvedOnes() async throws {
        for (host, service) in [("127.1", "80"), ("::ffff:1.2.3.4", "00443"), ("unix/", "/x")] {
            let resolved = try await DNSResolver.shared.connectTargets(host: host, service: service)
            #expect(DNSResolver.immediateConnectTargets(host: host, service: service) == resolved)
        }
    }
}
