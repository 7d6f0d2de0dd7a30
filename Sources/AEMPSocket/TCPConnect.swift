import NIOCore
import Synchronization
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A connected socket handed over by ``tcpConnect(host:service:on:resolver:prepare:connect:)`` or a ``TCPServer``: Perl's
/// "file handle" plus the peer's host and port.
///
/// The ``channel`` is registered on its event loop, connected, with an **empty pipeline** and **`autoRead` off**:
/// nothing is read from the socket until whoever adopts it (an `AEMPHandle` `Handle`, or you) adds handlers and
/// reads (`channel.read()` or `channel.setOption(.autoRead, value: true)`). You may also write `ByteBuffer`s to it
/// directly. Like Perl's sockets, `TCP_NODELAY` is left at the system default (off). Closing the channel is the
/// owner's job.
///
/// For a Unix-domain socket, ``peerHost`` is `"unix/"`, ``peerPort`` is `0` and ``peerService`` is the socket path
/// (Perl passes the path as the port). The peer of an accepted Unix-domain connection is normally unnamed, so its
/// path is `""`.
public struct TCPConnection: Sendable {
    /// The connected channel (a NIO `SocketChannel`), with an empty pipeline and `autoRead` off.
    public let channel: any Channel
    /// The peer endpoint. An IPv4-mapped IPv6 peer is reported as IPv4, as Perl does.
    public let peer: ConnectTarget

    /// Creates a connection value for a channel and its peer.
    /// - Parameters:
    ///   - channel: The connected channel.
    ///   - peer: The remote endpoint.
    public init(channel: any Channel, peer: ConnectTarget) {
        self.channel = channel
        self.peer = peer
    }

    /// The peer host as text: the formatted IP address, or `"unix/"` for a Unix-domain socket (Perl's `$host`).
    public var peerHost: String { peer.perlHost }
    /// The peer TCP port, or `0` for a Unix-domain socket (see ``peerService``).
    public var peerPort: Int { peer.portOrZero }
    /// Perl's `$port` as text: the decimal TCP port, or the socket path for a Unix-domain socket.
    public var peerService: String { peer.perlService }
    /// The event loop the channel lives on.
    public var eventLoop: any EventLoop { channel.eventLoop }
}

/// What a ``tcpConnect(host:service:on:resolver:prepare:connect:)`` callback receives: Perl's `$connect_cb` arguments.
public enum TCPConnectOutcome: Sendable {
    /// A target accepted the connection. Call `retry()` to reject it: the connection is closed and the next
    /// target is tried (if none is left, the callback runs again with ``failed(_:)``).
    case connected(TCPConnection, retry: TCPConnectRetry)
    /// No target could be connected. The error's code is `ENXIO` when nothing resolved, otherwise the code of the
    /// last attempt (`ECONNREFUSED`, `ETIMEDOUT`, any OS `errno`); every attempt's failure is in
    /// ``SocketError/connectAttemptFailures``.
    case failed(SocketError)

    /// The connection, if this is ``connected(_:retry:)``.
    public var connection: TCPConnection? {
        if case .connected(let connection, _) = self { connection } else { nil }
    }

    /// The error, if this is ``failed(_:)``.
    public var error: SocketError? {
        if case .failed(let error) = self { error } else { nil }
    }
}

/// Rejects a connection handed to the callback and moves on to the next target (Perl: the `$retry` argument).
///
/// Call it as a function: `retry()`. It may be called from any thread; it closes the connection it belongs to
/// and lets ``tcpConnect(host:service:on:resolver:prepare:connect:)`` try the next target. Only the first call counts.
/// If the guard was cancelled in the meantime, the connection is closed and nothing else happens.
public struct TCPConnectRetry: Sendable {
    let connector: NIOLoopBoundBox<TCPConnector>
    let attempt: Int
    let channel: any Channel

    /// Closes this connection and tries the next target.
    public func callAsFunction() {
        let connector = self.connector
        let attempt = self.attempt
        let channel = self.channel
        if connector.eventLoop.inEventLoop {
            connector.value.retry(attempt: attempt, channel: channel)
        } else {
            connector.eventLoop.execute { connector.value.retry(attempt: attempt, channel: channel) }
        }
    }
}

