import NIOCore

/// The AEMP handshake of one connection as a value type: fed lines and events, it returns directives
/// for the transport to carry out (spec §3). It performs no I/O.
///
/// Perl: the handshake part of `AnyEvent::MP::Transport` (`mp_connect`/`mp_server`). The handshake
/// is symmetric; both the dialling and the accepting side use the same machine:
///
/// 1. ``start()`` → `.send(l1 LF l2 LF)` (both greeting lines, sent at once).
/// 2. Peer line 1 → the checks of spec §3.3 in Perl's order: protocol and version (`.fail`), then
///    `.peerGreeted(greeting)`, then self and already connected (`.fail`).
/// 3. Peer line 2 → echo check, TLS decision, auth and framing choice → `.send(auth line)`, or
///    `.startTLS(role)` followed by ``tlsEstablished()`` → `.send(auth line)`.
/// 4. Peer auth line → `.authenticated(result)` or `.fail`.
///
/// ```swift
/// var machine = HandshakeStateMachine(configuration: config, peerAddress: "127.0.0.1:4040")
/// send(machine.start())
/// let directives = machine.receive(&buffer, isAlreadyConnected: { kernel.isConnected($0) })
/// ```
public struct HandshakeStateMachine: Sendable {
    /// What the transport must do next.
    public enum Directive: Sendable, Hashable {
        /// Write these bytes (complete lines, LF-terminated).
        case send(String)
        /// The peer's greeting line 1 passed the protocol and version checks; its node ID is still
        /// unauthenticated (Perl uses it already, e.g. to map a seed address to a node ID). It comes
        /// before the self and already-connected checks, so `.fail(selfConnection)` may follow it:
        /// that is how a node learns that one of its seeds is itself.
        case peerGreeted(Greeting)
        /// Start TLS in this role now; call ``HandshakeStateMachine/tlsEstablished()`` when it is up.
        /// Unconsumed input belongs to TLS.
        case startTLS(TLSRole)
        /// The peer is authenticated; unconsumed input belongs to the data phase.
        case authenticated(HandshakeResult)
        /// The handshake failed; close the connection and log the reason.
        case fail(HandshakeError)
    }

    private enum State: Sendable {
        case idle
        case awaitingGreeting
        case awaitingNonce(peer: Greeting, line: [UInt8])
        case awaitingTLS(Pending)
        case awaitingAuth(Pending)
        case authenticated
        case failed
    }

    private struct Pending: Sendable {
        var peer: Greeting
        var transcript: HandshakeTranscript
        var sendAuth: AuthMethod
        var sendFraming: Framing
        var tls: Bool
    }

    /// This side's settings.
    public let configuration: HandshakeConfiguration
    /// This side's greeting line 1.
    public let localGreeting: Greeting
    /// This side's greeting line 1 exactly as sent.
    public let localGreetingLine: String
    /// This side's nonce line.
    public let localNonce: String
    /// The protocol this side speaks; a plain `aemp` endpoint switches when the peer asks for an
    /// accepted upgrade (spec §3.3 step 2). Its own, already sent line 1 keeps saying `aemp`.
    public private(set) var protocolName: String

    private var state: State = .idle
    private var reader = HandshakeLineReader()

    /// Creates a machine for one connection.
    ///
    /// - Parameters:
    ///   - configuration: this node's handshake settings.
    ///   - protocolName: `aemp`, or `aemp-dataconn` when dialling a DataConn.
    ///   - peerAddress: the peer's address as seen here (the dialled address when dialling).
    ///   - dataConnID: the DataConn rendezvous ID when dialling `aemp-dataconn`.
    ///   - nonce: this side's nonce line (fresh random by default).
    public init(
        configuration: HandshakeConfiguration,
        protocolName: String = Greeting.aemp,
        peerAddress: String?,
        dataConnID: String? = nil,
        nonce: String = HandshakeNonce.generate()
    ) {
        self.init(
            configuration: configuration,
            greeting: .local(
                protocolName: protocolName, nodeID: configuration.nodeID, authAccept: configuration.authAccept,
                framings: configuration.framings, peerAddress: peerAddress, tls: configuration.tlsAvailable,
                dataConnID: dataConnID),
            nonce: nonce)
    }

    /// Creates a machine that sends exactly `greeting` and `nonce` (e.g. to replay a capture).
    ///
    /// - Parameters:
    ///   - configuration: this node's handshake settings.
    ///   - greeting: this side's greeting line 1.
    ///   - nonce: this side's nonce line.
    public init(configuration: HandshakeConfiguration, greeting: Greeting, nonce: String) {
        self.configuration = configuration
        self.localGreeting = greeting
        self.localGreetingLine = greeting.line
        self.localNonce = nonce
        self.protocolName = greeting.protocolName
    }

    /// Whether the handshake has ended (authenticated or failed).
    public var isFinished: Bool {
        switch state {
        case .authenticated, .failed: true
        default: false
        }
    }

