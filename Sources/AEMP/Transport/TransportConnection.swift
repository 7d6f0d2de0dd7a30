import AEMPCodecs
import AEMPHandle
import Logging
import NIOCore

/// What a ``TransportConnection`` reports to its owner (the node's connection registry).
///
/// Every method is called on the connection's event loop, one at a time. The connection keeps a
/// weak reference to its delegate.
///
/// Perl: the callbacks `AnyEvent::MP::Transport` makes into `AnyEvent::MP::Kernel` (`on_greeted`,
/// the node lookup for "already connected", `on_connect`, the `on_read` message loop, `on_error`).
protocol TransportConnectionDelegate: AnyObject {
    /// Greeting line 1 of the peer passed the protocol and version checks (spec §3.3): lets the node
    /// map a seed address to a node ID. The node ID is not authenticated yet.
    func connection(_ c: TransportConnection, greetedBy greeting: Greeting)

    /// Where the rest of the handshake (TLS included) and the connection should run, asked right
    /// after ``connection(_:greetedBy:)``: `nil` keeps it here. Given a loop, the connection moves its
    /// handle there (``AEMPHandle/Handle/move(to:)``) and hands the handshake state to `resume`,
    /// which runs on that loop and must create the connection that goes on there
    /// (``TransportConnection/init(resuming:handle:delegate:)``), or learns that the new loop could
    /// not adopt the socket (the connection is lost then). This connection ends without a further
    /// delegate call. When the handle cannot move (bytes still queued for writing), the handshake
    /// goes on here and `resume` is not called.
    func connection(_ c: TransportConnection, moveAfterGreeting greeting: Greeting)
        -> (loop: any EventLoop, resume: @Sendable (TransportConnection.Resumption, Result<Handle, any Error>) -> Void)?

    /// Whether a working connection to `node` already exists (spec §3.3 step 5; asked for `aemp`
    /// connections only). Returning `true` refuses the handshake.
    func connection(_ c: TransportConnection, isAlreadyConnected node: NodeID) -> Bool

    /// The peer's auth line verified. The handshake timeout and the 4 KiB read buffer limit are
    /// already lifted.
    ///
    /// Return `true` to enter the `aemp` data phase (the framing decoder is installed and messages
    /// follow). Return `false` to take the handle over (DataConn: `result.protocolName` is
    /// `aemp-dataconn`): the connection then does nothing more with the handle; no read is
    /// installed, bytes that arrived after the auth line stay in the handle's read buffer, and the
    /// new owner must install its own `onError`/`onEof` and keep the handle (the connection leaves
    /// callbacks that ignore everything and hold nothing). No further delegate call follows `false`.
    func connectionAuthenticated(_ c: TransportConnection, _ result: HandshakeResult) -> Bool

    /// One decoded data-phase message, in arrival order: an array whose element 0 is the
    /// destination port name, always as ``AEMPCodecs/Value/text(_:)`` (a CBOR byte string is
    /// converted: UTF-8 when it is valid UTF-8, else one character per byte as Perl would see it).
    /// The other elements are handed over exactly as decoded (CBOR byte strings stay `.bytes`).
    func connection(_ c: TransportConnection, received message: consuming [Value])

    /// The connection ended: handshake failure (``HandshakeError`` text, e.g.
    /// `authentication failure/shared secret mismatch`, `Connection timed out`,
    /// `No space left on device`), end of file (`Unexpected end-of-file`), I/O error (the system's
    /// text, e.g. `Connection reset by peer`), TLS failure, or a malformed data-phase message
    /// (`malformed cbor message: ...`). `authenticated` says whether the data phase had been
    /// reached. Called at most once, never after ``TransportConnection/close()`` and never after a
    /// DataConn hand-over.
    func connection(_ c: TransportConnection, closedWith message: String, authenticated: Bool)
}

extension TransportConnectionDelegate {
    /// By default a handshake stays on its loop.
    func connection(_ c: TransportConnection, moveAfterGreeting greeting: Greeting)
        -> (loop: any EventLoop, resume: @Sendable (TransportConnection.Resumption, Result<Handle, any Error>) -> Void)?
    {
        nil
    }
}

