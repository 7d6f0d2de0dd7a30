import AEMPCodecs

/// Which software a node runs, as its greeting's `provider` field tells (spec §3.1).
public enum NodeImplementation: Sendable, Hashable, CustomStringConvertible {
    /// A Swift node (`provider=swift-aemp/...`, ``Greeting/defaultProvider``).
    case swift
    /// Perl AnyEvent::MP (`provider=AE-<version>`, e.g. ``Greeting/perlProvider``).
    case perl
    /// Another implementation: its provider value.
    case other(String)
    /// Not known: the greeting had no provider, or the node was never greeted.
    case unknown

    /// Classifies a greeting's `provider` value.
    ///
    /// - Parameter provider: the value, `nil` when absent.
    public init(provider: String?) {
        guard let provider, !provider.isEmpty else {
            self = .unknown
            return
        }
        if provider.hasPrefix("swift-aemp") {
            self = .swift
        } else if provider.hasPrefix("AE-") {
            self = .perl
        } else {
            self = .other(provider)
        }
    }

    /// `swift`, `perl`, the provider value, or `unknown`.
    public var description: String {
        switch self {
        case .swift: "swift"
        case .perl: "perl"
        case .other(let provider): provider
        case .unknown: "unknown"
        }
    }
}

/// What this node knows about a connected peer: its greeting, how the connection was made, and
/// whether it announced itself as a global node.
///
/// ```swift
/// if let peer = await node.peerInfo(NodeID("seed")!) {
///     print(peer.implementation, peer.isGlobal, peer.direction)   // perl true outgoing
/// }
/// ```
public struct PeerInfo: Sendable, Hashable {
    /// Who opened a connection.
    public enum Direction: Sendable, Hashable {
        /// The peer dialled this node.
        case incoming
        /// This node dialled the peer.
        case outgoing
    }

    /// The peer.
    public var nodeID: NodeID
    /// The peer's greeting line 1 (authenticated by the handshake that followed it).
    public var greeting: Greeting
    /// Who opened the connection.
    public var direction: Direction
    /// The peer's address: the address dialled, or where an incoming connection came from.
    public var address: String?
    /// Whether the peer announced itself as a global node (`g_global`, spec §6.3).
    public var isGlobal: Bool

    /// The greeting's `provider` value (`AE-2.01` from Perl, `swift-aemp/AE-2.01` from Swift).
    public var provider: String? { greeting["provider"] }

    /// Which software the peer runs, from ``provider``.
    public var implementation: NodeImplementation { NodeImplementation(provider: provider) }
}

extension Node {
    /// What this node knows about `node` while it is connected (Perl: the greeting kept in `%NODE`).
    ///
    /// - Parameter node: the peer.
    /// - Returns: its greeting, direction and global flag; `nil` when it is not connected.
    public func peerInfo(_ node: NodeID) async -> PeerInfo? {
        await evaluate { $0.peerInfo(node) }
    }

    /// ``peerInfo(_:)`` for every connected node, ordered by node ID.
    public func peers() async -> [PeerInfo] {
        await evaluate { core in core.upNodes.compactMap(core.peerInfo) }
    }
}

extension NodeCore {
    func peerInfo(_ node: NodeID) -> PeerInfo? {
        guard let link = remotes[node]?.link, let result = link.result else { return nil }
        let direction: PeerInfo.Direction
        switch link.direction {
        case .dialled: direction = .outgoing
        case .accepted: direction = .incoming
        }
        return PeerInfo(
            nodeID: node, greeting: result.peerGreeting, direction: direction, address: link.direction.peerAddress,
            isGlobal: database.knownGlobalNodes.contains(node))
    }
}
