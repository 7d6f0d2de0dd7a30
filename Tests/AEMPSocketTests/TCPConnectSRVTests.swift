import NIOCore
import Testing

@testable import AEMPSocket

/// tcpConnect end to end through a real DNS server: SRV records first, A/AAAA as the fallback.
@Suite(.enabled(if: DNSMasqServer.isAvailable, "needs dnsmasq (apt-get install -y dnsmasq-base)"))
struct TCPConnectSRVTests {
    /// One listener and one dnsmasq for the whole suite.
    static let shared = Task { try await Fixture() }

    /// A listener, a dnsmasq serving an SRV record that points at it, and a services file where the
    /// service names map to ports nobody listens on (so a connection proves the port came from SRV).
    struct Fixture: Sendable {
        let listener: RecordingServer
        let resolver: DNSResolver

        init() async throws {
            listener = try RecordingServer(host: "127.0.0.1")
            let port = listener.server.localPort
            let dns = try await DNSMasqServer.start(extraRecords: [
                "--host-record=svc.aemp.test,127.0.0.1",
                "--srv-host=_aempsrv._tcp.svc.aemp.test,ready.aemp.test,\(port),1,1",
            ])
            let services = try temporaryFile(
                "aempsrv 1/tcp\naempplain \(port)/tcp\n# aempsrv has an SRV record, aempplain has none\n",
                name: "services"
            )
            resolver = dns.resolver(servicesFile: services)
        }
    }

    @Test func srvRecordGivesTheTargetAndPort() async throws {
        let fixture = try await Self.shared.value
        let connection = try await tcpConnect(host: "svc.aemp.test", service: "aempsrv", resolver: fixture.resolver)
        defer { connection.channel.close(promise: nil) }
        #expect(connection.peerHost == "127.0.0.1")
        #expect(connection.peerPort == fixture.listener.server.localPort)
        _ = try await fixture.listener.accepted.element(1)
    }

    @Test func withoutSRVTheHostAddressAndServicePortAreUsed() async throws {
        let fixture = try await Self.shared.value
        let connection = try await tcpConnect(host: "svc.aemp.test", service: "aempplain", resolver: fixture.resolver)
        defer { connection.channel.close(promise: nil) }
        #expect(connection.peerPort == fixture.listener.server.localPort)
    }

    @Test func numericServiceSkipsSRV() async throws {
        let fixture = try await Self.shared.value
        let port = String(fixture.listener.server.localPort)
        let connection = try await tcpConnect(host: "svc.aemp.test", service: port, resolver: fixture.resolver)
        defer { connection.channel.close(promise: nil) }
        #expect(connection.peerService == port)
    }

    @Test func unknownNameFailsWithENXIO() async throws {
        let fixture = try await Self.shared.value
        let error = await #expect(throws: SocketError.self) {
            _ = try await tcpConnect(host: "nosuch.aemp.test", service: "aempplain", resolver: fixture.resolver)
        }
        #expect(error?.code == .noSuchAddress)
    }
}