/// Why ``TransportConnection/send(portName:_:)`` wrote nothing.
struct TransportSendError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure.
    enum Code: Sendable, Hashable {
        /// The connection is not in the data phase (still handshaking, handed over or ended).
        case notConnected
        /// The negotiated framing cannot carry a value (JSON: NaN, infinities, tags, simple values,
        /// non-string map keys, nesting deeper than 512).
        case unencodable
    }

    /// The kind of failure.
    var code: Code
    /// A readable reason.
    var message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: the kind of failure.
    ///   - message: the reason.
    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The reason.
    var description: String { message }
}

/// One AEMP connection on a ``AEMPHandle/Handle``: runs the handshake (spec §3), optional TLS
/// (§3.5), then decodes and encodes data-phase messages (§4) in the negotiated framings.
///
/// Perl: `AnyEvent::MP::Transport` (`mp_connect`/`mp_server` and the connection object they create).
///
/// Loop-confined: create it, call its methods and read its properties on the handle's event loop
/// only (it is not `Sendable`). Delegate calls happen there too.
///
/// While it runs, the handle's callbacks keep the connection alive; it lets go of the handle when
/// it ends (``close()``, a failure, or the DataConn hand-over).
///
/// Limits: during the handshake the handle's read buffer may hold at most 4096 unconsumed bytes
/// and the read inactivity timeout is `handshakeTimeout` (Perl `monitor_timeout`). In the data phase
/// there is no timeout, one encoded message may be at most ``maximumMessageSize`` (64 MiB, both
/// framings) and the read buffer is capped at ``dataPhaseReadBufferLimit`` (65 MiB), so a hostile
/// peer cannot make the node buffer without bound.
///
/// ```swift
/// let connection = TransportConnection(
///     handle: handle, configuration: config, tls: nil, direction: .dialled(address: "127.0.0.1:4040"),
///     handshakeTimeout: .seconds(30), delegate: registry)
/// connection.start()
/// // later, in connectionAuthenticated / after it:
/// try connection.send(portName: "echo", ["hello", 1])
/// ```
final class TransportConnection {
    /// Who opened the TCP connection.
    enum Direction {
        /// This side dialled `address` (`"ip:port"`), which it sends as `peeraddr`.
        case dialled(address: String)
        /// This side accepted a connection from `peerAddress` (sent as `peeraddr` when known).
        case accepted(peerAddress: String?)

        /// The `peeraddr` value of this side's greeting.
        var peerAddress: String? {
            switch self {
            case .dialled(let address): address
            case .accepted(let peerAddress): peerAddress
            }
        }
    }

    /// The largest encoded data-phase message accepted (CBOR item / JSON text), 64 MiB.
    static let maximumMessageSize = 64 * 1024 * 1024
    /// The handle's read buffer limit in the data phase (Perl has none): one maximal message plus
    /// 1 MiB of following data. Exceeding it ends the connection with `No space left on device`.
    static let dataPhaseReadBufferLimit = maximumMessageSize + 1024 * 1024
    /// The deepest nesting of arrays and maps decoded or encoded (JSON::XS's and CBOR::XS's 512).
    static let maximumDepth = 512

    private enum Phase {
        case idle
        case handshaking
        case startingTLS
        /// Inside `connectionAuthenticated`.
        case authenticating
        case data
        case handedOver
        case ended
    }

    /// The handle this connection runs on.
    let handle: Handle
    /// The handshake settings this connection was made with.
    let configuration: HandshakeConfiguration
    /// Who opened the TCP connection.
    let direction: Direction
    /// What the handshake established; set once the peer is authenticated.
    private(set) var result: HandshakeResult?
    /// The node this connection is attached to, set by the node while attached (spares a lookup
    /// per received message). Strong, and cleared when the node lets go of the connection
    /// (`RemoteNode.lost`, `RemoteNode.shutdown`): a weak reference would give every `RemoteNode` a
    /// side table, which makes each retain and release of it on the message path several times
    /// dearer (cost model: about 120 instructions per message sent and per message received).
    var attachedNode: RemoteNode?
    /// The peer's greeting line 1 once it passed the protocol and version checks.
    private(set) var peerGreeting: Greeting?
    /// Where this connection logs: the owner's logger with the connection's metadata (`aemp.node`,
    /// `aemp.direction`, `aemp.address`, and `aemp.peer` once known), set by the owner once per
    /// connection (never per message). Logs nothing until the owner sets one. Never given secrets,
    /// auth tokens or message contents.
    var logger = TransportConnection.silentLogger

