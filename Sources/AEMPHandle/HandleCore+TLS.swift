import NIOCore
import NIOSSL
import NIOTLS

/// The TLS settings of a handle (Perl: `tls`, `tls_ctx`, `on_starttls`, `on_stoptls`).
struct TLSSettings {
    /// Start TLS when the channel is attached.
    var mode: TLSMode?
    var context: TLSContext?
    var onStartTLS: ((Handle, Bool, String) -> Void)?
    var onStopTLS: ((Handle) -> Void)?

    init(_ options: HandleOptions) {
        mode = options.tls
        context = options.tlsContext
        onStartTLS = options.onStartTLS
        onStopTLS = options.onStopTLS
    }
}

/// One TLS session: the handler in front of the handle's core and where it stands.
final class TLSSession {
    enum Phase {
        case handshaking
        case active
        /// Close notify sent (or answered); waiting for the handler to leave the pipeline.
        case unwrapping
    }

    let handler: NIOSSLHandler
    let mode: TLSMode
    var phase: Phase = .handshaking
    /// The transport ended without a close notify: the next end of input is a plain end of file.
    var uncleanEnd = false

    init(handler: NIOSSLHandler, mode: TLSMode) {
        self.handler = handler
        self.mode = mode
    }
}

extension HandleCore {
    /// Perl `starttls`: puts a TLS handler in front of the core. Bytes already read (the read buffer
    /// and any read-ahead) are the start of the TLS stream, as in Perl; the handshake starts at once.
    func startTLS(_ mode: TLSMode, context: TLSContext?) {
        guard !destroyed else { return }
        if let context { tlsSettings.context = context }
        guard let channel else {
            // The `connect:` form: TLS starts when the channel is attached.
            tlsSettings.mode = mode
            return
        }
        guard tls == nil else {
            reportError(
                HandleError(.protocolError, message: "starttls called while TLS is already active", fatal: false))
            return
        }
        guard let tlsContext = tlsSettings.context ?? TLSContext.default else {
            reportError(HandleError(.protocolError, message: "TLS support not available on this system", fatal: true))
            return
        }
        let handler: NIOSSLHandler
        do {
            switch mode {
            case .connect:
                handler = try NIOSSLClientHandler(
                    context: tlsContext.clientContext, serverHostname: Self.serverNameIndication(peername))
            case .accept:
                handler = NIOSSLServerHandler(context: tlsContext.serverContext)
            }
        } catch {
            reportError(HandleError(.protocolError, message: Self.tlsMessage(error), fatal: true))
            return
        }
        let session = TLSSession(handler: handler, mode: mode)
        tls = session
        do {
            try channel.pipeline.syncOperations.addHandler(handler, position: .before(self))
        } catch {
            tls = nil
            reportError(Self.mapError(error))
            return
        }
        if destroyed || tls !== session { return }

        // Perl feeds the read buffer into the TLS engine: it holds the peer's first TLS bytes.
        var pending = readBuffer
        readBuffer = allocator.buffer(capacity: 0)
        if pending.readableBytes > 0 { readEpoch &+= 1 }
        if var more = stash {
            stash = nil
            pending.writeBuffer(&more)
        }
        if pending.readableBytes > 0 {
            channel.pipeline.syncOperations.fireChannelRead(NIOAny(pending))
            channel.pipeline.syncOperations.fireChannelReadComplete()
            if destroyed || tls !== session { return }
        }
        // The handshake needs reads; after the first one the TLS handler asks for more itself.
        startRead()
        if !channelClosed, stash == nil, stashEnd == nil { channel.read() }
    }

    /// Perl `stoptls`: sends a close notify. Once the peer answers with its own, the connection is
    /// plain again and `onStopTLS` runs. Writes made meanwhile go out in plain text afterwards.
    func stopTLS() {
        guard !destroyed, let session = tls, session.phase != .unwrapping, let channel else { return }
        unwrapTLS(session)
        if !destroyed, !channelClosed { channel.read() }
    }

