/// Everything a node is configured with, with Perl AnyEvent::MP 2.x's defaults (spec §10).
///
/// Perl: the arguments of `configure` and the profile keys of `AnyEvent::MP::Config`. This is the
/// finished configuration a node starts from; profiles and rc files are the `aemp` command's job.
///
/// ```swift
/// var configuration = NodeConfiguration.default
/// configuration.nodeID = "echo"
/// configuration.binds = ["127.0.0.1:4040"]
/// configuration.secret = "aemp-ref-secret"
/// ```
public struct NodeConfiguration: Sendable, Hashable {
    /// The node ID template (Perl `nodeid`): `%n` = host name, `%u` or a trailing `/` = a random
    /// unique string. `nil` makes an anonymous node `anon/<random>`.
    /// See ``NodeID/expand(template:profile:hostname:runiq:)``.
    public var nodeID: String?
    /// Listener addresses as `host:port` (Perl `binds`); `*` = every local address, port 0 =
    /// ephemeral. Default `["*"]`: every local address on an ephemeral port.
    ///
    /// A `*` bind listens on every interface but publishes (as ``Node/listenerAddresses`` and in the
    /// global database) only the addresses other hosts can reach, as Perl does: every IPv4 address
    /// outside 127.0.0.0/8 and the global, unique-local and site-local IPv6 ones (no `::1`, no
    /// `fe80::`). A host with nothing but loopback publishes its loopback addresses.
    public var binds: [String]
    /// Seed node addresses as `host:port` (Perl `seeds`).
    public var seeds: [String]
    /// The shared secret (Perl `secret`), the HMAC key of `hmac_sha3_512`. Default: none — a node
    /// without secret and without certificate cannot complete any handshake (spec §12.10).
    public var secret: String?
    /// PEM private key + certificate (+ CA) used for TLS, as own certificate and as trust anchor
    /// (Perl `cert`). Default: none (no TLS).
    public var certificate: String?
    /// Methods this node sends, Perl `auth_offer`. Default `tls_sha3_512, hmac_sha3_512`.
    public var authOffer: [AuthMethod]
    /// Methods this node accepts, in preference order (greeting field 4), Perl `auth_accept`.
    /// Default `tls_sha3_512, hmac_sha3_512, tls_anon, cleartext`.
    public var authAccept: [AuthMethod]
    /// Framings in preference order (greeting field 5), Perl `framing_format`. Default `cbor, json`
    /// (Perl also lists `storable`, which only Perl can speak).
    public var framingFormats: [Framing]
    /// Handshake read timeout, cap of retry back-offs, and connect pacing (Perl `monitor_timeout`,
    /// default 30 s).
    public var monitorTimeout: Duration
    /// Connect timeout per node and dial pacing (Perl `connect_interval`, default 2 s).
    public var connectInterval: Duration
    /// Whether to set `TCP_NODELAY` (Perl `nodelay`, default on).
    public var nodelay: Bool
    /// Whether to coalesce writes (Perl `autocork`, default off).
    public var autocork: Bool
    /// Whether to refuse `eval` and function calls through the node port (Perl `secure`, default off).
    public var secure: Bool
    /// Services to start on this node, as function names (Perl `services`).
    public var services: [String]
    /// Swift only (configure key `liveness_timeout`, seconds; `0` disables): how long a node
    /// connection may stay silent before the peer is taken for dead. Default 10 s.
    ///
    /// TCP alone notices a peer that stops without closing (a stopped or hung process, a frozen
    /// machine, a pulled cable, a partition) only after hours when idle, or many minutes while data
    /// is queued. So a node watches every node connection: when nothing has arrived for a third of
    /// this time it sends a probe that every AEMP node answers, Perl's included (a kernel `snd` relay
    /// back to its own node port with the empty, do-nothing tag: `["","snd","<self>#",""]`). Any
    /// byte from the peer counts as life, and so does the socket taking our queued bytes while its
    /// send buffer is full (the peer is reading a large transfer and has nothing to say). After this
    /// long in silence the connection is closed as lost: every monitor of the peer's ports fires with
    /// `transport_error <node> no data for <n> s`, the node is reported down, queued messages are
    /// dropped, and reconnection follows the usual rules. A peer is declared dead between this time
    /// and this time plus two checks after its last byte (the check runs every tenth of the timeout,
    /// at most every 0.5 s): 10–11 s at the default.
    ///
    /// 10 s notices a lost peer fast (Erlang's default takes 45–75 s) yet never fires on a healthy
    /// link: a busy peer answers the probe from its event loop within milliseconds, a bulk transfer
    /// keeps the socket moving, and a peer's loop would have to stop for 6–7 s to miss the probe
    /// and its answer. Raise it for peers whose event loop may block longer (e.g. a Perl node running a
    /// long callback); lower it (e.g. 3 s) for faster detection on a quiet local network.
    public var livenessTimeout: Duration = .seconds(10)

