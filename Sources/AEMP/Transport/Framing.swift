/// A data-phase framing: how messages are serialised on one direction of a connection (spec §4).
///
/// Perl: the `framing_format` list (`cbor,json,storable`). Each side sends in the first framing of
/// the **peer's** list that it also supports and announces it in its auth line, so the two directions
/// may differ. The Swift node speaks ``cbor`` and ``json``; ``storable`` (Perl's `Storable` images)
/// only exists so that peer lists can be represented, and is never offered or accepted.
public struct Framing: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
    /// The name as it appears in greetings and auth lines.
    public let rawValue: String

    /// Wraps a framing name (any name; see ``isSupported``).
    ///
    /// - Parameter rawValue: the framing name, e.g. `"cbor"`.
    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// One CBOR data item per message (Perl's first preference, CBOR::XS).
    public static let cbor = Framing(rawValue: "cbor")
    /// One JSON text per message, concatenated (JSON::XS).
    public static let json = Framing(rawValue: "json")
    /// Perl-only `Storable` framing; never used by the Swift node.
    public static let storable = Framing(rawValue: "storable")

    /// The framings this implementation can encode and decode, in Swift's default preference order.
    public static let supported: [Framing] = [.cbor, .json]

    /// Whether this implementation can speak the framing.
    public var isSupported: Bool { self == .cbor || self == .json }

    /// The framing name.
    public var description: String { rawValue }
}

/// An authentication method of the handshake's auth line (spec §3.4).
///
/// Perl: the `auth_offer` (methods a node sends) and `auth_accept` (methods it accepts, sent as
/// greeting field 4) lists. Unknown names from a peer are representable so that peer lists can be
/// kept as received.
public struct AuthMethod: Hashable, Sendable, RawRepresentable, CustomStringConvertible {
    /// The name as it appears in greetings and auth lines.
    public let rawValue: String

    /// Wraps an auth method name.
    ///
    /// - Parameter rawValue: the method name, e.g. `"hmac_sha3_512"`.
    public init(rawValue: String) {
        self.rawValue = rawValue
    }

    /// SHA3-512 over the four greeting lines, valid only inside an established TLS connection.
    public static let tlsSHA3_512 = AuthMethod(rawValue: "tls_sha3_512")
    /// HMAC-SHA3-512 over the four greeting lines, keyed with the shared secret.
    public static let hmacSHA3_512 = AuthMethod(rawValue: "hmac_sha3_512")
    /// An empty token inside TLS; the peer is then marked untrusted.
    public static let tlsAnon = AuthMethod(rawValue: "tls_anon")
    /// The shared secret in hex; Perl accepts it (even without TLS) but never sends it.
    public static let cleartext = AuthMethod(rawValue: "cleartext")

    /// Whether the method needs an established TLS connection (its name starts with `tls_`).
    public var requiresTLS: Bool { rawValue.hasPrefix("tls_") }

    /// The method name.
    public var description: String { rawValue }

    /// Perl's default `auth_offer`: the methods a node is willing to send.
    public static let defaultOffer: [AuthMethod] = [.tlsSHA3_512, .hmacSHA3_512]
    /// Perl's default `auth_accept`: the methods a node accepts from peers, in preference order.
    public static let defaultAccept: [AuthMethod] = [.tlsSHA3_512, .hmacSHA3_512, .tlsAnon, .cleartext]
}

/// Which side of the TLS handshake a connection takes (spec §3.5).
public enum TLSRole: Sendable, Hashable {
    /// TLS client (Perl `connect`): the side whose own nonce line sorts lower.
    case client
    /// TLS server (Perl `accept`): the side whose own nonce line sorts higher.
    case server

    /// Decides the role by comparing the two nonce lines as byte strings (not the decoded nonces).
    ///
    /// - Parameters:
    ///   - ownNonce: this side's greeting line 2.
    ///   - peerNonce: the peer's greeting line 2.
    /// - Returns: the role, or `nil` if both lines are equal (no role can be decided).
    public static func decide(ownNonce: some Sequence<UInt8>, peerNonce: some Sequence<UInt8>) -> TLSRole? {
        let own = Array(ownNonce)
        let peer = Array(peerNonce)
        if own == peer { return nil }
        return own.lexicographicallyPrecedes(peer) ? .client : .server
    }
}
