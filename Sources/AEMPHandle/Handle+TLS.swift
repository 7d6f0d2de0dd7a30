import NIOCore

extension Handle {
    /// Starts TLS on the connection. Perl: `starttls ($tls[, $tls_ctx])`.
    ///
    /// Bytes already in the read buffer are taken as the first bytes of the TLS stream (as in
    /// Perl), and the handshake starts at once; `onStartTLS` reports how it ended. Writes queued
    /// afterwards are encrypted. Calling this while TLS is active reports a non-fatal `EPROTO`.
    /// Failures (bad certificate, peer name mismatch, protocol errors) are fatal `EPROTO` errors,
    /// or, while `onStartTLS` is set, a call of it with `false` and the message.
    /// - Parameters:
    ///   - mode: ``TLSMode/accept`` (server) or ``TLSMode/connect`` (client).
    ///   - context: certificates and verification settings; `nil` keeps the handle's
    ///     ``HandleOptions/tlsContext`` (or ``TLSContext/default``).
    public func startTLS(_ mode: TLSMode, context: TLSContext? = nil) {
        perform { $0.startTLS(mode, context: context) }
    }

    /// Shuts TLS down with a close notify. Perl: `stoptls`.
    ///
    /// When the peer answers with its own close notify, the connection is plain again and
    /// `onStopTLS` runs (without it, this counts as end of file). Writes queued meanwhile are sent
    /// in plain text after that.
    public func stopTLS() {
        perform { $0.stopTLS() }
    }

    /// Whether TLS is in use: handshaking, established or shutting down (Perl: `$handle->{tls}`).
    /// Loop only.
    public var isTLS: Bool { core.tlsActive }

    /// Replaces the handshake callback (Perl: `on_starttls`). Loop only.
    public func onStartTLS(_ callback: ((Handle, Bool, String) -> Void)?) {
        core.tlsSettings.onStartTLS = callback
    }

    /// Replaces the TLS shutdown callback (Perl: `on_stoptls`). Loop only.
    public func onStopTLS(_ callback: ((Handle) -> Void)?) {
        core.tlsSettings.onStopTLS = callback
    }

    /// Queues a read that starts TLS when the peer's first bytes are a TLS handshake, and otherwise
    /// completes without consuming anything, so the following reads see the plain text.
    /// Perl: `push_read (tls_autostart => $tls[, $tls_ctx])`. Loop only.
    /// - Parameters:
    ///   - mode: the side to play; Perl servers use `"accept"`.
    ///   - context: as for ``startTLS(_:context:)``.
    public func pushTLSAutostart(_ mode: TLSMode = .accept, context: TLSContext? = nil) {
        pushRead(TLSDetectReader()) { handle, detection in
            if detection.isTLS { handle.core.startTLS(mode, context: context) }
        }
    }

    /// Like ``pushTLSAutostart(_:context:)``, but at the front of the read queue.
    /// Perl: `unshift_read (tls_autostart => ...)`. Loop only.
    public func unshiftTLSAutostart(_ mode: TLSMode = .accept, context: TLSContext? = nil) {
        unshiftRead(TLSDetectReader()) { handle, detection in
            if detection.isTLS { handle.core.startTLS(mode, context: context) }
        }
    }
}
