#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

@testable import aemp

/// A client whose connection attempts all fail says why in its error, not only `connect timeout`.
@Suite("aemp connect failures", .enabled(if: AempBinary.path != nil, "needs the built aemp executable"))
struct ConnectFailureProcessTests {
    static let secret = "connect-failure-secret"

    @Test func wrongSecret() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let (node, id) = try await sandbox.startNode(["nodeid", "server", "binds", address, "seeds", address])
        defer { node.signal(SIGKILL) }
        let wrong = ["AEMP_CONFIG": "{\"norc\":1,\"secret\":\"not the secret\",\"seeds\":[\"\(address)\"]}"]
        let call = try await sandbox.client(["cal", "\(id)#", "time"], environment: wrong)
        #expect(call.status == 1, "\(call.process.transcript)")
        #expect(
            call.errors.contains(
                "aemp: cal: \(id)# died: transport_error \(id) connect timeout (last attempt: authentication failure/shared secret mismatch)"),
            "\(call.process.transcript)")
        let monitor = try await sandbox.client(["mon", "\(id)#"], environment: wrong)
        #expect(
            monitor.status == 0
                && monitor.output == "transport_error \(id) connect timeout (last attempt: authentication failure/shared secret mismatch)\n",
            "\(monitor.process.transcript)")
    }

    @Test func certificateFromAnotherCA() async throws {
        // Two `aemp gencert` certificates: each is its own CA, so each side rejects the other's.
        let tools = ["PATH": "/usr/bin:/bin", "TMPDIR": NSTemporaryDirectory()]
        let serverCertificate = try CertificateGenerator.generate(environment: tools)
        let otherCertificate = try CertificateGenerator.generate(environment: tools)
        let sandbox = try ProcessSandbox(rc: nil)
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let (node, id) = try await sandbox.startNode([
            "norc", "1", "nodeid", "tls-server", "binds", address, "seeds", address, "cert", serverCertificate,
        ])
        defer { node.signal(SIGKILL) }

        func client(_ certificate: String) throws -> [String: String] {
            let settings: [String: Any] = ["norc": 1, "cert": certificate, "seeds": [address]]
            let json = try JSONSerialization.data(withJSONObject: settings)
            return ["AEMP_CONFIG": String(decoding: json, as: UTF8.self)]
        }
        // The same certificate on both sides works (as with Perl's `aemp gencert` copied around).
        let good = try await sandbox.client(["cal", "\(id)#", "time"], environment: try client(serverCertificate))
        #expect(good.status == 0, "\(good.process.transcript)")

        let call = try await sandbox.client(["cal", "\(id)#", "time"], environment: try client(otherCertificate))
        #expect(call.status == 1, "\(call.process.transcript)")
        #expect(
            call.errors.contains(
                "aemp: cal: \(id)# died: transport_error \(id) connect timeout (last attempt: TLS handshake failed: "),
            "\(call.process.transcript)")
        #expect(
            call.errors.contains("unknown CA") || call.errors.contains("certificate verification failed"),
            "\(call.process.transcript)")
        // The server logs its side of it.
        #expect(await node.waitUntil { $0.errors.text.contains("failed: TLS handshake failed: ") }, "\(node.transcript)")
    }
}
