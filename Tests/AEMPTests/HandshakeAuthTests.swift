import Crypto
import Testing

@testable import AEMP

@Suite("Handshake auth tokens")
struct HandshakeAuthTests {
    // Spec §3.7, connection 2 (client-json → echo).
    static let l1 =
        "aemp;1;client-json;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;json;peeraddr=127.0.0.1:4040;mproto=1;gproto=1;provider=AE-2.01"
    static let l2 = "SYuWpBIeO+hO64eYSuiwTglTsNv/3KdccKgj4BGWKPaumzQFt03u4HpbZEvGNFZGqLO93kbVejf7UEivJO07q9Rw"
    static let r1 =
        "aemp;1;echo;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;provider=AE-2.01;gproto=1;peeraddr=127.0.0.1:53400;mproto=1"
    static let r2 = "QYI7jFrzLWsVMLsygzYISCGOLIbwP8lO6/UhFo2N08aTtoKraswKAUORd00QlZfgqCw8c+P72kh284PpoXG07j6/"
    static let clientToken =
        "92bb43b1de6f1cce1770a1ea892222f3f25191fdfa530dbe035933a05ec7c39197806b608b54732682480263c9997eaa30f50ed9e42b87b7d3728ba24c667a7a"
    static let serverToken =
        "af41e4c98d21505f97ee2969cc5e4f60b0f0d228c11777b5bf835e4095a68fc169ebc88c0828f1ae691d481c853d683671a5b5463e339efa299c6c32c66a656a"

    static var workedTranscript: HandshakeTranscript {
        HandshakeTranscript(ownGreeting: l1, ownNonce: l2, peerGreeting: r1, peerNonce: r2)
    }

