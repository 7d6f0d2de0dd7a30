import NIOCore
import Testing

@testable import AEMPSocket

@Suite struct DNSConfigurationTests {
    @Test func parsesResolvConf() throws {
        let text = """
            # generated
            nameserver 192.0.2.53
            nameserver 2001:db8::53   ; trailing comment
            nameserver not-an-address
            nameserver 192.0.2.53
            domain ignored.example
            search Corp.Example lab.example. corp.example
            options ndots:2 timeout:3 attempts:4 rotate
            sortlist 130.155.160.0/255.255.240.0
            options timeout:bogus
            """
        let configuration = DNSResolver.Configuration(resolvConf: text)
        #expect(configuration.nameservers == [
            .init(try #require(parseIP("192.0.2.53"))), .init(try #require(parseIP("2001:db8::53"))),
        ])
        #expect(configuration.search == ["corp.example", "lab.example"])
        #expect(configuration.ndots == 2)
        #expect(configuration.timeout == .seconds(3))
        #expect(configuration.attempts == 4)
    }

    @Test func domainAndSearchLastOneWins() {
        #expect(DNSResolver.Configuration(resolvConf: "search a.example b.example\ndomain c.example").search == ["c.example"])
        #expect(DNSResolver.Configuration(resolvConf: "domain c.example\nsearch a.example").search == ["a.example"])
    }

    @Test func emptyResolvConfKeepsDefaults() {
        let configuration = DNSResolver.Configuration(resolvConf: "")
        #expect(configuration.nameservers.isEmpty)
        #expect(configuration.effectiveNameservers == [.init(.ipv4Loopback)])
        #expect(configuration.timeout == .seconds(5))
        #expect(configuration.attempts == 2)
        #expect(configuration.ndots == 1)
        #expect(configuration.hostsFile == "/etc/hosts")
    }

    @Test func systemReadsTheFileOrFallsBack() throws {
        let path = try temporaryFile("nameserver 127.0.0.9\noptions attempts:1\n", name: "resolv")
        let configuration = DNSResolver.Configuration.system(resolvConf: path)
        #expect(configuration.nameservers == [.init(try #require(parseIP("127.0.0.9")))])
        #expect(configuration.attempts == 1)
        let missing = DNSResolver.Configuration.system(resolvConf: "/nonexistent/resolv.conf")
        #expect(missing.nameservers.isEmpty && missing.attempts == 2)
    }

    @Test func optionsAreClamped() {
        let configuration = DNSResolver.Configuration(resolvConf: "options timeout:99999 attempts:0 ndots:99")
        #expect(configuration.timeout == .seconds(30))
        #expect(configuration.effectiveAttempts == 1)
        #expect(configuration.ndots == 15)
        #expect(DNSResolver.Configuration(timeout: .zero).timeoutAmount == .milliseconds(1))
    }

    @Test func searchCandidates() {
        let configuration = DNSResolver.Configuration(search: ["a.example", "b.example"], ndots: 1)
        #expect(configuration.candidates(for: "host") == ["host.a.example", "host.b.example", "host"])
        #expect(configuration.candidates(for: "Host.Sub") == ["host.sub", "host.sub.a.example", "host.sub.b.example"])
        #expect(configuration.candidates(for: "host.") == ["host"])
        let ndots3 = DNSResolver.Configuration(search: ["a.example"], ndots: 3)
        #expect(ndots3.candidates(for: "x.y.z") == ["x.y.z.a.example", "x.y.z"])
        #expect(DNSResolver.Configuration().candidates(for: "x") == ["x"])
    }

    @Test func parsesHostsFile() throws {
        let hosts = HostsFile(parsing: """
            127.0.0.1   localhost
            # comment line
            192.0.2.7\tOne.Example one   # trailing
            2001:db8::7 one.example
            192.0.2.8   one.example
            bogus       two.example
            192.0.2.9
              10.1      short.example
            """)
        #expect(hosts.addresses(for: "ONE.example.") == [
            try #require(parseIP("192.0.2.7")), try #require(parseIP("192.0.2.8")), try #require(parseIP("2001:db8::7")),
        ])
        #expect(hosts.addresses(for: "one") == [try #require(parseIP("192.0.2.7"))])
        #expect(hosts.addresses(for: "two.example").isEmpty)
        // Any form parseIP accepts is an address (`10.1` once the full POSIX parser is in).
        #expect(hosts.addresses(for: "short.example") == [parseIP("10.1")].compactMap { $0 })
        #expect(hosts.entries.count == (parseIP("10.1") == nil ? 3 : 4))
    }

    @Test func fileCacheRereadsChangedFiles() async throws {
        let path = try temporaryFile("192.0.2.1 a.example\n", name: "hosts")
        let cache = ParsedFileCache<HostsFile> { HostsFile(parsing: $0) }
        #expect(cache.value(path: path)?.addresses(for: "a.example").count == 1)
        #expect(cache.value(path: "/nonexistent/hosts") == nil)
        // A new file with a different modification time replaces the cached parse.
        let replacement = try temporaryFile("192.0.2.1 b.example\n", name: "hosts")
        #expect(cache.value(path: replacement)?.addresses(for: "b.example").count == 1)
    }
}