/// One failed connection attempt: the target that was tried and why it failed.
public struct TCPConnectAttemptFailure: Sendable, CustomStringConvertible {
    /// The target that was tried.
    public let target: ConnectTarget
    /// Why it failed (`ECONNREFUSED`, `ETIMEDOUT`, `ECONNABORTED` when the callback called `retry`, ...).
    public let error: SocketError

    /// Creates a record of one failed attempt.
    public init(target: ConnectTarget, error: SocketError) {
        self.target = target
        self.error = error
    }

    /// The target as Perl writes it (`host port`) and the error.
    public var description: String { "\(target.perlHost) \(target.perlService): \(error)" }
}

/// Every failed attempt of one ``tcpConnect(host:service:on:resolver:prepare:connect:)``, in order; stored as the
/// ``SocketError/underlying`` error of the final failure (compare NIO's `NIOConnectionError`).
public struct TCPConnectFailures: Error, Sendable, CustomStringConvertible {
    /// The attempts, first to last.
    public let attempts: [TCPConnectAttemptFailure]

    /// Creates the list.
    public init(attempts: [TCPConnectAttemptFailure]) { self.attempts = attempts }

    /// Every attempt, separated by `; `.
    public var description: String { attempts.map(\.description).joined(separator: "; ") }
}

extension SocketError {
    /// The failed attempts of a ``tcpConnect(host:service:on:resolver:prepare:connect:)`` failure, first to last; empty when
    /// nothing was tried (for example when the host did not resolve) or for other errors.
    public var connectAttemptFailures: [TCPConnectAttemptFailure] {
        (underlying as? TCPConnectFailures)?.attempts ?? []
    }
}

/// The prepare callback of ``tcpConnect(host:service:on:resolver:prepare:connect:)`` (Perl: `$prepare_cb`).
///
/// It runs on the event loop before each attempt, with the channel created for it: not yet registered nor
/// connected, options already applied. It may set socket options (`channel.syncOptions`) or bind the socket
/// (`channel.bind(to:)`), and returns the timeout for this attempt: `nil`, `.zero` or a negative amount choose
/// ``TCPConnectGuard/defaultAttemptTimeout``. Throwing fails this attempt with the thrown error (mapped to a
/// ``SocketError``) and moves on to the next target.
public typealias TCPConnectPrepare = @Sendable (_ channel: any Channel) throws -> TimeAmount?

/// Keeps a pending ``tcpConnect(host:service:on:resolver:prepare:connect:)`` alive (Perl: the guard `tcp_connect` returns).
///
/// Calling ``cancel()``, or dropping the last reference, aborts a connect in progress: a lookup is abandoned, an
/// in-flight socket is closed, and the callback will not run any more. Once the callback got a connection, the
/// guard does nothing to that socket; keeping the guard is then only needed if you may call `retry`.
public final class TCPConnectGuard: Sendable {
    /// The timeout of an attempt when `prepare` gives none: 30 seconds.
    ///
    /// Perl leaves the attempt to the kernel (about two minutes on Linux) and imposes 30 seconds only on Windows;
    /// here every attempt has a finite timeout, and the kernel may give up earlier with `ETIMEDOUT` itself.
    public static let defaultAttemptTimeout: TimeAmount = .seconds(30)

    /// The event loop the callbacks run on.
    public let eventLoop: any EventLoop
    let connector: NIOLoopBoundBox<TCPConnector>
    let cancelled: TCPLockedBox<Bool>

    init(connector: NIOLoopBoundBox<TCPConnector>, cancelled: TCPLockedBox<Bool>) {
        self.eventLoop = connector.eventLoop
        self.connector = connector
        self.cancelled = cancelled
    }

    /// Whether ``cancel()`` was called (or the guard is being dropped).
    public var isCancelled: Bool { cancelled.withLock { $0 } }

