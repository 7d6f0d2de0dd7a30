import AEMPCodecs
import Synchronization

/// Something this node saw happen that no other API reports as an event: a port dying under one of
/// this node's monitors, or a connection that failed before it was authenticated. The feed of
/// ``Node/observations(limit:)``; a dashboard's event log is made of these and ``NodeEvent``s.
public enum NodeObservation: Sendable, Hashable {
    /// A port this node monitored died: a local port with local monitors, or a remote port whose
    /// `kil0` arrived or whose node was lost (`transport_error`). Once per death, however many
    /// monitors fired.
    case portDied(PortID, KillReason)
    /// A handshake failed before the peer was authenticated (not reported: this node reaching
    /// itself through its own seed address).
    case handshakeFailed(HandshakeFailure)
}

/// A connection that ended before its handshake authenticated the peer (wrong secret, no common
/// authentication method, TLS, protocol errors, timeouts, or the peer closing it).
public struct HandshakeFailure: Sendable, Hashable {
    /// The node ID the peer's greeting announced, when a greeting arrived.
    public var peer: NodeID?
    /// The peer's address: the address dialled, or where an incoming connection came from.
    public var address: String?
    /// Who opened the connection.
    public var direction: PeerInfo.Direction
    /// The bounded category of ``NodeStatistics/handshakeFailures`` (`auth`, `tls`, `timeout`,
    /// `protocol`, `refused`, `closed`, `duplicate`, `other`). `duplicate` is routine: a second
    /// connection to a node already connected, or a node dialling itself as its own seed.
    public var category: String
    /// Why it failed, as the node logs it. It never contains the configured secret (replaced by
    /// `<secret>` should a peer echo it).
    public var reason: String

    /// Creates a failure record.
    ///
    /// - Parameters:
    ///   - peer: the greeted node ID.
    ///   - address: the peer's address.
    ///   - direction: who opened the connection.
    ///   - category: the failure's category.
    ///   - reason: the failure text.
    public init(peer: NodeID?, address: String?, direction: PeerInfo.Direction, category: String, reason: String) {
        self.peer = peer
        self.address = address
        self.direction = direction
        self.category = category
        self.reason = reason
    }
}

/// What a node says about itself when asked with ``Node/nodeSummaryExpression``.
public struct NodeSummary: Sendable, Hashable {
    /// When it started, seconds since 1970 (a Perl node: the process start, `$^T`).
    public var startedAt: Int64
    /// Its ports alive.
    public var ports: Int
    /// Bytes written to its connections that the sockets have not taken yet, all peers together;
    /// `nil` when it could not tell.
    public var queuedBytes: Int?

    /// Creates a summary.
    ///
    /// - Parameters:
    ///   - startedAt: the start time, seconds since 1970.
    ///   - ports: the ports alive.
    ///   - queuedBytes: the bytes queued towards peers.
    public init(startedAt: Int64, ports: Int, queuedBytes: Int?) {
        self.startedAt = startedAt
        self.ports = ports
        self.queuedBytes = queuedBytes
    }

    /// Decodes the values an `eval` of ``Node/nodeSummaryExpression`` answered (after the error
    /// text); `nil` when they are not a summary.
    public init?(values: [Value]) {
        guard values.count >= 2, let startedAt = Self.integer(values[0]), let ports = Self.integer(values[1]) else {
            return nil
        }
        self.init(startedAt: startedAt, ports: Int(clamping: ports), queuedBytes: values.count > 2 ? Self.integer(values[2]).map { Int(clamping: $0) } : nil)
    }

    /// An integer, also from a Perl number that arrived as a float or a string (text or bytes).
    private static func integer(_ value: Value) -> Int64? {
        switch value {
        case .int(let number): return number
        case .uint(let number): return Int64(exactly: number)
        case .float(let number): return number.isFinite ? Int64(exactly: number.rounded(.down)) : nil
        default:
            guard let text = value.stringValue else { return nil }
            return Int64(text) ?? Double(text).flatMap { $0.isFinite ? Int64(exactly: $0.rounded(.down)) : nil }
        }
    }
}