    @Test func workedExampleOfSpec() {
        let transcript = Self.workedTranscript
        #expect(transcript.message.count == 444)
        let secret = Array(Captures.secret.utf8)
        #expect(HandshakeAuth.hmacToken(secret: secret, transcript: transcript) == Self.clientToken)
        #expect(HandshakeAuth.hmacToken(secret: secret, transcript: transcript.swapped) == Self.serverToken)
        // The server verifies the client's token from its own point of view, and vice versa.
        #expect(
            HandshakeAuth.verify(
                token: Array(Self.clientToken.utf8), method: .hmacSHA3_512, secret: secret, tlsEstablished: false,
                transcript: transcript.swapped))
        #expect(
            HandshakeAuth.verify(
                token: Array(Self.serverToken.utf8), method: .hmacSHA3_512, secret: secret, tlsEstablished: false,
                transcript: transcript))
    }

    @Test func capturesAreLoaded() throws {
        #expect(try Captures.loadedConnections.get().count == 10)
        #expect(try Captures.loadedSyntheticVectors.get().count == 7)
        let completed = Captures.connections.filter(\.completed)
        #expect(completed.count == 9)
    }

    /// Every auth token of every completed handshake in the capture (18 tokens).
    @Test(arguments: Captures.connections.filter(\.completed))
    func capturedTokens(_ connection: CapturedConnection) throws {
        let client = connection.clientLines()
        let server = connection.serverLines()
        let secret = Array(Captures.secret.utf8)
        let clientView = HandshakeTranscript(
            ownGreeting: client[0], ownNonce: client[1], peerGreeting: server[0], peerNonce: server[1])
        let clientAuth = client[2].split(separator: ";", omittingEmptySubsequences: false)
        let serverAuth = server[2].split(separator: ";", omittingEmptySubsequences: false)
        #expect(clientAuth[0] == "hmac_sha3_512" && serverAuth[0] == "hmac_sha3_512")
        #expect(HandshakeAuth.hmacToken(secret: secret, transcript: clientView) == clientAuth[1])
        #expect(HandshakeAuth.hmacToken(secret: secret, transcript: clientView.swapped) == serverAuth[1])
        #expect(
            !HandshakeAuth.verify(
                token: Array(clientAuth[1].utf8), method: .hmacSHA3_512, secret: Array("wrong".utf8),
                tlsEstablished: false, transcript: clientView.swapped))
    }

    /// The Perl helper's synthetic vectors, secret lengths 1–200 (keys beyond the 72-byte block).
    @Test(arguments: Captures.syntheticVectors)
    func syntheticVectors(_ vector: Captures.SyntheticVector) {
        // The secrets are Latin-1 in the JSON file and all ASCII, so UTF-8 gives the same bytes.
        let secret = Array(vector.secret.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
        #expect(secret.count == vector.secretLength)
        let aView = HandshakeTranscript(ownGreeting: vector.a1, ownNonce: vector.a2, peerGreeting: vector.b1, peerNonce: vector.b2)
        #expect(HandshakeAuth.hmacToken(secret: secret, transcript: aView) == vector.aToken)
        #expect(HandshakeAuth.hmacToken(secret: secret, transcript: aView.swapped) == vector.bToken)
        #expect(HandshakeAuth.cleartextToken(secret: secret) == vector.cleartext)
    }

    @Test func hmacUsesTheSHA3Rate() {
        #expect(SHA3_512.blockByteCount == 72)
    }

    /// §12.1: the tls token hashes the sender's own lines first.
    @Test func tlsTokenHashesOwnLinesFirst() {
        let transcript = Self.workedTranscript
        let expected = HandshakeAuth.hex(SHA3_512.hash(data: Array((Self.l1 + "\n" + Self.l2 + "\n" + Self.r1 + "\n" + Self.r2 + "\n").utf8)))
        #expect(HandshakeAuth.tlsToken(transcript: transcript) == expected)
        #expect(HandshakeAuth.tlsToken(transcript: transcript).count == 128)
        #expect(HandshakeAuth.tlsToken(transcript: transcript) != HandshakeAuth.tlsToken(transcript: transcript.swapped))
    }

    @Test func tokensNeedTheirPrerequisites() {
        let transcript = Self.workedTranscript
        #expect(HandshakeAuth.token(for: .hmacSHA3_512, secret: nil, tlsEstablished: true, transcript: transcript) == nil)
        #expect(HandshakeAuth.token(for: .hmacSHA3_512, secret: [], tlsEstablished: true, transcript: transcript) == nil)
        #expect(HandshakeAuth.token(for: .cleartext, secret: nil, tlsEstablished: false, transcript: transcript) == nil)
        #expect(HandshakeAuth.token(for: .tlsSHA3_512, secret: [1], tlsEstablished: false, transcript: transcript) == nil)
        #expect(HandshakeAuth.token(for: .tlsAnon, secret: [1], tlsEstablished: false, transcript: transcript) == nil)
        #expect(HandshakeAuth.token(for: .tlsAnon, secret: nil, tlsEstablished: true, transcript: transcript) == "")
        #expect(HandshakeAuth.token(for: AuthMethod(rawValue: "md5"), secret: [1], tlsEstablished: true, transcript: transcript) == nil)
        #expect(HandshakeAuth.cleartextToken(secret: Array("aemp-ref-secret".utf8)) == "61656d702d7265662d736563726574")
    }

    @Test func verificationRejectsWrongTokens() {
        let transcript = Self.workedTranscript
        let secret = Array(Captures.secret.utf8)
        let token = Array(Self.clientToken.utf8)
        // Wrong point of view, truncated, upper case, wrong method prerequisites.
        #expect(!HandshakeAuth.verify(token: token, method: .hmacSHA3_512, secret: secret, tlsEstablished: false, transcript: transcript))
        #expect(
            !HandshakeAuth.verify(
                token: token.dropLast(), method: .hmacSHA3_512, secret: secret, tlsEstablished: false, transcript: transcript.swapped))
        #expect(
            !HandshakeAuth.verify(
                token: Array(Self.clientToken.uppercased().utf8), method: .hmacSHA3_512, secret: secret, tlsEstablished: false,
                transcript: transcript.swapped))
        #expect(!HandshakeAuth.verify(token: token, method: .hmacSHA3_512, secret: nil, tlsEstablished: false, transcript: transcript.swapped))
        #expect(!HandshakeAuth.verify(token: [], method: .tlsAnon, secret: secret, tlsEstablished: false, transcript: transcript))
        #expect(HandshakeAuth.verify(token: [], method: .tlsAnon, secret: nil, tlsEstablished: true, transcript: transcript))
        let cleartext = Array("61656d702d7265662d736563726574".utf8)
        #expect(HandshakeAuth.verify(token: cleartext, method: .cleartext, secret: secret, tlsEstablished: false, transcript: transcript))
        let tls = Array(HandshakeAuth.tlsToken(transcript: transcript.swapped).utf8)
        #expect(HandshakeAuth.verify(token: tls, method: .tlsSHA3_512, secret: nil, tlsEstablished: true, transcript: transcript))
        #expect(!HandshakeAuth.verify(token: tls, method: .tlsSHA3_512, secret: nil, tlsEstablished: false, transcript: transcript))
    }

    @Test func nonceLines() {
        let nonce = HandshakeNonce.generate()
        #expect(nonce.utf8.count == 88)
        #expect(nonce.utf8.allSatisfy { $0 != 0x0A && $0 != 0x0D })
        #expect(HandshakeNonce.generate() != nonce)
    }

    @Test(arguments: [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ])
    func base64(_ input: String, _ expected: String) {
        #expect(HandshakeNonce.base64(Array(input.utf8)) == expected)
    }

    @Test func tlsRoleComparesNonceLines() {
        #expect(TLSRole.decide(ownNonce: Array("AAAB".utf8), peerNonce: Array("AAAC".utf8)) == .client)
        #expect(TLSRole.decide(ownNonce: Array("b".utf8), peerNonce: Array("a".utf8)) == .server)
        // Byte order, not Base64-decoded order: "Z" (0x5A) sorts before "a" (0x61), "+" before "/".
        #expect(TLSRole.decide(ownNonce: Array("Z".utf8), peerNonce: Array("a".utf8)) == .client)
        #expect(TLSRole.decide(ownNonce: Array("ab".utf8), peerNonce: Array("a".utf8)) == .server)
        #expect(TLSRole.decide(ownNonce: Array("same".utf8), peerNonce: Array("same".utf8)) == nil)
    }
}