    private weak var delegate: (any TransportConnectionDelegate)?
    private let tls: TLSContext?
    private let handshakeTimeout: Duration
    private var machine: HandshakeStateMachine
    private var lineReader = HandshakeLineReader()
    private var phase = Phase.idle
    private var sendFraming = Framing.cbor
    // The properties used per message are declared `@exclusivity(unchecked)`: touched on the loop
    // only, one access at a time, they need no dynamic exclusivity checks (see HandleCore).
    @exclusivity(unchecked) private var jsonDecoder: JSONStreamDecoder?
    @exclusivity(unchecked) private var cborDecoder: CBORStreamDecoder?
    /// Read events in the data phase (the liveness check compares it, the read path only counts).
    @exclusivity(unchecked) var readEvents: UInt64 = 0
    /// Set when the peer announced a graceful shutdown: the end of the connection is then reported
    /// with this message instead of the socket's (`Unexpected end-of-file`).
    var peerShutdownMessage: String?
    /// Messages, probes and silences of this connection (bytes come from the handle).
    @exclusivity(unchecked) var traffic = Traffic()
    /// The liveness check of the data phase; nil when off (``HandshakeConfiguration/livenessTimeout``
    /// zero) or outside the data phase.
    var liveness: Liveness?

    /// Creates a connection; nothing happens until ``start()``.
    ///
    /// - Parameters:
    ///   - handle: the connected handle (TCP); the connection installs its callbacks on it.
    ///   - configuration: this node's handshake settings (also `nodelay`/`autocork`).
    ///   - tls: the TLS context to use when both sides want TLS (Perl: built from `cert`, see
    ///     ``AEMPHandle/TLSContext/aempNode(certificatePEM:)``); `nil` when none is configured.
    ///   - direction: who opened the TCP connection.
    ///   - protocolName: `aemp`, or `aemp-dataconn` when dialling a DataConn.
    ///   - dataConnID: the DataConn rendezvous ID when dialling `aemp-dataconn`.
    ///   - handshakeTimeout: the read inactivity timeout while handshaking (Perl `monitor_timeout`).
    ///   - nonce: this side's nonce line (fresh random by default).
    ///   - delegate: the owner, kept weakly.
    convenience init(
        handle: Handle, configuration: HandshakeConfiguration, tls: TLSContext?, direction: Direction,
        protocolName: String = Greeting.aemp, dataConnID: String? = nil,
        handshakeTimeout: Duration, nonce: String = HandshakeNonce.generate(),
        delegate: any TransportConnectionDelegate
    ) {
        self.init(
            handle: handle, configuration: configuration, tls: tls, direction: direction,
            handshakeTimeout: handshakeTimeout, delegate: delegate,
            machine: HandshakeStateMachine(
                configuration: configuration, protocolName: protocolName, peerAddress: direction.peerAddress,
                dataConnID: dataConnID, nonce: nonce))
    }

    /// Creates a connection that sends exactly `greeting` and `nonce` (to replay a capture in tests).
    ///
    /// - Parameters:
    ///   - handle: the connected handle.
    ///   - configuration: this node's handshake settings.
    ///   - tls: the TLS context, or `nil`.
    ///   - direction: who opened the TCP connection (the greeting's `peeraddr` is not changed).
    ///   - greeting: this side's greeting line 1.
    ///   - nonce: this side's nonce line.
    ///   - handshakeTimeout: the read inactivity timeout while handshaking.
    ///   - delegate: the owner, kept weakly.
    convenience init(
        handle: Handle, configuration: HandshakeConfiguration, tls: TLSContext?, direction: Direction,
        greeting: Greeting, nonce: String, handshakeTimeout: Duration,
        delegate: any TransportConnectionDelegate
    ) {
        self.init(
            handle: handle, configuration: configuration, tls: tls, direction: direction,
            handshakeTimeout: handshakeTimeout, delegate: delegate,
            machine: HandshakeStateMachine(configuration: configuration, greeting: greeting, nonce: nonce))
    }

