/// Why a handshake failed (spec §3.3, §3.4).
///
/// Perl: the transport's error strings, which Perl only logs. ``message`` reproduces Perl's text
/// exactly where Perl has one (e.g. `I refuse to talk to myself`); ``code`` is what code should
/// switch on. Equality compares the code only, so new details never break comparisons.
public struct HandshakeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. New codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case unparsableGreeting, versionMismatch, selfConnection, alreadyConnected, echoAttack
            case noCommonAuth, noCommonFraming, unsupportedSendAuth, unsupportedReceiveAuth
            case noSecretOrTLS, authenticationFailure, unusableRemoteFraming, identicalNonces
            case lineTooLong, timeout, unexpectedInput
        }
        private let value: Value

        /// The peer's greeting line 1 could not be understood (wrong protocol, missing fields,
        /// invalid node ID or not UTF-8).
        public static let unparsableGreeting = Code(value: .unparsableGreeting)
        /// The peer speaks another protocol version.
        public static let versionMismatch = Code(value: .versionMismatch)
        /// The peer claims our own node ID.
        public static let selfConnection = Code(value: .selfConnection)
        /// A working connection to the peer's node already exists.
        public static let alreadyConnected = Code(value: .alreadyConnected)
        /// The peer sent our own greeting back.
        public static let echoAttack = Code(value: .echoAttack)
        /// No auth method of the peer's list is one we may send.
        public static let noCommonAuth = Code(value: .noCommonAuth)
        /// No framing of the peer's list is one we speak.
        public static let noCommonFraming = Code(value: .noCommonFraming)
        /// The auth method selected for sending cannot be used in this situation.
        public static let unsupportedSendAuth = Code(value: .unsupportedSendAuth)
        /// The peer authenticated with a method we do not accept.
        public static let unsupportedReceiveAuth = Code(value: .unsupportedReceiveAuth)
        /// Neither TLS nor a shared secret is available, so no token can be sent.
        public static let noSecretOrTLS = Code(value: .noSecretOrTLS)
        /// The peer's token is wrong (wrong secret, tampering).
        public static let authenticationFailure = Code(value: .authenticationFailure)
        /// The peer announced a framing we cannot decode.
        public static let unusableRemoteFraming = Code(value: .unusableRemoteFraming)
        /// Both nonce lines are equal (the protocol requires them to differ; no TLS role could be chosen).
        public static let identicalNonces = Code(value: .identicalNonces)
        /// A handshake line, or the unconsumed handshake input, exceeds 4096 bytes (Perl `rbuf_max`).
        public static let lineTooLong = Code(value: .lineTooLong)
        /// The handshake did not complete within `monitor_timeout`.
        public static let timeout = Code(value: .timeout)
        /// Input arrived in a state that does not expect any (e.g. after a failure).
        public static let unexpectedInput = Code(value: .unexpectedInput)

        /// The code's name.
        public var description: String { value.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// The human-readable reason, matching Perl's log text where Perl has one.
    public var message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: the kind of failure.
    ///   - message: the reason text.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Compares the codes only.
    public static func == (lhs: HandshakeError, rhs: HandshakeError) -> Bool { lhs.code == rhs.code }

    /// Hashes the code only, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// The reason text.
    public var description: String { message }

    // MARK: Perl's messages

    static func unparsableGreeting(expected: String, got: String) -> HandshakeError {
        HandshakeError(.unparsableGreeting, "unparsable greeting, expected '\(expected)', got '\(got)'")
    }

    static func versionMismatch(theirs: String) -> HandshakeError {
        HandshakeError(.versionMismatch, "version mismatch (we: \(Greeting.currentVersion), they: \(theirs))")
    }

    static let selfConnection = HandshakeError(.selfConnection, "I refuse to talk to myself")

    static func alreadyConnected(_ node: NodeID) -> HandshakeError {
        HandshakeError(.alreadyConnected, "\(node) already connected, not connecting again.")
    }

    static let echoAttack = HandshakeError(.echoAttack, "authentication error, echo attack?")

    static func noCommonAuth(peerList: String) -> HandshakeError {
        HandshakeError(.noCommonAuth, "\(peerList): no common auth type supported")
    }

    static func noCommonFraming(peerList: String) -> HandshakeError {
        HandshakeError(.noCommonFraming, "\(peerList): no common framing method supported")
    }

    static func unsupportedSendAuth(_ method: AuthMethod) -> HandshakeError {
        HandshakeError(.unsupportedSendAuth, "\(method): fatal, selected unsupported snd auth method")
    }

    static func unsupportedReceiveAuth(_ method: String) -> HandshakeError {
        HandshakeError(.unsupportedReceiveAuth, "\(method): fatal, selected unsupported rcv auth method")
    }

    static let noSecretOrTLS = HandshakeError(
        .noSecretOrTLS, "unable to handshake TLS and no shared secret configured")

    static let authenticationFailure = HandshakeError(
        .authenticationFailure, "authentication failure/shared secret mismatch")

    static func unusableRemoteFraming(_ framing: String) -> HandshakeError {
        HandshakeError(.unusableRemoteFraming, "\(framing): unusable remote framing")
    }

    static let identicalNonces = HandshakeError(
        .identicalNonces, "authentication error, identical nonces")

    /// Perl reports an overflowing `rbuf_max` with the ENOSPC text.
    static let lineTooLong = HandshakeError(.lineTooLong, "No space left on device")

    /// Perl reports the handshake read timeout with the ETIMEDOUT text.
    static let timeout = HandshakeError(.timeout, "Connection timed out")
}
