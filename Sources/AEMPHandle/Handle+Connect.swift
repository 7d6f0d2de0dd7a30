import AEMPSocket
import DequeModule
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Rejects the connection handed to `onConnect` and tries the next target. Perl: the `$retry`
/// argument of `on_connect`.
///
/// Call it as a function: `retry()`, from any thread, also after `onConnect` returned (for example
/// when a handshake failed). The handle forgets this connection first: its socket, read and write
/// queues, read buffer, end-of-file state and timers are reset (settings and callbacks stay), so the
/// next `onConnect` sees a fresh handle. When no target is left, `onConnectError` (or `onError`) runs.
/// Only the first call counts.
public struct HandleConnectRetry: Sendable {
    let handle: Handle
    let retry: TCPConnectRetry

    /// Closes this connection and tries the next target.
    public func callAsFunction() {
        let retry = self.retry
        handle.perform { core in
            if !core.destroyed { core.resetForRetry() }
            retry()
        }
    }
}

/// The callbacks of the `connect` form, kept on the handle's loop.
private struct ConnectCallbacks {
    var onPrepare: ((Handle, any Channel) -> Double?)?
    var onConnect: ((Handle, String, String, HandleConnectRetry) -> Void)?
    var onConnectError: ((Handle, HandleError) -> Void)?
}

extension Handle {
    /// Creates a handle at once and connects it to `host` and `service` in the background. Perl:
    /// `AnyEvent::Handle->new (connect => [$host, $service], on_prepare => ..., on_connect => ...,
    /// on_connect_error => ...)`.
    ///
    /// The connection is made by ``AEMPSocket/tcpConnect(host:service:on:resolver:prepare:connect:)``
    /// (every resolved target in turn; `"unix/"` with a socket path for a Unix-domain socket). While
    /// connecting, reads and writes may be queued and settings changed; nothing is written, read or
    /// timed until the connection is up. Then the handle starts as if created on the connected
    /// socket (queued writes go out, queued reads start, `onDrain` and timers start), and `onConnect`
    /// runs. ``destroy()`` (or dropping the handle) while connecting aborts the connect: no callback
    /// runs afterwards.
    ///
    /// `host` becomes the default ``HandleOptions/peername``.
    ///
    /// ```swift
    /// let handle = Handle(connectingTo: "127.0.0.1", service: "4040", on: loop,
    ///                     onConnect: { _, host, port, _ in print("connected to \(host) \(port)") },
    ///                     onConnectError: { _, error in print("failed: \(error.message)") })
    /// handle.pushWrite("HELLO\n")   // queued, sent once connected
    /// ```
    ///
    /// Must be called on `eventLoop`; all callbacks run there.
    /// - Parameters:
    ///   - host: a host name, a textual IP address, or `"unix/"`.
    ///   - service: a port, a service name, or the socket path for `"unix/"`.
    ///   - eventLoop: the handle's loop (a NIOPosix loop).
    ///   - resolver: the resolver for names and services.
    ///   - options: settings and callbacks (as for any handle).
    ///   - onPrepare: Perl `on_prepare ($handle)`: runs before each attempt with the fresh, not yet
    ///     connected channel (Perl's `$handle->{fh}` at that moment) and returns the connect timeout in
    ///     seconds; `nil` or `0` choose the default (``AEMPSocket/TCPConnectGuard/defaultAttemptTimeout``).
    ///   - onConnect: Perl `on_connect ($handle, $host, $port, $retry)`: the peer's numeric host and
    ///     port (for a Unix-domain socket `"unix/"` and the path) and the ``HandleConnectRetry``.
    ///   - onConnectError: Perl `on_connect_error ($handle, $message)`: no target could be connected.
    ///     The error carries the code (`ENXIO` when nothing resolved, otherwise the last attempt's
    ///     `ECONNREFUSED`, `ETIMEDOUT`, ...) and the system text as message. The handle is destroyed
    ///     after it returns. Without it, `onError` gets the same error as fatal.
    public convenience init(
        connectingTo host: String,
        service: String,
        on eventLoop: any EventLoop,
        resolver: DNSResolver = .shared,
        options: HandleOptions = HandleOptions(),
        onPrepare: ((Handle, any Channel) -> Double?)? = nil,
        onConnect: ((Handle, _ host: String, _ port: String, HandleConnectRetry) -> Void)? = nil,
        onConnectError: ((Handle, HandleError) -> Void)? = nil
    ) {
        self.init(unattachedOn: eventLoop, allocator: ByteBufferAllocator(), options: options)
        let core = self.core
        if core.peername == nil { core.peername = host }
        let callbacks = NIOLoopBound(
            ConnectCallbacks(onPrepare: onPrepare, onConnect: onConnect, onConnectError: onConnectError),
            eventLoop: eventLoop)
        var prepare: TCPConnectPrepare?
        if onPrepare != nil {
            prepare = { [weak self] channel in
                guard let handle = self, !handle.core.destroyed,
                    let seconds = callbacks.value.onPrepare?(handle, channel),
                    seconds > 0, seconds.isFinite
                else { return nil }
                return .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
            }
        }
        core.connectGuard = tcpConnect(
            host: host, service: service, on: eventLoop, resolver: resolver, prepare: prepare
        ) { [weak self] outcome in
            guard let handle = self else {
                outcome.connection?.channel.close(promise: nil)
                return
            }
            handle.connectFinished(outcome, callbacks.value)
        }
    }