    private init(
        handle: Handle, configuration: HandshakeConfiguration, tls: TLSContext?, direction: Direction,
        handshakeTimeout: Duration, delegate: any TransportConnectionDelegate, machine: HandshakeStateMachine
    ) {
        self.handle = handle
        self.configuration = configuration
        self.tls = tls
        self.direction = direction
        self.handshakeTimeout = handshakeTimeout
        self.delegate = delegate
        self.machine = machine
    }

    /// A handshake in progress, as it moves to another loop: the machine, the line reader's scan
    /// state, the directives not performed yet and the settings.
    struct Resumption: Sendable {
        let configuration: HandshakeConfiguration
        let tls: TLSContext?
        let direction: Direction
        let handshakeTimeout: Duration
        let machine: HandshakeStateMachine
        let lineReader: HandshakeLineReader
        let peerGreeting: Greeting?
        let pending: [HandshakeStateMachine.Directive]
        let logger: Logger
    }

    /// Creates the connection that goes on with a moved handshake on `handle` (already on its new
    /// loop, holding the bytes received so far); it resumes at once. Loop of `handle` only.
    convenience init(resuming state: Resumption, handle: Handle, delegate: any TransportConnectionDelegate) {
        self.init(
            handle: handle, configuration: state.configuration, tls: state.tls, direction: state.direction,
            handshakeTimeout: state.handshakeTimeout, delegate: delegate, machine: state.machine)
        lineReader = state.lineReader
        peerGreeting = state.peerGreeting
        logger = state.logger
        phase = .handshaking
        installHandshakeCallbacks()
        perform(state.pending)
        // TLS may be starting now (the peer's greeting asked for it): the reads go on meanwhile.
        guard phase == .handshaking || phase == .startingTLS else { return }
        handle.onRead { [self] _ in readable() }
    }

    /// The protocol this side speaks: `aemp`, or the upgrade the peer asked for (`aemp-dataconn`).
    var protocolName: String { machine.protocolName }

    /// The DataConn rendezvous ID this side's greeting carries (when it dialled `aemp-dataconn`).
    var dataConnID: String? { machine.localGreeting["dataconn_id"] }

    /// Whether the data phase has been reached and the connection has not ended.
    var isConnected: Bool { phase == .data }

    /// How far the handshake had come (read when it failed, see ``failureDescription(_:)``).
    var handshakeStage: HandshakeStage {
        if phase == .startingTLS || machine.isAwaitingTLS { return .tls }
        if machine.isAwaitingPeerAuth { return .awaitingPeerAuth }
        return peerGreeting == nil ? .greeting : .nonce
    }

    /// Bytes queued on the handle but not yet written (Perl: `length $handle->{wbuf}`).
    var writeBufferLength: Int { handle.writeBufferLength }

    /// Sends the greeting and starts reading. Calling it again does nothing.
    ///
    /// Sets the handle's options: `TCP_NODELAY` per ``HandshakeConfiguration/nodelay``,
    /// `SO_KEEPALIVE` on, autocork per ``HandshakeConfiguration/autocork``, the 4 KiB read buffer
    /// limit and the handshake read timeout. Delegate calls (and the end of the connection) may
    /// happen before it returns when the handle already holds data.
    func start() {
        guard phase == .idle else { return }
        phase = .handshaking
        installHandshakeCallbacks()
        if phase != .handshaking { return }
        perform(machine.start())
        if phase != .handshaking { return }
        handle.onRead { [self] _ in readable() }
    }

    /// Ends the connection without any further delegate call: destroys the handle (pending writes
    /// still go out, see ``AEMPHandle/HandleOptions/linger``). After a DataConn hand-over the handle
    /// belongs to the new owner and is left alone. Safe inside delegate calls: message delivery
    /// stops at once.
    func close() {
        switch phase {
        case .ended, .handedOver: return
        default: break
        }
        phase = .ended
        detach()
        handle.destroy()
    }