extension Node {
    /// The Perl expression whose value is a node's summary: its start time (`$^T`), its number of
    /// ports and the bytes queued on its connections. A Perl node in non-secure mode evaluates it; a
    /// Swift node answers it without an evaluator (``NodeSummary``).
    public static let nodeSummaryExpression =
        "($^T, scalar(keys %AnyEvent::MP::Kernel::PORT), eval { my $q = 0; for (values %AnyEvent::MP::Kernel::NODE) { my $h = ref $_ && $_->{transport} && $_->{transport}{hdl}; $q += length $h->{wbuf} if $h && defined $h->{wbuf} } $q })"

    /// The Perl expression whose value is the names of the families in a global node's database
    /// (`%AnyEvent::MP::Global::GLOBAL_DB`); empty on a node that is not global. A Swift node
    /// answers it without an evaluator.
    public static let databaseFamiliesExpression = "keys %AnyEvent::MP::Global::GLOBAL_DB"

    /// Port deaths seen by this node's monitors and failed handshakes, as an `AsyncSequence` (see
    /// ``NodeObservation``). Node up and down events are ``nodeEvents(limit:)``.
    ///
    /// Observations wait in a buffer of at most `limit`; when it is full the oldest are dropped. The
    /// registration reaches the node's loop before any node call made afterwards from the same
    /// thread or task. Ending the sequence (cancelling the consuming task) removes it.
    ///
    /// - Parameter limit: how many observations may wait for the consumer (default 1024).
    public func observations(limit: Int = 1024) -> AsyncStream<NodeObservation> {
        let (stream, continuation) = AsyncStream<NodeObservation>.makeStream(bufferingPolicy: .bufferingNewest(max(1, limit)))
        let id = ObservationRegistry.nextID.add(1, ordering: .relaxed).newValue
        perform { core in
            core.observationRegistry(create: true)?.callbacks[id] = { continuation.yield($0) }
        }
        continuation.onTermination = { [self] _ in
            perform { core in core.observationRegistry(create: false)?.callbacks[id] = nil }
        }
        return stream
    }

    /// What this node would answer to ``nodeSummaryExpression``: its start time, ports and queued
    /// bytes.
    public func summary() async -> NodeSummary {
        await evaluate { $0.summary() }
    }
}

/// The callbacks of ``Node/observations(limit:)``, kept in ``NodeCore/extensionState``.
final class ObservationRegistry {
    static let key = "aemp.observations"
    static let nextID = Atomic<UInt64>(0)

    var callbacks: [UInt64: @Sendable (NodeObservation) -> Void] = [:]
}

extension NodeCore {
    func observationRegistry(create: Bool) -> ObservationRegistry? {
        if let registry = extensionState[ObservationRegistry.key] as? ObservationRegistry { return registry }
        guard create, !isShutDown else { return nil }
        let registry = ObservationRegistry()
        extensionState[ObservationRegistry.key] = registry
        return registry
    }

    /// Tells every observer; `make` runs only when there is one.
    func observe(_ make: @autoclosure () -> NodeObservation) {
        guard let registry = extensionState[ObservationRegistry.key] as? ObservationRegistry, !registry.callbacks.isEmpty
        else { return }
        let observation = make()
        for id in registry.callbacks.keys.sorted() { registry.callbacks[id]?(observation) }
    }

    /// A handshake that ended before authentication, for the observers; not this node meeting
    /// itself through its own seed address (routine, as in the log).
    func observeHandshakeFailure(_ connection: TransportConnection, message: String, failure: String) {
        guard connection.peerGreeting?.nodeID != nodeID else { return }
        observe({
            var reason = failure
            if let secret = configuration.secret, !secret.isEmpty {
                reason = reason.replacing(secret, with: "<secret>")
            }
            let direction: PeerInfo.Direction
            switch connection.direction {
            case .dialled: direction = .outgoing
            case .accepted: direction = .incoming
            }
            return .handshakeFailed(
                HandshakeFailure(
                    peer: connection.peerGreeting?.nodeID, address: connection.direction.peerAddress, direction: direction,
                    category: NodeStatistics.failureCategory(message), reason: reason))
        }())
    }

    /// This node's answer to ``Node/nodeSummaryExpression``.
    func summary() -> NodeSummary {
        let queued = remotes.values.reduce(0) { $0 + ($1.link?.writeBufferLength ?? 0) }
        return NodeSummary(startedAt: startedAt, ports: ports.count, queuedBytes: queued)
    }
}