    /// Perl's `tcp_connect` callback inside `new`: start on the connection, or report the failure.
    private func connectFinished(_ outcome: TCPConnectOutcome, _ callbacks: ConnectCallbacks) {
        let core = self.core
        switch outcome {
        case .connected(let connection, let retry):
            guard !core.destroyed, core.channel == nil else {
                connection.channel.close(promise: nil)
                return
            }
            guard core.attach(connection.channel) else {
                connection.channel.close(promise: nil)
                return
            }
            if core.destroyed { return }
            callbacks.onConnect?(
                self, connection.peerHost, connection.peerService, HandleConnectRetry(handle: self, retry: retry))
        case .failed(let error):
            guard !core.destroyed else { return }
            let failure = HandleError(.init(errno: error.code.errno), fatal: true)
            if let onConnectError = callbacks.onConnectError {
                core.destroyError = failure
                onConnectError(self, failure)
                core.destroy()
            } else {
                core.reportError(failure)
            }
        }
    }

    /// Connects to `host` and `service` and returns the started handle. Perl: `AnyEvent::Handle->new
    /// (connect => [$host, $service], ...)`, awaiting `on_connect`.
    ///
    /// The first target that accepts wins (there is no retry here). Cancelling the task aborts the
    /// connect and throws `ECANCELED`. `host` becomes the default ``HandleOptions/peername``.
    ///
    /// ```swift
    /// let handle = try await Handle.connect(host: "::1", service: "4040")
    /// try await handle.write(ByteBuffer(string: "HELLO\n"))
    /// ```
    /// - Parameters:
    ///   - host: a host name, a textual IP address, or `"unix/"`.
    ///   - service: a port, a service name, or the socket path for `"unix/"`.
    ///   - eventLoop: the handle's loop; default `MultiThreadedEventLoopGroup.singleton.next()`.
    ///   - resolver: the resolver for names and services.
    ///   - prepare: Perl `on_prepare`: runs before each attempt with the fresh channel and returns
    ///     the attempt's timeout (`nil` for the default).
    ///   - options: settings and callbacks, built on the handle's loop.
    /// - Returns: the connected, started handle.
    /// - Throws: ``HandleError`` (fatal) with the connect's code: `ENXIO` when nothing resolved,
    ///   `ECONNREFUSED`, `ETIMEDOUT`, any other `errno` of the last attempt, `ECANCELED` when cancelled.
    public static func connect(
        host: String,
        service: String,
        on eventLoop: (any EventLoop)? = nil,
        resolver: DNSResolver = .shared,
        prepare: TCPConnectPrepare? = nil,
        options: @escaping @Sendable () -> HandleOptions = { HandleOptions() }
    ) async throws(HandleError) -> Handle {
        let connection: TCPConnection
        do {
            connection = try await tcpConnect(
                host: host, service: service, on: eventLoop, resolver: resolver, prepare: prepare)
        } catch {
            throw HandleError(.init(errno: error.code.errno), message: error.message, fatal: true)
        }
        do {
            return try await make(channel: connection.channel) {
                var settings = options()
                if settings.peername == nil { settings.peername = host }
                return settings
            }.get()
        } catch {
            connection.channel.close(promise: nil)
            throw HandleCore.mapError(error)
        }
    }
}

extension HandleCore: RemovableChannelHandler {}

extension HandleCore {
    /// Forgets the current connection for a connect retry (Perl: the wrapped `$retry` deletes the file
    /// handle, watchers, end-of-file state, read queue, read buffer and write buffer).
    ///
    /// The core leaves the old pipeline first, so nothing the old channel reports afterwards reaches
    /// it; closing the old channel then fails its outstanding writes while ``destroyed`` is set, which
    /// makes their completions only count down. Async readers and writers waiting on the old
    /// connection fail with `ECONNABORTED`.
    func resetForRetry() {
        guard let old = channel else { return }
        old.pipeline.syncOperations.removeHandler(self, promise: nil)
        destroyed = true
        old.close(promise: nil)
        destroyed = false
        channel = nil
        inflight = 0
        corked = nil
        flushScheduled = false
        writeProgressMark = 0
        outputShut = false
        closeScheduled = false
        channelClosed = false
        cancelTimers()
        reading = false
        sawEOF = false
        stash = nil
        stashEnd = nil
        readBuffer = allocator.buffer(capacity: 0)
        readEpoch &+= 1
        let aborted = HandleError(.init(errno: ECONNABORTED), message: "connection retried", fatal: true)
        failWaiters(aborted)
        queuedTotal = 0
        writtenTotal = 0
    }
}
