/// The settings one handshake needs, taken from the node's configuration.
///
/// Perl: the parts of `AnyEvent::MP::Config` that `AnyEvent::MP::Transport` reads (`secret`,
/// `cert`, `auth_offer`, `auth_accept`, `framing_format`).
public struct HandshakeConfiguration: Sendable {
    /// This node's ID (greeting field 3).
    public var nodeID: NodeID
    /// The shared secret's bytes; `nil` or empty means none.
    public var secret: [UInt8]?
    /// Whether this node has a TLS context (Perl: `cert` configured); it then sends `tls=1.0`.
    public var tlsAvailable: Bool
    /// Methods this node will send, in any order (the peer's order decides). Perl: `auth_offer`.
    public var authOffer: [AuthMethod]
    /// Methods this node accepts from peers, in preference order (greeting field 4). Perl: `auth_accept`.
    public var authAccept: [AuthMethod]
    /// Framings this node offers and accepts, in preference order (greeting field 5).
    /// Unsupported names (``Framing/isSupported``) are never chosen.
    public var framings: [Framing]
    /// `aemp-<word>` protocols a plain `aemp` endpoint may be switched to by the peer's greeting
    /// (spec §3.3 step 2). Perl switches to any; the Swift node only to registered ones.
    public var protocolUpgrades: Set<String>
    /// Whether connections set `TCP_NODELAY` (Perl `nodelay`, default on). Not part of the
    /// handshake itself; carried here so that a connection gets all its settings in one value.
    public var nodelay: Bool = true
    /// Whether connections coalesce writes per loop tick (Perl `autocork`, default off).
    public var autocork: Bool = false
    /// How long a connection in the data phase may stay silent before the peer is taken for dead;
    /// `.zero` disables the check (``NodeConfiguration/livenessTimeout``, default 10 s).
    public var livenessTimeout: Duration = .seconds(10)

    /// Creates a handshake configuration.
    ///
    /// - Parameters:
    ///   - nodeID: this node's ID.
    ///   - secret: the shared secret, or `nil`.
    ///   - tlsAvailable: whether a TLS context is configured.
    ///   - authOffer: methods to send (Perl default `tls_sha3_512,hmac_sha3_512`).
    ///   - authAccept: methods to accept (Perl default `tls_sha3_512,hmac_sha3_512,tls_anon,cleartext`).
    ///   - framings: framings in preference order (Swift default `cbor,json`).
    ///   - protocolUpgrades: accepted protocol upgrades (default `aemp-dataconn`).
    public init(
        nodeID: NodeID,
        secret: String?,
        tlsAvailable: Bool = false,
        authOffer: [AuthMethod] = AuthMethod.defaultOffer,
        authAccept: [AuthMethod] = AuthMethod.defaultAccept,
        framings: [Framing] = Framing.supported,
        protocolUpgrades: Set<String> = [Greeting.aempDataConn]
    ) {
        self.nodeID = nodeID
        self.secret = secret.map { Array($0.utf8) }
        self.tlsAvailable = tlsAvailable
        self.authOffer = authOffer
        self.authAccept = authAccept
        self.framings = framings
        self.protocolUpgrades = protocolUpgrades
    }

    /// The handshake settings of a node.
    ///
    /// - Parameters:
    ///   - node: the node's configuration.
    ///   - nodeID: the node's resolved ID.
    public init(node: NodeConfiguration, nodeID: NodeID) {
        self.init(
            nodeID: nodeID,
            secret: node.secret,
            tlsAvailable: node.certificate != nil,
            authOffer: node.authOffer,
            authAccept: node.authAccept,
            framings: node.framingFormats
        )
        nodelay = node.nodelay
        autocork = node.autocork
        livenessTimeout = node.livenessTimeout
    }

    /// Whether a non-empty secret is configured.
    var hasSecret: Bool { !(secret ?? []).isEmpty }
}

/// What a completed handshake established (spec §3.4, §3.6).
public struct HandshakeResult: Sendable, Hashable {
    /// The authenticated peer node ID.
    public var peerNodeID: NodeID
    /// The peer's greeting line 1 (its keys, e.g. `peeraddr`, `dataconn_id`).
    public var peerGreeting: Greeting
    /// The effective protocol: `aemp`, or the upgrade the peer asked for (e.g. `aemp-dataconn`).
    public var protocolName: String
    /// The framing this side uses for everything it sends.
    public var sendFraming: Framing
    /// The framing the peer announced for everything it sends.
    public var receiveFraming: Framing
    /// The auth method this side sent.
    public var sendAuth: AuthMethod
    /// The auth method the peer sent.
    public var receiveAuth: AuthMethod
    /// Whether the connection runs inside TLS.
    public var tls: Bool
    /// `false` if the peer authenticated with `tls_anon` (Perl marks such peers untrusted).
    public var trusted: Bool
}
