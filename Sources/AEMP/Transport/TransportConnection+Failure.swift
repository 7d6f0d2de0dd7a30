import Logging

extension TransportConnection {
    /// The logger of a connection until its owner sets one: it drops everything.
    static let silentLogger = Logger(label: "aemp.connection", factory: { _ in SwiftLogNoOpLogHandler() })

    /// How far a handshake had come.
    enum HandshakeStage: Sendable, Hashable {
        /// Waiting for the peer's greeting line 1.
        case greeting
        /// The peer's line 1 arrived; waiting for its nonce line.
        case nonce
        /// TLS is being negotiated.
        case tls
        /// This side sent its auth line and waits for the peer's: the peer could verify this side.
        case awaitingPeerAuth
    }

    /// What went wrong with an unauthenticated connection, for logs and for the `connect timeout`
    /// reason of a failed connect attempt: the transport's `message`, except that the peer closing
    /// the connection (`Unexpected end-of-file`) says during which step, with the likely cause once
    /// the peer had this side's auth line (it refused the token: a different secret).
    ///
    /// - Parameter message: the text the connection ended with (``TransportConnectionDelegate``).
    /// - Returns: e.g. `peer closed the connection during the handshake: wrong secret?`.
    func failureDescription(_ message: String) -> String {
        guard message == KillReason.unexpectedEndOfFile else { return message }
        switch handshakeStage {
        case .greeting: return "peer closed the connection before its greeting"
        case .nonce: return "peer closed the connection during the handshake"
        case .tls: return "peer closed the connection during the TLS handshake: certificate not accepted?"
        case .awaitingPeerAuth: return "peer closed the connection during the handshake: wrong secret?"
        }
    }
}