    /// Aborts the connect if it is still in progress; after a success it leaves the socket alone.
    ///
    /// Safe to call from any thread and more than once. No callback starts after `cancel()` returns (a callback
    /// already running on the event loop finishes normally).
    public func cancel() {
        let wasCancelled = cancelled.withLock { value in
            defer { value = true }
            return value
        }
        guard !wasCancelled else { return }
        let connector = self.connector
        if connector.eventLoop.inEventLoop {
            connector.value.cancel()
        } else {
            connector.eventLoop.execute { connector.value.cancel() }
        }
    }

    deinit { cancel() }
}

/// Connects to a host and service, trying every target in turn (Perl: `tcp_connect`).
///
/// The host and service are resolved with the rules of AnyEvent::Socket (numeric or named hosts, numeric ports,
/// service names, `name=port`, SRV records when both are names; `host: "unix/"` with the socket path as the
/// service connects to a Unix-domain socket). The targets are tried one after the other; before each attempt
/// `prepare` runs with the fresh socket and returns that attempt's timeout.
///
/// `connect` is called once with ``TCPConnectOutcome/connected(_:retry:)`` (a ``TCPConnection`` whose channel has
/// an empty pipeline and `autoRead` off) or with ``TCPConnectOutcome/failed(_:)``; it is called again only if you
/// call `retry`. All callbacks run on `eventLoop`.
///
/// ```swift
/// let pending = tcpConnect(host: "127.0.0.1", service: "4040") { outcome in
///     switch outcome {
///     case .connected(let connection, _): print("connected to \(connection.peerHost)")
///     case .failed(let error): print("connect failed: \(error)")
///     }
/// }
/// ```
///
/// - Important: The returned guard aborts the connect when it is dropped, so keep it (for example in a property)
///   until the callback ran. Perl's void-context call has no guard; `_ = tcpConnect(...)` aborts at once. Use the
///   `async` form if you do not want to hold a guard.
/// - Parameters:
///   - host: A host name, a textual IP address, or `"unix/"`.
///   - service: A port number, a service name, `name=port`, or a socket path for `"unix/"`.
///   - eventLoop: The loop the sockets and callbacks live on; default `MultiThreadedEventLoopGroup.singleton.next()`.
///     It must be a NIOPosix loop, or the callback gets `EINVAL`.
///   - resolver: The resolver for names, services and SRV records; ``DNSResolver/shared`` (the system's
///     `/etc/resolv.conf`, `/etc/hosts` and `/etc/services`) by default.
///   - prepare: Called before each attempt; see ``TCPConnectPrepare``.
///   - connect: Receives the outcome.
/// - Returns: The guard that keeps the connect going.
public func tcpConnect(
    host: String,
    service: String,
    on eventLoop: (any EventLoop)? = nil,
    resolver: DNSResolver = .shared,
    prepare: TCPConnectPrepare? = nil,
    connect: @escaping @Sendable (TCPConnectOutcome) -> Void
) -> TCPConnectGuard {
    let targets: TCPConnector.Targets =
        if let immediate = DNSResolver.immediateConnectTargets(host: host, service: service) {
            .given(immediate)
        } else {
            .resolve(host: host, service: service, resolver: resolver)
        }
    let connector = TCPConnector.start(
        targets: targets,
        on: eventLoop ?? MultiThreadedEventLoopGroup.singleton.next(),
        prepare: prepare,
        connect: connect
    )
    return connector
}

/// Connects to the given targets in order; the entry point behind the host/service form, also used by tests.
func tcpConnect(
    targets: [ConnectTarget],
    on eventLoop: (any EventLoop)? = nil,
    prepare: TCPConnectPrepare? = nil,
    connect: @escaping @Sendable (TCPConnectOutcome) -> Void
) -> TCPConnectGuard {
    TCPConnector.start(
        targets: .given(targets),
        on: eventLoop ?? MultiThreadedEventLoopGroup.singleton.next(),
        prepare: prepare,
        connect: connect
    )
}

