import Crypto

/// The four greeting lines an auth token covers, from one side's point of view (spec §3.4).
///
/// Lines are kept as the exact bytes received or sent, without their line endings, because the
/// tokens hash bytes: a peer's line need not be UTF-8 for its nonce to count.
public struct HandshakeTranscript: Sendable, Hashable {
    /// This side's greeting line 1 (`l1`).
    public var ownGreeting: [UInt8]
    /// This side's nonce line (`l2`).
    public var ownNonce: [UInt8]
    /// The peer's greeting line 1 (`r1`).
    public var peerGreeting: [UInt8]
    /// The peer's nonce line (`r2`).
    public var peerNonce: [UInt8]

    /// Creates a transcript from raw lines.
    ///
    /// - Parameters:
    ///   - ownGreeting: `l1`.
    ///   - ownNonce: `l2`.
    ///   - peerGreeting: `r1`.
    ///   - peerNonce: `r2`.
    public init(ownGreeting: [UInt8], ownNonce: [UInt8], peerGreeting: [UInt8], peerNonce: [UInt8]) {
        self.ownGreeting = ownGreeting
        self.ownNonce = ownNonce
        self.peerGreeting = peerGreeting
        self.peerNonce = peerNonce
    }

    /// Creates a transcript from text lines.
    ///
    /// - Parameters:
    ///   - ownGreeting: `l1`.
    ///   - ownNonce: `l2`.
    ///   - peerGreeting: `r1`.
    ///   - peerNonce: `r2`.
    public init(ownGreeting: String, ownNonce: String, peerGreeting: String, peerNonce: String) {
        self.init(
            ownGreeting: Array(ownGreeting.utf8), ownNonce: Array(ownNonce.utf8),
            peerGreeting: Array(peerGreeting.utf8), peerNonce: Array(peerNonce.utf8))
    }

    /// The same transcript seen from the peer (own and peer lines swapped).
    public var swapped: HandshakeTranscript {
        HandshakeTranscript(ownGreeting: peerGreeting, ownNonce: peerNonce, peerGreeting: ownGreeting, peerNonce: ownNonce)
    }

    /// The hashed message: `l1 LF l2 LF r1 LF r2 LF`.
    public var message: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ownGreeting.count + ownNonce.count + peerGreeting.count + peerNonce.count + 4)
        for line in [ownGreeting, ownNonce, peerGreeting, peerNonce] {
            bytes += line
            bytes.append(0x0A)
        }
        return bytes
    }
}

/// Computes and checks the auth tokens of the handshake's auth line (spec §3.4, §12).
///
/// Perl: the token code of `AnyEvent::MP::Transport`. Tokens are lowercase hex. The sender always
/// hashes its **own** lines first (for `tls_sha3_512` too, which is what Perl's code does although
/// its POD says otherwise, spec §12.1); the receiver recomputes from the sender's point of view.
public enum HandshakeAuth {
    /// `hex(HMAC-SHA3-512(key: secret, l1 LF l2 LF r1 LF r2 LF))`. Perl: `hmac_sha3_512`.
    ///
    /// The key is the secret's raw bytes (a 72-byte HMAC block; longer keys are hashed first, as
    /// RFC 2104 says).
    ///
    /// - Parameters:
    ///   - secret: the shared secret's bytes.
    ///   - transcript: the lines from the token sender's point of view.
    /// - Returns: 128 lowercase hex characters.
    public static func hmacToken(secret: some Sequence<UInt8>, transcript: HandshakeTranscript) -> String {
        let key = SymmetricKey(data: Array(secret))
        let code = HMAC<SHA3_512>.authenticationCode(for: transcript.message, using: key)
        return hex(code)
    }

    /// `hex(SHA3-512(l1 LF l2 LF r1 LF r2 LF))`, own lines first. Perl: `tls_sha3_512`.
    ///
    /// - Parameter transcript: the lines from the token sender's point of view.
    /// - Returns: 128 lowercase hex characters.
    public static func tlsToken(transcript: HandshakeTranscript) -> String {
        hex(SHA3_512.hash(data: transcript.message))
    }