    /// Whether this side has sent its auth line and waits for the peer's: the peer has everything it
    /// needs to verify this side (a peer that closes now most likely refused this side's token).
    public var isAwaitingPeerAuth: Bool {
        if case .awaitingAuth = state { true } else { false }
    }

    /// Whether TLS is being negotiated (after ``Directive/startTLS(_:)``, before
    /// ``tlsEstablished()``).
    public var isAwaitingTLS: Bool {
        if case .awaitingTLS = state { true } else { false }
    }

    /// Begins the handshake: this side sends its greeting immediately, without waiting for the peer.
    ///
    /// - Returns: `.send` with both greeting lines (empty if already started).
    public mutating func start() -> [Directive] {
        guard case .idle = state else { return [] }
        state = .awaitingGreeting
        return [.send(localGreetingLine + "\n" + localNonce + "\n")]
    }

    /// Consumes complete handshake lines from `buffer` and handles them.
    ///
    /// Stops at `.startTLS`, `.authenticated` and `.fail`; the bytes after that stay in `buffer`.
    /// While handshaking, more than 4096 unconsumed bytes fail the handshake (spec §3.3).
    ///
    /// - Parameters:
    ///   - buffer: received bytes.
    ///   - isAlreadyConnected: whether a working connection to a node ID exists (spec §3.3 step 5).
    /// - Returns: the directives, in order.
    public mutating func receive(
        _ buffer: inout ByteBuffer, isAlreadyConnected: (NodeID) -> Bool = { _ in false }
    ) -> [Directive] {
        var directives = start()
        while true {
            switch state {
            case .idle, .awaitingGreeting, .awaitingNonce, .awaitingAuth: break
            case .awaitingTLS, .authenticated, .failed: return directives
            }
            do {
                guard let line = try reader.nextLine(from: &buffer) else { return directives }
                directives += receiveLine(line, isAlreadyConnected: isAlreadyConnected)
            } catch {
                state = .failed
                return directives + [.fail(error)]
            }
        }
    }

    /// Handles one received line (without its line ending).
    ///
    /// - Parameters:
    ///   - line: the line's bytes.
    ///   - isAlreadyConnected: whether a working connection to a node ID exists (spec §3.3 step 5).
    /// - Returns: the directives, in order.
    public mutating func receiveLine(
        _ line: [UInt8], isAlreadyConnected: (NodeID) -> Bool = { _ in false }
    ) -> [Directive] {
        var directives = start()
        switch state {
        case .idle, .awaitingGreeting:
            directives += receiveGreeting(line, isAlreadyConnected: isAlreadyConnected)
        case .awaitingNonce(let peer, let peerLine):
            directives += receiveNonce(line, peer: peer, peerLine: peerLine)
        case .awaitingAuth(let pending):
            directives += receiveAuth(line, pending: pending)
        case .awaitingTLS:
            directives += fail(HandshakeError(.unexpectedInput, "handshake line received while TLS is starting"))
        case .authenticated, .failed:
            directives += []
        }
        return directives
    }

    /// Reports that TLS is up (after `.startTLS`).
    ///
    /// - Returns: `.send` with this side's auth line.
    public mutating func tlsEstablished() -> [Directive] {
        guard case .awaitingTLS(let pending) = state else { return [] }
        return sendAuthLine(pending)
    }

    /// Reports that the handshake read timeout (`monitor_timeout`) expired.
    ///
    /// - Returns: `.fail` with `Connection timed out`, or nothing if the handshake already ended.
    public mutating func timedOut() -> [Directive] {
        isFinished ? [] : fail(.timeout)
    }

    // MARK: - Steps

    private mutating func receiveGreeting(_ line: [UInt8], isAlreadyConnected: (NodeID) -> Bool) -> [Directive] {
        let (peerProtocol, peerVersion) = Greeting.protocolAndVersion(of: line)
        if protocolName == Greeting.aemp, peerProtocol != Greeting.aemp, Self.isUpgrade(peerProtocol),
            configuration.protocolUpgrades.contains(peerProtocol)
        {
            protocolName = peerProtocol
        }
        guard peerProtocol == protocolName || peerProtocol == Greeting.aemp else {
            return fail(.unparsableGreeting(expected: protocolName, got: peerProtocol))
        }
        guard PerlNumber.parse(peerVersion) == Double(Greeting.currentVersion) else {
            return fail(.versionMismatch(theirs: peerVersion))
        }
        let peer: Greeting
        do {
            peer = try Greeting(parsing: line)
        } catch {
            return fail(error)
        }
        // Perl runs its "greeted" hooks here, before the node checks: a node whose seed list contains
        // itself learns it from the refused self-connection (spec §6.1, capture conn 1).
        let greeted = Directive.peerGreeted(peer)
        if protocolName == Greeting.aemp {
            if peer.nodeID == configuration.nodeID { return [greeted] + fail(.selfConnection) }
            if isAlreadyConnected(peer.nodeID) { return [greeted] + fail(.alreadyConnected(peer.nodeID)) }
        }
        state = .awaitingNonce(peer: peer, line: line)
        return [greeted]
    }

