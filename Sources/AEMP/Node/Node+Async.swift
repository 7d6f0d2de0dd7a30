import AEMPCodecs
import Synchronization

/// One message received by a ``MessagePort`` (or a tag stream of ``Node/messages(on:tag:limit:)``).
public struct PortMessage: Sendable {
    /// The node the message came from. Perl: `$SRCNODE`.
    public let source: NodeID
    /// The message elements (for a tag stream: the elements after the tag).
    public let values: [Value]

    /// A message as a port would receive it (e.g. to decode an array of values with ``decode(_:)``).
    public init(source: NodeID, values: [Value]) {
        self.source = source
        self.values = values
    }
}

/// A port whose messages arrive as an `AsyncSequence`, the async form of `port { ... }`:
///
/// ```swift
/// let inbox = node.messagePort()
/// node.dbReg("workers", port: inbox.id)
/// for await message in inbox.messages {
///     print("from \(message.source): \(message.values)")
/// }
/// ```
///
/// **Buffering.** Messages wait in a buffer of at most `limit` messages until the consumer takes
/// them; memory never grows past it. When a message arrives while the buffer is full, the port is
/// killed with `("overflow", "<limit> messages not taken")` by default (``Overflow/killPort``):
/// its monitors fire, so senders that watch it learn that the consumer fell behind, and nothing is
/// lost silently. With ``Overflow/dropNewest`` the message is dropped and counted in
/// ``droppedMessages`` instead. The node's loop never waits for the consumer.
///
/// **Lifetime.** The port lives until it is killed (``Node/kill(_:reason:)``, a remote `kil`, an
/// overflow: the sequence ends after the buffered messages), until the task iterating ``messages``
/// is cancelled, or until ``finish()``; the last two kill it with a normal reason. There is one
/// sequence per port: iterate ``messages`` from one task.
public final class MessagePort: Sendable {
    /// What happens to a message that arrives while the buffer is full.
    public enum Overflow: Sendable, Hashable {
        /// Kill the port with `("overflow", "<limit> messages not taken")` (the default).
        case killPort
        /// Drop the message and count it in ``MessagePort/droppedMessages``.
        case dropNewest
    }

    /// The tag of the overflow kill reason.
    public static let overflowTag = "overflow"

    /// `("overflow", "<limit> messages<what> not taken")`.
    static func overflowReason(_ limit: Int, _ what: String = "") -> KillReason {
        .user([.text(overflowTag), .text("\(limit) messages\(what) not taken")])
    }

    /// The port's ID: give it to other nodes, register it in the global database.
    public let id: PortID
    /// The messages, in arrival order; ends when the port dies.
    public let messages: AsyncStream<PortMessage>
    private let continuation: AsyncStream<PortMessage>.Continuation
    private let node: Node
    private let dropped = DropCount()

    /// Messages dropped because the buffer was full (``Overflow/dropNewest`` only).
    public var droppedMessages: Int { dropped.value.load(ordering: .relaxed) }

    private final class DropCount: Sendable {
        let value = Atomic<Int>(0)
    }

    init(node: Node, limit: Int, overflow: Overflow) {
        self.node = node
        let (stream, continuation) = AsyncStream<PortMessage>.makeStream(bufferingPolicy: .bufferingOldest(max(1, limit)))
        self.messages = stream
        self.continuation = continuation
        let dropped = self.dropped
        let limit = max(1, limit)
        let port = node.port { context, values in
            switch continuation.yield(PortMessage(source: context.sourceNode, values: values)) {
            case .dropped:
                if overflow == .dropNewest {
                    dropped.value.add(1, ordering: .relaxed)
                } else {
                    context.node.kill(context.port, reason: Self.overflowReason(limit))
                }
            case .enqueued, .terminated: break
            @unknown default: break
            }
        }
        self.id = port
        // The port's death ends the sequence; the sequence's end kills the port.
        let monitor = node.monitor(port) { _ in continuation.finish() }
        continuation.onTermination = { _ in
            monitor.cancel()
            node.kill(port)
        }
    }

    /// Kills the port (normal reason) and ends the sequence after the messages already buffered.
    public func finish() {
        node.kill(id)
    }
}

/// A node came up or went down (the async form of ``Node/monitorNodes(_:)``, Perl `mon_nodes`).
public struct NodeEvent: Sendable, Hashable {
    /// The node.
    public let node: NodeID
    /// Whether it came up (`true`) or went down.
    public let isUp: Bool
    /// Why it went down (normal when it came up).
    public let reason: KillReason
}

extension Node {
    /// Creates a port whose messages arrive as an `AsyncSequence` (see ``MessagePort``). Perl:
    /// `port { ... }`.
    ///
    /// - Parameters:
    ///   - limit: how many messages may wait for the consumer (default 4096).
    ///   - overflow: what a message arriving at a full buffer does (default: kill the port).
    public func messagePort(limit: Int = 4096, overflow: MessagePort.Overflow = .killPort) -> MessagePort {
        MessagePort(node: self, limit: limit, overflow: overflow)
    }

