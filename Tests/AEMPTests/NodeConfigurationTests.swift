import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

@Suite("Node configuration")
struct NodeConfigurationTests {
    @Test func perlDefaults() {
        let configuration = NodeConfiguration.default
        #expect(configuration.nodeID == nil)
        #expect(configuration.binds == ["*"])
        #expect(configuration.seeds.isEmpty)
        #expect(configuration.secret == nil && configuration.certificate == nil)
        #expect(configuration.authOffer.map(\.rawValue) == ["tls_sha3_512", "hmac_sha3_512"])
        #expect(configuration.authAccept.map(\.rawValue) == ["tls_sha3_512", "hmac_sha3_512", "tls_anon", "cleartext"])
        #expect(configuration.framingFormats.map(\.rawValue) == ["cbor", "json"])
        #expect(configuration.monitorTimeout == .seconds(30))
        #expect(configuration.connectInterval == .seconds(2))
        #expect(configuration.nodelay && !configuration.autocork && !configuration.secure)
        #expect(!configuration.canAuthenticate)
        #expect(NodeConfiguration(secret: "x").canAuthenticate)
        #expect(NodeConfiguration(certificate: "PEM").canAuthenticate)
        #expect(!NodeConfiguration(secret: "").canAuthenticate)
    }

    @Test(arguments: [
        (1, Duration.seconds(2)), (14, Duration.seconds(2)), (20, Duration.milliseconds(1400)), (100, Duration.milliseconds(400)),
        (0, Duration.seconds(2)),
    ])
    func dialPacing(_ addresses: Int, _ interval: Duration) {
        #expect(NodeConfiguration.default.dialInterval(addressCount: addresses) == interval)
    }

    @Test func handshakeSettingsFromNode() throws {
        let node = NodeConfiguration(secret: "aemp-ref-secret", certificate: "PEM", framingFormats: [.json])
        let handshake = HandshakeConfiguration(node: node, nodeID: try NodeID(validating: "n"))
        #expect(handshake.secret == Array("aemp-ref-secret".utf8))
        #expect(handshake.tlsAvailable)
        #expect(handshake.framings == [.json])
        #expect(handshake.authAccept == AuthMethod.defaultAccept)
        #expect(handshake.protocolUpgrades == ["aemp-dataconn"])
        #expect(HandshakeConfiguration(node: .default, nodeID: try NodeID(validating: "n")).secret == nil)
    }

    @Test func methodAndFramingNames() {
        #expect(AuthMethod.tlsAnon.requiresTLS && AuthMethod.tlsSHA3_512.requiresTLS)
        #expect(!AuthMethod.hmacSHA3_512.requiresTLS && !AuthMethod.cleartext.requiresTLS)
        #expect(AuthMethod.cleartext.description == "cleartext")
        #expect(Framing.json.description == "json")
        #expect(Framing.supported.allSatisfy { $0.isSupported })
        #expect(HandshakeError(.timeout, "a") == HandshakeError(.timeout, "b"))
        #expect(HandshakeError.Code.echoAttack.description == "echoAttack")
        #expect(HandshakeError.echoAttack.description == "authentication error, echo attack?")
    }
}

@Suite("Node configuration from Perl configure arguments")
struct NodeConfigurationPerlTests {
    @Test func typicalArguments() throws {
        let configuration = try NodeConfiguration(perlArguments: [
            (key: "nodeid", value: .text("echo")),
            (key: "binds", value: .array([.text("127.0.0.1:4040"), .text("[::1]:4040")])),
            (key: "seeds", value: .text("127.0.0.1:4040")),
            (key: "secret", value: .bytes(ByteBuffer(string: "aemp-ref-secret"))),
            (key: "framing_format", value: .array([.text("cbor"), .text("json"), .text("storable")])),
            (key: "auth_offer", value: .text("tls_sha3_512, hmac_sha3_512")),
            (key: "auth_accept", value: .array([.text("hmac_sha3_512")])),
            (key: "monitor_timeout", value: .text("12.5")),
            (key: "connect_interval", value: .int(3)),
            (key: "nodelay", value: .text("0")),
            (key: "autocork", value: .int(1)),
            (key: "secure", value: .bool(true)),
            (key: "services", value: .array([.text("main::service")])),
            (key: "profile", value: .text("ignored")),
            (key: "unknown_key", value: .array([])),
        ])
        #expect(configuration.nodeID == "echo")
        #expect(configuration.binds == ["127.0.0.1:4040", "[::1]:4040"])
        #expect(configuration.seeds == ["127.0.0.1:4040"])
        #expect(configuration.secret == "aemp-ref-secret")
        #expect(configuration.framingFormats == [.cbor, .json])
        #expect(configuration.authOffer == [.tlsSHA3_512, .hmacSHA3_512])
        #expect(configuration.authAccept == [.hmacSHA3_512])
        #expect(configuration.monitorTimeout == .milliseconds(12_500))
        #expect(configuration.connectInterval == .seconds(3))
        #expect(!configuration.nodelay && configuration.autocork && configuration.secure)
        #expect(configuration.services == ["main::service"])
        #expect(NodeConfiguration.perlKeys.contains("framing_format"))
    }

    @Test func emptyAndNullValues() throws {
        let configuration = try NodeConfiguration(perlArguments: [
            (key: "nodeid", value: .null), (key: "seeds", value: .null), (key: "binds", value: .text("")),
            (key: "framing_format", value: .text("json")), (key: "secure", value: .null), (key: "nodelay", value: .float(0)),
        ])
        #expect(configuration.nodeID == nil && configuration.seeds.isEmpty && configuration.binds.isEmpty)
        #expect(configuration.framingFormats == [.json])
        #expect(!configuration.secure && !configuration.nodelay)
        #expect(try NodeConfiguration(perlArguments: []) == .default)
    }

    @Test(arguments: [
        ("monitor_timeout", Value.text("abc")), ("monitor_timeout", Value.int(-1)), ("connect_interval", Value.float(.infinity)),
        ("binds", Value.array([.int(1)])), ("seeds", Value.int(4)), ("framing_format", Value.array([.text("storable")])),
        ("secret", Value.int(5)), ("nodelay", Value.array([])), ("auth_offer", Value.map([])),
    ])
    func refusedValues(_ key: String, _ value: Value) {
        let error = #expect(throws: NodeConfigurationError.self) {
            try NodeConfiguration(perlArguments: [(key: key, value: value)])
        }
        #expect(error?.key == key)
        #expect(error?.description.hasPrefix(key + ": ") == true)
    }
}
