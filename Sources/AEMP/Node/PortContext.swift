import AEMPCodecs

/// A port's message handler. Perl: the callback of `port { ... }` / `rcv $port, $cb`.
///
/// It runs on the node's event loop, one at a time with every other callback of the node. Throwing
/// kills the port with `("die", <error text>)`, as a Perl callback that dies does.
public typealias PortCallback = @Sendable (PortContext, [Value]) throws -> Void

/// A function other nodes may call by name. Perl: a function reached through `snd_to_func`,
/// `spawn`'s init function, or any other node-port tag that names a function.
///
/// It runs on the node's event loop. For `spawn`, ``FunctionContext/port`` is the new port and a
/// throw kills it with `("die", <error text>)`; otherwise a throw is only logged, as in Perl.
public typealias NodeFunction = @Sendable (FunctionContext, [Value]) throws -> Void

/// What a port callback knows about the message it handles.
public struct PortContext: Sendable {
    /// The node the port lives on.
    public let node: Node
    /// The port whose callback runs. Perl: `$SELF`.
    public let port: PortID
    /// The node the message came from. Perl: `$SRCNODE`.
    public let sourceNode: NodeID

    /// Kills this port (with the same reason) when `other` dies abnormally. Perl: `mon $other`
    /// (the monitor form that kills `$SELF`).
    ///
    /// - Returns: the monitor's guard.
    public func monitor(_ other: PortID) -> MonitorGuard {
        node.monitor(other, killing: port)
    }
}

/// What a called function knows about the call.
public struct FunctionContext: Sendable {
    /// The node the function runs on.
    public let node: Node
    /// The port the function runs in: the new port for `spawn`, `nil` for `snd_to_func`.
    /// Perl: `$SELF`.
    public let port: PortID?
    /// The node that asked for the call. Perl: `$SRCNODE`.
    public let sourceNode: NodeID

    package init(node: Node, port: PortID?, sourceNode: NodeID) {
        self.node = node
        self.port = port
        self.sourceNode = sourceNode
    }
}

/// The state of a node as seen from this one. Perl: the result of `node_is_up`.
public enum NodeState: Sendable, Hashable {
    /// A working connection exists (Perl: `1`).
    case up
    /// The node is known but not connected (Perl: `0`).
    case known
}
