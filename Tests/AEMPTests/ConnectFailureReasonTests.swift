import AEMP
import AEMPCodecs
import AEMPHandle
import AEMPSocket
import AEMPTestSupport
import NIOCore
import Testing

/// A connect attempt that times out says why in its `transport_error` reason: `connect timeout`
/// (Perl's words first), then the last handshake failure or dial error in parentheses.
@Suite("Node: connect timeout reasons")
struct ConnectFailureReasonTests {
    /// A global node (its own seed) on a free loopback port.
    static func server(_ name: String, secret: String? = nil, certificate: String? = nil) async throws -> Node {
        let probe = try await Node.start(NodeConfiguration(nodeID: "\(name)-probe", binds: ["127.0.0.1:0"], secret: "x"))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()
        return try await Node.start(
            NodeConfiguration(
                nodeID: name, binds: [address], seeds: [address], secret: secret, certificate: certificate))
    }

    /// A node using `seed` as its seed, with a short connect interval.
    static func client(
        _ name: String, seed: String, secret: String? = nil, certificate: String? = nil
    ) async throws -> Node {
        try await Node.start(
            NodeConfiguration(
                nodeID: name, binds: ["127.0.0.1:0"], seeds: [seed], secret: secret, certificate: certificate,
                connectInterval: .seconds(1)))
    }

    /// The transport message of the reason `client`'s call to `target`'s node port fails with.
    ///
    /// On a loaded machine the first attempt may time out before the first handshake has failed
    /// (then it says only what it knew); up to two more attempts follow until `expected` holds.
    static func failure(
        calling target: NodeID, from client: Node, until expected: (String) -> Bool = { _ in true }
    ) async throws -> String {
        var message = ""
        for _ in 0..<3 {
            do {
                _ = try await client.call(PortID.nodePort(of: target), ["time"], timeout: .seconds(8))
                Issue.record("the call to \(target) succeeded")
            } catch .portDied(let reason) {
                #expect(reason.tag == KillReason.transportErrorTag && reason.string(at: 1) == target.rawValue)
                message = reason.string(at: 2) ?? ""
            } catch {
                Issue.record("expected a transport_error, got \(error)")
            }
            if expected(message) { break }
        }
        return message
    }

    @Test func wrongSecretIsTheLastAttemptsFailure() async throws {
        let server = try await Self.server("reason-server", secret: "right secret")
        let client = try await Self.client("reason-client", seed: server.listenerAddresses[0], secret: "wrong secret")
        let expected = "connect timeout (last attempt: authentication failure/shared secret mismatch)"
        let message = try await Self.failure(calling: server.nodeID, from: client) { $0 == expected }
        #expect(message == expected)
        await client.shutdown()
        await server.shutdown()
    }

    @Test func certificateFromAnotherCAIsTheLastAttemptsFailure() async throws {
        let certificates = try NodeCertificates.shared.get()
        let server = try await Self.server("reason-tls-server", certificate: certificates.nodeA)
        let client = try await Self.client(
            "reason-tls-client", seed: server.listenerAddresses[0], certificate: certificates.rogue)
        let message = try await Self.failure(calling: server.nodeID, from: client) { $0.contains("TLS") }
        // Which side rejects first depends on the TLS roles (decided by the nonces): this side's
        // verification fails, or the peer's alert arrives.
        #expect(message.hasPrefix("connect timeout (last attempt: TLS handshake failed: "), "\(message)")
        #expect(message.contains("unknown CA") || message.contains("certificate verification failed"), "\(message)")
        await client.shutdown()
        await server.shutdown()
    }

    @Test func peerClosingAfterOurAuthLineSuggestsTheSecret() async throws {
        // A peer that greets, reads the auth line and hangs up without answering (as a node that
        // checks the token before sending its own would do with a wrong secret).
        let server = try tcpServer(host: "127.0.0.1", port: 0) { connection in
            let handle = Handle(channel: connection.channel)
            Task {
                let peer = ScriptedPeer.adopt(handle)
                try await peer.write(
                    "aemp;1;closer;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;provider=AE-2.01\nbm9uY2Vub25jZQ==\n")
                for _ in 0..<3 { _ = try await peer.readLine() }  // greeting, nonce, auth line
                peer.close()
            }
        }
        defer { server.cancel() }
        let client = try await Self.client("closer-client", seed: "127.0.0.1:\(server.localPort)", secret: "s")
        let expected = "connect timeout (last attempt: peer closed the connection during the handshake: wrong secret?)"
        let message = try await Self.failure(calling: NodeID("closer")!, from: client) { $0 == expected }
        #expect(message == expected)
        await client.shutdown()
    }

    @Test func unreachableSeedIsNamedWhenNoMasterAnswers() async throws {
        let probe = try await Node.start(NodeConfiguration(nodeID: "gone-probe", binds: ["127.0.0.1:0"], secret: "x"))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()
        let client = try await Self.client("lonely-client", seed: address, secret: "s")
        let message = try await Self.failure(calling: NodeID("elsewhere")!, from: client) { $0.contains("ECONNREFUSED") }
        #expect(message.hasPrefix("connect timeout (no database master to look up its address (seed \(address): "), "\(message)")
        #expect(message.contains("ECONNREFUSED"), "\(message)")
        await client.shutdown()
    }

    @Test func messageKeepsPerlsFirstWords() {
        #expect(KillReason.connectTimeoutMessage(detail: nil) == "connect timeout")
        #expect(KillReason.connectTimeoutMessage(detail: "") == "connect timeout")
        #expect(KillReason.connectTimeoutMessage(detail: "last attempt: x") == "connect timeout (last attempt: x)")
    }
}