    // MARK: Sending

    /// Sends one message to the peer's port `portName`: `[portName] + elements`, encoded straight
    /// into the handle's write buffer in the negotiated send framing, without building the array.
    ///
    /// Perl: `$transport->send ([$port, @msg])`.
    ///
    /// - Parameters:
    ///   - portName: the destination port's name on the peer (`""` for the node port).
    ///   - elements: the message.
    /// - Throws: ``TransportSendError``: not in the data phase, or the framing (JSON) cannot carry a
    ///   value. Nothing is written then.
    func send(portName: String, _ elements: [Value]) throws(TransportSendError) {
        guard phase == .data || phase == .authenticating else { throw Self.notConnected }
        if sendFraming == .json {
            try write { buffer throws(TransportSendError) in
                let start = buffer.writerIndex
                do throws(JSONError) {
                    var options = JSONWriterOptions()
                    options.maxDepth = Self.maximumDepth - 1
                    buffer.writeInteger(UInt8(ascii: "["))
                    try buffer.writeJSON(.text(portName))
                    for element in elements {
                        buffer.writeInteger(UInt8(ascii: ","))
                        try buffer.writeJSON(element, options: options)
                    }
                    buffer.writeInteger(UInt8(ascii: "]"))
                } catch {
                    buffer.moveWriterIndex(to: start)
                    throw TransportSendError(.unencodable, "json framing: \(error)")
                }
            }
        } else {
            write { buffer in buffer.writeCBORMessage(portName: portName, elements) }
        }
    }

    /// Sends one message given as the whole array (element 0 is the port name).
    ///
    /// - Parameter message: the destination port name followed by the message elements.
    /// - Throws: ``TransportSendError`` as ``send(portName:_:)``.
    func send(_ message: [Value]) throws(TransportSendError) {
        guard phase == .data || phase == .authenticating else { throw Self.notConnected }
        if sendFraming == .json {
            try write { buffer throws(TransportSendError) in
                do throws(JSONError) {
                    try buffer.writeJSONMessage(message)
                } catch {
                    throw TransportSendError(.unencodable, "json framing: \(error)")
                }
            }
        } else {
            write { buffer in buffer.writeCBOR(.array(message)) }
        }
    }

    private static let notConnected = TransportSendError(.notConnected, "connection is not in the data phase")

    /// The one place where encoded messages reach the handle. `encode` appends one message straight
    /// into the handle's pending write buffer, or throws having appended nothing.
    @inline(__always)
    private func write<Failure: Error>(
        _ encode: (inout ByteBuffer) throws(Failure) -> Void
    ) throws(Failure) {
        do {
            try handle.pushWrite(encoding: { buffer in try encode(&buffer) })
            traffic.messagesSent &+= 1
        } catch {
            // Only `encode` throws, and it throws `Failure`.
            throw error as! Failure
        }
    }

    // MARK: Handshake

    private func readable() {
        switch phase {
        case .handshaking: runHandshake()
        case .data:
            readEvents &+= 1
            deliverMessages()
        default: break
        }
    }

    /// The handle's options and callbacks for the handshake (also after a move).
    private func installHandshakeCallbacks() {
        handle.setNoDelay(configuration.nodelay)
        handle.setKeepalive(true)
        handle.autocork = configuration.autocork
        handle.readBufferMax = HandshakeLineReader.maximumBufferedBytes
        handle.onError { [self] _, error in handleError(error) }
        handle.onEof { [self] _ in handleEndOfFile() }
        handle.onTimeout(.read) { [self] _ in handshakeTimedOut() }
        handle.resetTimeout(.read)
        handle.setTimeout(Self.seconds(handshakeTimeout), kind: .read)
    }

    /// Feeds complete handshake lines from the read buffer to the machine (each byte scanned once).
    private func runHandshake() {
        while phase == .handshaking {
            let line: [UInt8]?
            do {
                line = try handle.withReadBuffer { buffer in try lineReader.nextLine(from: &buffer) }
            } catch {
                finish((error as? HandshakeError)?.message ?? "\(error)")
                return
            }
            guard let line else { return }
            let directives = machine.receiveLine(line) { [self] node in
                delegate?.connection(self, isAlreadyConnected: node) ?? false
            }
            perform(directives)
        }
    }