    /// The secret in lowercase hex. Perl: `cleartext` (accepted by Perl, never sent by it).
    ///
    /// - Parameter secret: the shared secret's bytes.
    /// - Returns: two hex characters per byte.
    public static func cleartextToken(secret: some Sequence<UInt8>) -> String {
        hex(Array(secret))
    }

    /// The token this side sends for `method`, or `nil` if the method cannot be used (it needs a
    /// secret or TLS that is not there, or it is unknown).
    ///
    /// - Parameters:
    ///   - method: the chosen method.
    ///   - secret: the shared secret (empty or `nil` if none).
    ///   - tlsEstablished: whether the connection runs inside TLS.
    ///   - transcript: the lines from this side's point of view.
    /// - Returns: the token text.
    public static func token(
        for method: AuthMethod, secret: [UInt8]?, tlsEstablished: Bool, transcript: HandshakeTranscript
    ) -> String? {
        switch method {
        case .hmacSHA3_512:
            guard let secret, !secret.isEmpty else { return nil }
            return hmacToken(secret: secret, transcript: transcript)
        case .cleartext:
            guard let secret, !secret.isEmpty else { return nil }
            return cleartextToken(secret: secret)
        case .tlsSHA3_512:
            return tlsEstablished ? tlsToken(transcript: transcript) : nil
        case .tlsAnon:
            return tlsEstablished ? "" : nil
        default:
            return nil
        }
    }

    /// Checks a peer's token (spec §3.4 "Verification").
    ///
    /// The expected value is computed from the peer's point of view (`transcript.swapped`) and
    /// compared in constant time. Without a secret, `hmac_sha3_512` and `cleartext` never verify;
    /// without TLS, `tls_sha3_512` and `tls_anon` never verify.
    ///
    /// - Parameters:
    ///   - token: the peer's token bytes.
    ///   - method: the peer's method.
    ///   - secret: our shared secret, if any.
    ///   - tlsEstablished: whether the connection runs inside TLS.
    ///   - transcript: the lines from **our** point of view.
    /// - Returns: whether the token is the expected one.
    public static func verify(
        token: some Collection<UInt8>, method: AuthMethod, secret: [UInt8]?, tlsEstablished: Bool,
        transcript: HandshakeTranscript
    ) -> Bool {
        guard let expected = self.token(for: method, secret: secret, tlsEstablished: tlsEstablished, transcript: transcript.swapped)
        else { return false }
        return constantTimeEqual(Array(expected.utf8), Array(token))
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(128)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The nonce line (greeting line 2, spec §3.2).
public enum HandshakeNonce {
    /// Number of random bytes Perl encodes (giving 88 Base64 characters).
    public static let byteCount = 66

    /// A fresh nonce line: 66 random bytes in standard Base64 with padding, without line ending.
    ///
    /// Perl draws the bytes from its non-cryptographic `rand`; this uses the system CSPRNG.
    ///
    /// - Parameter generator: the random source.
    /// - Returns: 88 Base64 characters.
    public static func generate<G: RandomNumberGenerator>(using generator: inout G) -> String {
        let bytes = (0..<byteCount).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return base64(bytes)
    }

    /// A fresh nonce line from the system random number generator.
    ///
    /// - Returns: 88 Base64 characters.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    /// Standard Base64 (RFC 4648 §4) with padding and no line breaks.
    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let remaining = bytes.count - index
            let b0 = UInt32(bytes[index])
            let b1 = remaining > 1 ? UInt32(bytes[index + 1]) : 0
            let b2 = remaining > 2 ? UInt32(bytes[index + 2]) : 0
            let group = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(group >> 18 & 63)])
            out.append(alphabet[Int(group >> 12 & 63)])
            out.append(remaining > 1 ? alphabet[Int(group >> 6 & 63)] : UInt8(ascii: "="))
            out.append(remaining > 2 ? alphabet[Int(group & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