/// Connects to a host and service and returns the first connection (Perl: `tcp_connect`, as an `async` call).
///
/// The same as ``tcpConnect(host:service:on:resolver:prepare:connect:)`` without `retry`: the first target that accepts
/// wins. Cancelling the task aborts the connect (an in-flight socket is closed) and throws `ECANCELED`
/// (``SocketError/Code/cancelled``).
///
/// ```swift
/// let connection = try await tcpConnect(host: "::1", service: "4040")
/// ```
/// - Parameters:
///   - host: A host name, a textual IP address, or `"unix/"`.
///   - service: A port number, a service name, `name=port`, or a socket path for `"unix/"`.
///   - eventLoop: The loop the socket lives on; default `MultiThreadedEventLoopGroup.singleton.next()`.
///   - resolver: The resolver for names, services and SRV records; ``DNSResolver/shared`` by default.
///   - prepare: Called before each attempt; see ``TCPConnectPrepare``.
/// - Returns: The connection (empty pipeline, `autoRead` off).
/// - Throws: ``SocketError``: `ENXIO` when nothing resolved, the last attempt's code otherwise, `ECANCELED` when
///   the task was cancelled.
public func tcpConnect(
    host: String,
    service: String,
    on eventLoop: (any EventLoop)? = nil,
    resolver: DNSResolver = .shared,
    prepare: TCPConnectPrepare? = nil
) async throws(SocketError) -> TCPConnection {
    try await awaitConnection { connect in
        tcpConnect(host: host, service: service, on: eventLoop, resolver: resolver, prepare: prepare, connect: connect)
    }
}

/// The `async` form of ``tcpConnect(targets:on:prepare:connect:)``.
func tcpConnect(
    targets: [ConnectTarget],
    on eventLoop: (any EventLoop)? = nil,
    prepare: TCPConnectPrepare? = nil
) async throws(SocketError) -> TCPConnection {
    try await awaitConnection { connect in
        tcpConnect(targets: targets, on: eventLoop, prepare: prepare, connect: connect)
    }
}

/// Bridges a callback connect to `async`, honouring task cancellation.
private func awaitConnection(
    _ start: (@escaping @Sendable (TCPConnectOutcome) -> Void) -> TCPConnectGuard
) async throws(SocketError) -> TCPConnection {
    typealias Continuation = CheckedContinuation<Result<TCPConnection, SocketError>, Never>
    struct State {
        var continuation: Continuation?
        var pending: TCPConnectGuard?
        var cancelled = false
    }
    let state = TCPLockedBox(State())
    let result = await withTaskCancellationHandler {
        await withCheckedContinuation { (continuation: Continuation) in
            let alreadyCancelled = state.withLock { state in
                if state.cancelled { return true }
                state.continuation = continuation
                return false
            }
            if alreadyCancelled {
                continuation.resume(returning: .failure(SocketError(.cancelled, "connect cancelled")))
                return
            }
            let pending = start { outcome in
                let (continuation, pending) = state.withLock { state in
                    defer {
                        state.continuation = nil
                        state.pending = nil
                    }
                    return (state.continuation, state.pending)
                }
                switch outcome {
                case .connected(let connection, _):
                    if let continuation {
                        continuation.resume(returning: .success(connection))
                    } else {
                        connection.channel.close(promise: nil)
                    }
                case .failed(let error):
                    continuation?.resume(returning: .failure(error))
                }
                _ = pending  // released here, after the outcome was delivered
            }
            let keep = state.withLock { state -> Bool in
                guard state.continuation != nil else { return false }
                state.pending = pending
                return true
            }
            if !keep { _ = pending }
        }
    } onCancel: {
        let (continuation, pending) = state.withLock { state in
            state.cancelled = true
            defer {
                state.continuation = nil
                state.pending = nil
            }
            return (state.continuation, state.pending)
        }
        pending?.cancel()
        continuation?.resume(returning: .failure(SocketError(.cancelled, "connect cancelled")))
    }
    return try result.get()
}

/// A value behind a mutex, for the little state shared between the event loop and other threads.
final class TCPLockedBox<Value>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: consuming sending Value) {
        mutex = Mutex(value)
    }

    func withLock<Result>(_ body: (inout sending Value) throws -> sending Result) rethrows -> sending Result {
        try mutex.withLock(body)
    }
}