    private func unwrapTLS(_ session: TLSSession) {
        session.phase = .unwrapping
        writesHeld = true
        let promise = eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { result in
            self.tlsUnwrapped(session, result)
        }
        session.handler.stopTLS(promise: promise)
    }

    private func tlsUnwrapped(_ session: TLSSession, _ result: Result<Void, any Error>) {
        guard tls === session else { return }
        tls = nil
        writesHeld = false
        guard !destroyed else { return }
        switch result {
        case .success:
            if inflight == 0, !flushScheduled { flushCorked() }
            if destroyed { return }
            // The TLS handler asked for the reads so far; plain text needs its own.
            scheduleNextRead()
            if let onStopTLS = tlsSettings.onStopTLS {
                if let handle = facade { onStopTLS(handle) }
            } else {
                // Perl: without on_stoptls a TLS shutdown is an end of file.
                receiveEOF()
            }
        case .failure(let error):
            if channelClosed { return }
            reportError(HandleError(.protocolError, message: Self.tlsMessage(error), fatal: true))
        }
    }

    /// The end of TLS input. Returns `true` when it was the peer's close notify and was handled
    /// (TLS is being unwrapped); `false` for a plain end of file.
    func tlsInputClosed() -> Bool {
        guard let session = tls, !session.uncleanEnd, session.phase == .active,
            tlsSettings.onStopTLS != nil
        else { return false }
        // The peer stopped TLS: answer its close notify and continue in plain text.
        unwrapTLS(session)
        return true
    }

    /// Handshake completion (Perl: `on_starttls ($handle, 1, ...)`).
    func tlsEvent(_ event: TLSUserEvent) {
        guard case .handshakeCompleted = event, let session = tls, session.phase == .handshaking else { return }
        session.phase = .active
        if let onStartTLS = tlsSettings.onStartTLS, let handle = facade {
            onStartTLS(handle, true, "TLS/SSL connection established")
        }
    }

    /// Errors of the TLS layer: a failed handshake goes to `onStartTLS` when set, everything else is
    /// a fatal `EPROTO` (Perl `_tls_error`). A missing close notify is an ordinary end of file.
    func tlsError(_ error: any Error) {
        guard !destroyed else { return }
        if let ssl = error as? NIOSSLError, case .uncleanShutdown = ssl {
            tls?.uncleanEnd = true
            return
        }
        if !Self.isTLSError(error) {
            // Transport errors keep their errno.
            receiveError(Self.mapError(error))
            return
        }
        let message = Self.tlsMessage(error, duringHandshake: tls?.phase == .handshaking)
        if let session = tls, session.phase == .handshaking, let onStartTLS = tlsSettings.onStartTLS {
            // Perl: handshake failures go to on_starttls instead of on_error. The TLS handler closes
            // the connection, which the handle then sees as an end of file.
            tls = nil
            if let handle = facade { onStartTLS(handle, false, message) }
            return
        }
        reportError(HandleError(.protocolError, message: message, fatal: true))
    }

    static func isTLSError(_ error: any Error) -> Bool {
        error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError
            || error is NIOTLSUnwrappingError || error is NIOSSLCloseTimedOutError
    }

    /// The message of a TLS error: short, and the same on every machine (see ``TLSErrorText``).
    static func tlsMessage(_ error: any Error, duringHandshake: Bool = false) -> String {
        TLSErrorText.message(for: error, duringHandshake: duringHandshake)
    }

    /// The name sent in the client hello: the peer name unless it is an IP address (an empty or
    /// address peer name is checked against the peer's address instead).
    static func serverNameIndication(_ peername: String?) -> String? {
        guard let name = peername, !name.isEmpty else { return nil }
        if (try? SocketAddress(ipAddress: name, port: 0)) != nil { return nil }
        return name
    }

    /// Whether TLS is in use (handshaking, established or being shut down).
    var tlsActive: Bool { tls != nil }
}