    /// The messages of a local port whose first element is `tag`, as an `AsyncSequence` of the
    /// elements after it: the async form of Perl's `rcv $port, tag => sub { ... }`. The port keeps
    /// its other callbacks and tags (``port()`` then several tag streams makes a dispatcher).
    ///
    /// Buffering as ``MessagePort`` with ``MessagePort/Overflow/killPort``: a message for a full
    /// buffer kills the port with `("overflow", ...)`. The sequence ends when the port dies; ending it
    /// (cancelling the consuming task) removes the tag's callback. The tag is in place when this
    /// returns, so a message sent afterwards (from anywhere) finds it.
    ///
    /// - Parameters:
    ///   - port: a local port (from ``port()`` or ``port(_:)``).
    ///   - tag: the first element to match.
    ///   - limit: how many messages may wait for the consumer (default 4096).
    public func messages(on port: PortID, tag: String, limit: Int = 4096) async -> AsyncStream<PortMessage> {
        let (stream, continuation) = AsyncStream<PortMessage>.makeStream(bufferingPolicy: .bufferingOldest(max(1, limit)))
        let limit = max(1, limit)
        let callback: PortCallback = { context, values in
            if case .dropped = continuation.yield(PortMessage(source: context.sourceNode, values: values)) {
                context.node.kill(context.port, reason: MessagePort.overflowReason(limit, " tagged \(tag)"))
            }
        }
        await evaluate { $0.setCallback(port: port.name, tag: tag, callback: callback) }
        let monitor = self.monitor(port) { _ in continuation.finish() }
        continuation.onTermination = { [self] _ in
            monitor.cancel()
            receive(port, tag: tag, nil)
        }
        return stream
    }

    /// Waits until `port` dies and returns the kill reason: the async form of `mon $port, sub { ... }`.
    /// A port that does not exist (or is on a node that cannot be reached) answers at once with the
    /// reason Perl gives (`no_such_port`, `transport_error ...`).
    ///
    /// - Throws: `CancellationError` when the waiting task is cancelled (the monitor is removed).
    public func deathOf(_ port: PortID) async throws -> KillReason {
        let wait = DeathWait()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<KillReason, any Error>) in
                wait.start(continuation)
                wait.attach(monitor(port) { reason in wait.finish(.success(reason)) })
                if Task.isCancelled { wait.finish(.failure(CancellationError())) }
            }
        } onCancel: {
            wait.finish(.failure(CancellationError()))
        }
    }

    /// Node up and down events as an `AsyncSequence`: the async form of ``monitorNodes(_:)`` (Perl
    /// `mon_nodes`). Events wait in a buffer of at most `limit`; when it is full the oldest are
    /// dropped (the newest state of each node matters most). Ending the sequence (cancelling the
    /// consuming task) removes the registration.
    ///
    /// - Parameter limit: how many events may wait for the consumer (default 1024).
    public func nodeEvents(limit: Int = 1024) -> AsyncStream<NodeEvent> {
        let (stream, continuation) = AsyncStream<NodeEvent>.makeStream(bufferingPolicy: .bufferingNewest(max(1, limit)))
        let monitor = monitorNodes { node, up, reason in
            continuation.yield(NodeEvent(node: node, isUp: up, reason: reason))
        }
        continuation.onTermination = { _ in monitor.cancel() }
        return stream
    }

    /// Changes of a global database family as an `AsyncSequence`: the async form of
    /// ``dbMonitor(_:_:)`` (Perl `db_mon`). The first element has the family's current contents (all
    /// keys added), then one element per change. Each carries the whole family after its change, so
    /// when the buffer of at most `limit` is full and the oldest are dropped, a slow consumer loses
    /// only the added/changed/deleted detail, never the state. Ending the sequence (cancelling the
    /// consuming task) removes the monitor.
    ///
    /// - Parameters:
    ///   - family: the family.
    ///   - limit: how many changes may wait for the consumer (default 1024).
    public func databaseChanges(_ family: String, limit: Int = 1024) -> AsyncStream<DatabaseChange> {
        let (stream, continuation) = AsyncStream<DatabaseChange>.makeStream(bufferingPolicy: .bufferingNewest(max(1, limit)))
        let monitor = dbMonitor(family) { change in continuation.yield(change) }
        continuation.onTermination = { _ in monitor.cancel() }
        return stream
    }
}

/// One ``Node/deathOf(_:)``: the continuation and the monitor, finished once.
private final class DeathWait: Sendable {
    private struct State {
        var continuation: CheckedContinuation<KillReason, any Error>?
        var monitor: MonitorGuard?
        var done = false
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<KillReason, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Keeps the monitor, or cancels it at once when the wait is already over.
    func attach(_ monitor: MonitorGuard) {
        let over = state.withLock { state -> Bool in
            if !state.done { state.monitor = monitor }
            return state.done
        }
        if over { monitor.cancel() }
    }

    func finish(_ result: Result<KillReason, any Error>) {
        let (continuation, monitor) = state.withLock { state -> (CheckedContinuation<KillReason, any Error>?, MonitorGuard?) in
            // Without a continuation yet (cancelled early), the caller checks cancellation after start.
            guard !state.done, let continuation = state.continuation else { return (nil, nil) }
            state.done = true
            defer { state.continuation = nil; state.monitor = nil }
            return (continuation, state.monitor)
        }
        monitor?.cancel()
        continuation?.resume(with: result)
    }
}