    private mutating func receiveNonce(_ line: [UInt8], peer: Greeting, peerLine: [UInt8]) -> [Directive] {
        let transcript = HandshakeTranscript(
            ownGreeting: Array(localGreetingLine.utf8), ownNonce: Array(localNonce.utf8),
            peerGreeting: peerLine, peerNonce: line)
        if transcript.peerGreeting == transcript.ownGreeting && transcript.peerNonce == transcript.ownNonce {
            return fail(.echoAttack)
        }
        // Perl's code only rejects a full echo; its protocol description requires refusing equal
        // nonces, which would also leave the TLS role undecided.
        if transcript.peerNonce == transcript.ownNonce { return fail(.identicalNonces) }
        let tls = configuration.tlsAvailable && peer.wantsTLS
        let peerAuthList = peer.authMethods.map(\.rawValue).joined(separator: ",")
        guard
            let sendAuth = peer.authMethods.first(where: {
                configuration.authOffer.contains($0) && (tls || !$0.requiresTLS)
            })
        else { return fail(.noCommonAuth(peerList: peerAuthList)) }
        guard
            let sendFraming = peer.framings.first(where: { $0.isSupported && configuration.framings.contains($0) })
        else {
            return fail(.noCommonFraming(peerList: peer.framings.map(\.rawValue).joined(separator: ",")))
        }
        let pending = Pending(
            peer: peer, transcript: transcript, sendAuth: sendAuth, sendFraming: sendFraming, tls: tls)
        if tls {
            guard sendAuth == .tlsSHA3_512 || sendAuth == .tlsAnon else { return fail(.unsupportedSendAuth(sendAuth)) }
            guard let role = TLSRole.decide(ownNonce: transcript.ownNonce, peerNonce: transcript.peerNonce) else {
                return fail(.identicalNonces)
            }
            state = .awaitingTLS(pending)
            return [.startTLS(role)]
        }
        guard configuration.hasSecret else { return fail(.noSecretOrTLS) }
        guard sendAuth == .hmacSHA3_512 else { return fail(.unsupportedSendAuth(sendAuth)) }
        return sendAuthLine(pending)
    }

    private mutating func sendAuthLine(_ pending: Pending) -> [Directive] {
        guard
            let token = HandshakeAuth.token(
                for: pending.sendAuth, secret: configuration.secret, tlsEstablished: pending.tls,
                transcript: pending.transcript)
        else { return fail(.unsupportedSendAuth(pending.sendAuth)) }
        state = .awaitingAuth(pending)
        return [.send("\(pending.sendAuth.rawValue);\(token);\(pending.sendFraming.rawValue)\n")]
    }

    private mutating func receiveAuth(_ line: [UInt8], pending: Pending) -> [Directive] {
        let fields = line.split(separator: UInt8(ascii: ";"), maxSplits: 3, omittingEmptySubsequences: false)
        let methodText = String(decoding: fields[0], as: UTF8.self)
        let token = fields.count > 1 ? fields[1] : []
        let framingText = fields.count > 2 ? String(decoding: fields[2], as: UTF8.self) : ""
        let method = AuthMethod(rawValue: methodText)
        let known: [AuthMethod] = [.hmacSHA3_512, .tlsSHA3_512, .tlsAnon, .cleartext]
        guard known.contains(method), configuration.authAccept.contains(method) else {
            return fail(.unsupportedReceiveAuth(methodText))
        }
        guard
            HandshakeAuth.verify(
                token: token, method: method, secret: configuration.secret, tlsEstablished: pending.tls,
                transcript: pending.transcript)
        else { return fail(.authenticationFailure) }
        let receiveFraming = Framing(rawValue: framingText)
        guard receiveFraming.isSupported else { return fail(.unusableRemoteFraming(framingText)) }
        state = .authenticated
        return [
            .authenticated(
                HandshakeResult(
                    peerNodeID: pending.peer.nodeID, peerGreeting: pending.peer, protocolName: protocolName,
                    sendFraming: pending.sendFraming, receiveFraming: receiveFraming, sendAuth: pending.sendAuth,
                    receiveAuth: method, tls: pending.tls, trusted: method != .tlsAnon))
        ]
    }

    private mutating func fail(_ error: HandshakeError) -> [Directive] {
        state = .failed
        return [.fail(error)]
    }

    /// `^aemp-\w+$` with Perl's ASCII word characters.
    static func isUpgrade(_ name: String) -> Bool {
        guard name.hasPrefix("aemp-") else { return false }
        let word = name.utf8.dropFirst(5)
        return !word.isEmpty
            && word.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
            }
    }
}
