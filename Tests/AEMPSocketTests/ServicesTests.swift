import Testing

@testable import AEMPSocket

@Suite struct ServicesTests {
    static let text = """
        # Network services, Internet style
        tcpmux          1/tcp                           # TCP port service multiplexer
        http            80/tcp          www www-http    # WorldWideWeb HTTP
        domain          53/tcp
        domain          53/udp
        syslog          514/udp
        broken          notaport/tcp
        huge            70000/tcp
        http            8080/tcp        # a later duplicate is ignored
        lonely
        """

    @Test func parsesNamesAliasesAndProtocols() {
        let services = ServicesFile(parsing: Self.text)
        #expect(services.port(of: "http") == 80)
        #expect(services.port(of: "www") == 80)
        #expect(services.port(of: "www-http", proto: "TCP") == 80)
        #expect(services.port(of: "domain", proto: "udp") == 53)
        #expect(services.port(of: "syslog") == nil)
        #expect(services.port(of: "syslog", proto: "udp") == 514)
        #expect(services.port(of: "broken") == nil)
        #expect(services.port(of: "huge") == nil)
        #expect(services.port(of: "lonely") == nil)
        #expect(services.port(of: "HTTP") == nil)  // case-sensitive, like getservbyname
    }

    @Test func lookupReadsAndCachesTheFile() async throws {
        let path = try temporaryFile(Self.text, name: "services")
        #expect(servicePort("tcpmux", servicesFile: path) == 1)
        #expect(servicePort("www", servicesFile: path) == 80)
        #expect(servicePort("nope", servicesFile: path) == nil)
        #expect(servicePort("http", servicesFile: "/nonexistent/services") == nil)
    }

    @Test func systemServicesFileIfPresent() async {
        // The Debian image has /etc/services (netbase); skip quietly where it does not.
        guard TextFiles.read(ServicesFile.defaultPath) != nil else { return }
        #expect(servicePort("http") == 80)
    }
}