    private func perform(_ directives: [HandshakeStateMachine.Directive]) {
        for (index, directive) in directives.enumerated() {
            guard phase == .handshaking else { return }
            switch directive {
            case .send(let text):
                handle.pushWrite(text)
            case .peerGreeted(let greeting):
                peerGreeting = greeting
                delegate?.connection(self, greetedBy: greeting)
                guard phase == .handshaking else { return }
                if let target = delegate?.connection(self, moveAfterGreeting: greeting),
                    move(to: target.loop, pending: Array(directives[(index + 1)...]), resume: target.resume)
                {
                    return
                }
            case .startTLS(let role):
                startTLS(role)
            case .authenticated(let result):
                authenticated(result)
            case .fail(let error):
                finish(error.message)
            }
        }
    }

    /// Moves the handshake to `loop` (see ``TransportConnectionDelegate/connection(_:moveAfterGreeting:)``).
    /// Returns `false` when the handle cannot move; the handshake then goes on here.
    private func move(
        to loop: any EventLoop, pending: [HandshakeStateMachine.Directive],
        resume: @escaping @Sendable (Resumption, Result<Handle, any Error>) -> Void
    ) -> Bool {
        let state = Resumption(
            configuration: configuration, tls: tls, direction: direction, handshakeTimeout: handshakeTimeout,
            machine: machine, lineReader: lineReader, peerGreeting: peerGreeting, pending: pending, logger: logger)
        detach()
        guard let moving = handle.move(to: loop) else {
            // Still here: put the handshake's callbacks back.
            handle.onTimeout(.read) { [self] _ in handshakeTimedOut() }
            handle.onRead { [self] _ in readable() }
            return false
        }
        phase = .ended
        moving.whenComplete { outcome in resume(state, outcome) }
        return true
    }

    private func startTLS(_ role: TLSRole) {
        guard let tls else {
            finish("TLS negotiated but no TLS context given")
            return
        }
        phase = .startingTLS
        logger.trace("starting TLS as \(role == .client ? "client" : "server")")
        handle.onStartTLS { [self] _, success, message in tlsFinished(success: success, message: message) }
        handle.startTLS(role == .client ? .connect : .accept, context: tls)
    }

    private func tlsFinished(success: Bool, message: String) {
        guard phase == .startingTLS else { return }
        handle.onStartTLS(nil)
        guard success else {
            finish(message.isEmpty ? "TLS handshake failed" : message)
            return
        }
        phase = .handshaking
        logger.trace("TLS established")
        perform(machine.tlsEstablished())
        // The peer's auth line (and data after it) may have arrived while TLS was finishing.
        runHandshake()
    }

    private func handshakeTimedOut() {
        switch phase {
        case .handshaking, .startingTLS:
            if let failure = machine.timedOut().first, case .fail(let error) = failure {
                finish(error.message)
            } else {
                finish(HandshakeError.timeout.message)
            }
        default: break
        }
    }

