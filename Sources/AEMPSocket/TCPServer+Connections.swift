import NIOCore

/// The connections a server accepts, as an `AsyncSequence`: the `async` way to use
/// ``tcpServer(host:service:on:prepare:accept:)``.
///
/// ```swift
/// let connections = try TCPServer.connections(host: "127.0.0.1", service: nil)
/// print("listening on port \(connections.server.localPort)")
/// for await connection in connections {
///     // connection.channel: empty pipeline, autoRead off
/// }
/// ```
///
/// The sequence is meant for one consumer. Connections accepted while nobody waits are queued (the kernel's listen
/// queue limits how fast they come, not how many are kept). Iteration ends when the server is cancelled, after the
/// queued connections were handed out. Dropping the sequence (and its iterators) stops the server and closes the
/// connections still queued; so does cancelling it with ``TCPServer/cancel()``, except that queued ones are still
/// delivered. A task cancelled while waiting gets `nil`.
public final class TCPServerConnections: AsyncSequence, Sendable {
    /// A connection accepted by the server.
    public typealias Element = TCPConnection
    /// The sequence never throws.
    public typealias Failure = Never

    /// The listening server (the guard); ``TCPServer/cancel()`` on it ends the iteration.
    public let server: TCPServer
    private let queue: TCPConnectionQueue

    fileprivate init(server: TCPServer, queue: TCPConnectionQueue) {
        self.server = server
        self.queue = queue
    }

    deinit {
        server.cancel()
        queue.closeQueued()
    }

    /// Creates the iterator; it keeps the sequence, and so the server, alive.
    public func makeAsyncIterator() -> Iterator { Iterator(sequence: self) }

    /// Waits for the next accepted connection.
    public struct Iterator: AsyncIteratorProtocol {
        private let sequence: TCPServerConnections

        fileprivate init(sequence: TCPServerConnections) { self.sequence = sequence }

        /// The next connection, or `nil` once the server stopped (or the waiting task was cancelled).
        public mutating func next() async -> TCPConnection? {
            await sequence.queue.next()
        }

        /// The next connection; `AsyncIteratorProtocol`'s isolation-preserving form.
        public mutating func next(isolation actor: isolated (any Actor)?) async -> TCPConnection? {
            await sequence.queue.next()
        }
    }
}

extension TCPServer {
    /// Listens like ``tcpServer(host:service:on:prepare:accept:)`` and delivers the accepted connections as an
    /// `AsyncSequence` (Perl: `tcp_server`, consumed with `async`/`await`).
    ///
    /// - Parameters:
    ///   - host: The address to bind, `nil` for the wildcard, or `"unix/"`.
    ///   - service: The port or service name (`nil` for an ephemeral port), or the socket path for `"unix/"`.
    ///   - eventLoop: The loop for the listener and its connections.
    ///   - prepare: Called after bind and before listen; returns the listen queue length.
    /// - Returns: The connections; their ``TCPServerConnections/server`` is the listening server.
    /// - Throws: ``SocketError`` for everything detected before listening.
    public static func connections(
        host: String?,
        service: String?,
        on eventLoop: (any EventLoop)? = nil,
        prepare: (TCPListeningSocket) throws -> Int? = { _ in nil }
    ) throws(SocketError) -> TCPServerConnections {
        let (spec, place) = try serverBindSpec(host: host, service: service)
        let queue = TCPConnectionQueue()
        let server = try startServer(spec, place: place, on: eventLoop, prepare: prepare) { connection in
            queue.push(connection)
        }
        server.cancelHandlers.withLock { $0.append { queue.finish() } }
        return TCPServerConnections(server: server, queue: queue)
    }
}

/// Accepted connections waiting for the consumer, and the consumer waiting for them.
private final class TCPConnectionQueue: Sendable {
    private struct State {
        var queued: [TCPConnection] = []
        var waiter: CheckedContinuation<TCPConnection?, Never>?
        var finished = false
        var dropped = false
    }

    private let state = TCPLockedBox(State())

    func push(_ connection: TCPConnection) {
        enum Step {
            case resume(CheckedContinuation<TCPConnection?, Never>)
            case queued
            case close
        }
        let step: Step = state.withLock { state in
            if state.dropped { return .close }
            if let waiter = state.waiter {
                state.waiter = nil
                return .resume(waiter)
            }
            state.queued.append(connection)
            return .queued
        }
        switch step {
        case .resume(let waiter): waiter.resume(returning: connection)
        case .queued: break
        case .close: connection.channel.close(promise: nil)
        }
    }

    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    func closeQueued() {
        let queued = state.withLock { state in
            state.finished = true
            state.dropped = true
            defer { state.queued = [] }
            return state.queued
        }
        for connection in queued { connection.channel.close(promise: nil) }
    }

    func next() async -> TCPConnection? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<TCPConnection?, Never>) in
                enum Step {
                    case deliver(TCPConnection?)
                    case wait
                }
                let step: Step = state.withLock { state in
                    if !state.queued.isEmpty { return .deliver(state.queued.removeFirst()) }
                    if state.finished || Task.isCancelled { return .deliver(nil) }
                    precondition(state.waiter == nil, "TCPServerConnections supports one consumer at a time")
                    state.waiter = continuation
                    return .wait
                }
                if case .deliver(let connection) = step { continuation.resume(returning: connection) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
