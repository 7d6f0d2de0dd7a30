import AEMP
import AEMPCodecs

/// A started node, as `aemp run` announces it.
struct RunningNode: Sendable, Hashable {
    /// The node's ID (Perl: `$NODE`).
    var nodeID: NodeID
    /// The concrete listener addresses, `ip:port` (Perl: `$LISTENER`).
    var listenerAddresses: [String]
}

/// The node-dependent half of the node commands. The command layer resolves the configuration,
/// parses and checks the arguments and prints the results; a backend only talks to the network.
///
/// SEAM for the node layer: implement this protocol with `Node` (Sources/AEMP/Node) and point
/// ``liveNodeBackend`` at the implementation. Each method gets the finished configuration; client
/// methods start their own short-lived node (anonymous ID, ephemeral loopback listener unless
/// `AEMP_CONFIG` said otherwise), do their one job and shut the node down. For example:
///
/// ```swift
/// struct LiveNodeBackend: NodeBackend {
///     func run(_ configuration: NodeConfiguration, started: @escaping @Sendable (RunningNode) -> Void) async throws {
///         let node = try await Node.start(configuration)
///         started(RunningNode(nodeID: node.nodeID, listenerAddresses: node.listenerAddresses))
///         _ = await Termination.waitForSignal()
///         await node.shutdown()
///     }
///     func call(_ configuration: NodeConfiguration, port: PortID, message: [Value], timeout: Duration) async throws -> [Value] {
///         let node = try await Node.start(configuration)
///         do {
///             let reply = try await node.call(port, message, timeout: timeout)
///             await node.shutdown()
///             return reply
///         } catch {
///             await node.shutdown()
///             throw error
///         }
///     }
///     // send, monitor, evaluate, upNodes alike
/// }
/// ```
protocol NodeBackend: Sendable {
    /// `aemp run`: starts a node, calls `started` once it listens, then runs until the process is
    /// interrupted (SIGINT/SIGTERM) and shuts the node down. Perl: `configure` + the event loop.
    func run(_ configuration: NodeConfiguration, started: @escaping @Sendable (RunningNode) -> Void) async throws

    /// `aemp snd <port> <args...>`: sends `message` to `port`, then makes sure it reached the port's
    /// node by sending `["snd", <reply port>, "message sent successfully"]` to that node's node port
    /// while monitoring `port`, and returns whatever arrives first (the reply message, or the kill
    /// reason's values if the monitor fires). Perl gives up after 5 s (`timeout`); throw then.
    func send(_ configuration: NodeConfiguration, to port: PortID, message: [Value], timeout: Duration) async throws -> [Value]

    /// `aemp cal <port> <args...>`: `cal port, @message` and returns the reply message (without the
    /// reply port). Throws on timeout or when the port's monitor fires.
    func call(_ configuration: NodeConfiguration, port: PortID, message: [Value], timeout: Duration) async throws -> [Value]

    /// `aemp mon <port>`: monitors `port` and returns the kill reason when it fires (no timeout).
    func monitor(_ configuration: NodeConfiguration, port: PortID) async throws -> KillReason

    /// `aemp eval <node> <expr...>`: `eval_on node, code, <reply port>` and returns the reply after the
    /// reply port: `[error text (empty on success), results...]`. Throws on timeout or node down.
    func evaluate(_ configuration: NodeConfiguration, node: NodeID, code: String, timeout: Duration) async throws -> [Value]

    /// `aemp nodes`: joins the network through its seeds and returns the up nodes (Perl: `up_nodes`)
    /// once the seed connection is up, excluding this client node itself. Throws on timeout.
    func upNodes(_ configuration: NodeConfiguration, timeout: Duration) async throws -> [NodeID]
}

/// SEAM: the backend the `aemp` executable uses. Replace with the `Node`-based implementation.
let liveNodeBackend: any NodeBackend = UnavailableNodeBackend()

/// The backend while no node layer is wired in: every node command fails with "not available yet".
struct UnavailableNodeBackend: NodeBackend {
    func run(_ configuration: NodeConfiguration, started: @escaping @Sendable (RunningNode) -> Void) async throws {
        throw CLIError.notAvailable("run")
    }

    func send(_ configuration: NodeConfiguration, to port: PortID, message: [Value], timeout: Duration) async throws -> [Value] {
        throw CLIError.notAvailable("snd")
    }

    func call(_ configuration: NodeConfiguration, port: PortID, message: [Value], timeout: Duration) async throws -> [Value] {
        throw CLIError.notAvailable("cal")
    }

    func monitor(_ configuration: NodeConfiguration, port: PortID) async throws -> KillReason {
        throw CLIError.notAvailable("mon")
    }

    func evaluate(_ configuration: NodeConfiguration, node: NodeID, code: String, timeout: Duration) async throws -> [Value] {
        throw CLIError.notAvailable("eval")
    }

    func upNodes(_ configuration: NodeConfiguration, timeout: Duration) async throws -> [NodeID] {
        throw CLIError.notAvailable("nodes")
    }
}