    private func authenticated(_ result: HandshakeResult) {
        self.result = result
        logger.debug(
            "authenticated: \(result.protocolName), auth \(result.sendAuth.rawValue)/\(result.receiveAuth.rawValue), framing \(result.sendFraming.rawValue)/\(result.receiveFraming.rawValue)\(result.tls ? ", TLS" : "")")
        handle.onTimeout(.read, nil)
        handle.setTimeout(0, kind: .read)
        handle.readBufferMax = Self.dataPhaseReadBufferLimit
        phase = .authenticating
        // Messages may be sent from inside the delegate call (the node flushes its queue there).
        sendFraming = result.sendFraming
        // No reads by this connection while the delegate decides (it may take the handle over).
        handle.onRead(nil)
        let enterDataPhase = delegate?.connectionAuthenticated(self, result) ?? false
        guard phase == .authenticating else { return }  // closed inside the delegate call
        guard enterDataPhase else {
            phase = .handedOver
            handle.onStartTLS(nil)
            // Callbacks that hold nothing: the handle lives as long as its new owner keeps it (no
            // handle → connection → handle cycle), and errors before the owner sets its own are
            // ignored (a fatal one still destroys the handle).
            handle.onError { _, _ in }
            handle.onEof { _ in }
            return
        }
        if result.receiveFraming == .json {
            var options = JSONStreamDecoder.Options()
            options.maxDepth = Self.maximumDepth
            options.maxTextSize = Self.maximumMessageSize
            jsonDecoder = JSONStreamDecoder(options: options)
        } else {
            cborDecoder = CBORStreamDecoder(maxDepth: Self.maximumDepth, maxItemSize: Self.maximumMessageSize)
        }
        phase = .data
        // Messages written during one loop tick leave in one write (the node's flush coalescing);
        // Perl's `autocork` option only matters for the handshake lines.
        handle.autocork = true
        handle.onRead { [self] _ in readable() }
        startLiveness()
    }

    // MARK: Data phase

    /// Decodes and delivers every complete message in the read buffer, straight from it.
    private func deliverMessages() {
        while phase == .data {
            var message: [Value]
            do {
                guard let value = try handle.withReadBuffer({ buffer in try decodeNext(&buffer) }) else { return }
                guard case .array(let elements) = consume value else {
                    finish("malformed \(receiveFramingName) message: not an array", authenticated: true)
                    return
                }
                message = elements
            } catch {
                finish("malformed \(receiveFramingName) message: \(error)", authenticated: true)
                return
            }
            switch message.first {
            case .text?:
                break
            case .bytes(let name)?:
                message[0] = .text(Self.portName(name))
            default:
                finish("malformed \(receiveFramingName) message: no port name", authenticated: true)
                return
            }
            traffic.messagesReceived &+= 1
            delegate?.connection(self, received: consume message)
        }
    }

    private func decodeNext(_ buffer: inout ByteBuffer) throws -> Value? {
        if jsonDecoder != nil {
            return try jsonDecoder!.next(from: &buffer)
        }
        return try cborDecoder!.next(from: &buffer)
    }

    /// This connection's traffic so far, bytes included.
    var trafficTotals: Traffic {
        var totals = traffic
        totals.bytesSent = handle.socketAcceptedBytes
        totals.bytesReceived = handle.socketReceivedBytes
        return totals
    }

    private var receiveFramingName: String { jsonDecoder != nil ? "json" : "cbor" }

    /// A CBOR byte-string port name as text: UTF-8 if valid, else Latin-1 (one character per byte,
    /// the string Perl's byte string would compare equal to).
    static func portName(_ bytes: ByteBuffer) -> String {
        if let text = bytes.withUnsafeReadableBytes({ validatedUTF8String($0) }) { return text }
        return String(String.UnicodeScalarView(bytes.readableBytesView.map { Unicode.Scalar($0) }))
    }

    // MARK: The end

    private func handleError(_ error: HandleError) {
        switch phase {
        case .ended, .handedOver, .idle: return
        case .data, .authenticating: finish(error.message, authenticated: true)
        case .handshaking, .startingTLS: finish(error.message)
        }
    }

    private func handleEndOfFile() {
        handleError(HandleError(.none, message: "Unexpected end-of-file", fatal: true))
    }

    func finish(_ message: String, authenticated: Bool = false) {
        switch phase {
        case .ended, .handedOver: return
        default: break
        }
        phase = .ended
        detach()
        handle.destroy()
        delegate?.connection(self, closedWith: message, authenticated: authenticated)
    }

    /// Drops this connection's callbacks from the handle (breaking the handle → connection cycle).
    private func detach() {
        stopLiveness()
        handle.onRead(nil)
        handle.onStartTLS(nil)
        handle.onTimeout(.read, nil)
        // onError/onEof stay: a fatal error without onError would trap; destroy() clears them.
        jsonDecoder = nil
        cborDecoder = nil
    }

    private static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return max(0, Double(parts.seconds) + Double(parts.attoseconds) / 1e18)
    }
}