    /// Swift only: how often the node reports its ``NodeStatistics`` to the swift-metrics backend
    /// (`MetricsSystem.bootstrap`), on its own loop; `0` reports only when ``Node/reportMetrics()``
    /// is called. While no backend is bootstrapped nothing is reported, whatever this says. The
    /// message path only adds to plain counters; the report turns their growth into metric updates.
    public var metricsInterval: Duration = .seconds(1)

    /// Swift only: how long ``Node/shutdown(gracePeriod:reason:)`` (and a ``Node`` run as a
    /// `Service` when graceful shutdown is triggered) waits for queued messages to leave before it
    /// closes the connections anyway. Configure key `shutdown_timeout` (seconds).
    public var shutdownTimeout: Duration = .seconds(5)

    /// Swift only: after a message arrives, the node's loop keeps polling its sockets for this long
    /// instead of going to sleep, so that the next message (a reply, the next request) is read at
    /// once rather than after the thread wakes up. Configure key `busy_poll` (seconds, e.g. `0.0002`;
    /// `0`, the default, never polls).
    ///
    /// Waking a sleeping thread costs tens of microseconds, most of all on virtual machines whose idle
    /// vCPUs halt: there a request/reply round trip can be several times its busy-machine time. A
    /// window somewhat longer than the round trip (100–500 µs on one host or a LAN) removes that,
    /// at the price of one core spinning for the window after every message: on a node that gets a
    /// message more often than the window, that is a whole core. Worth it for latency-critical
    /// request/reply traffic between few nodes; leave it off for everything else.
    public var busyPoll: Duration = .zero

    /// Swift only: ``Node/send(to:_:)`` waits while more than this many bytes wait to be written to
    /// the destination's connection (or while this many messages wait for a connection to come up),
    /// so that a fast producer cannot exhaust memory. `snd` (``Node/send(_:_:)-([Value])``) never waits.
    public var sendHighWaterMark: Int = 1 << 20

    /// Creates a configuration; every parameter defaults to Perl's default.
    ///
    /// - Parameters:
    ///   - nodeID: node ID template; `nil` = anonymous.
    ///   - binds: listener addresses (default `*`).
    ///   - seeds: seed addresses (default none).
    ///   - secret: shared secret (default none).
    ///   - certificate: PEM key and certificate (default none).
    ///   - authOffer: methods to send.
    ///   - authAccept: methods to accept.
    ///   - framingFormats: framings in preference order.
    ///   - monitorTimeout: handshake timeout and back-off cap (30 s).
    ///   - connectInterval: connect timeout and dial pacing (2 s).
    ///   - nodelay: `TCP_NODELAY` (on).
    ///   - autocork: write coalescing (off).
    ///   - secure: refuse remote code execution (off).
    ///   - services: services to start (none).
    public init(
        nodeID: String? = nil,
        binds: [String] = ["*"],
        seeds: [String] = [],
        secret: String? = nil,
        certificate: String? = nil,
        authOffer: [AuthMethod] = AuthMethod.defaultOffer,
        authAccept: [AuthMethod] = AuthMethod.defaultAccept,
        framingFormats: [Framing] = Framing.supported,
        monitorTimeout: Duration = .seconds(30),
        connectInterval: Duration = .seconds(2),
        nodelay: Bool = true,
        autocork: Bool = false,
        secure: Bool = false,
        services: [String] = [],
        sendHighWaterMark: Int = 1 << 20
    ) {
        self.nodeID = nodeID
        self.binds = binds
        self.seeds = seeds
        self.secret = secret
        self.certificate = certificate
        self.authOffer = authOffer
        self.authAccept = authAccept
        self.framingFormats = framingFormats
        self.monitorTimeout = monitorTimeout
        self.connectInterval = connectInterval
        self.nodelay = nodelay
        self.autocork = autocork
        self.secure = secure
        self.services = services
        self.sendHighWaterMark = sendHighWaterMark
    }

    /// Perl's defaults: anonymous node, bind `*`, no seeds, no secret, no certificate.
    public static var `default`: NodeConfiguration { NodeConfiguration() }

    /// Whether a handshake can succeed at all: a non-empty secret or a certificate is configured
    /// (spec §3.3 step 10).
    public var canAuthenticate: Bool {
        !(secret ?? "").isEmpty || certificate != nil
    }

    /// The interval between dials of the addresses of one node (spec §7 step 3), before the random
    /// factor 0.9–1.0: `connect_interval`, reduced to `(monitor_timeout − connect_interval) / n` if
    /// that is smaller, but at least 0.4 s.
    ///
    /// - Parameter addressCount: how many addresses will be dialled.
    /// - Returns: the pacing interval.
    public func dialInterval(addressCount: Int) -> Duration {
        var interval = connectInterval
        if addressCount > 0 {
            let spread = (monitorTimeout - connectInterval) / addressCount
            if spread < interval { interval = spread }
        }
        return max(interval, .milliseconds(400))
    }
}
