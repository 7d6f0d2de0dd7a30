import AEMPSocket
import DequeModule
import NIOCore
import Synchronization
import NIOSSL
import NIOTLS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The loop-confined state of a ``Handle``: read buffer, read queue, write accounting and timers.
///
/// It is the channel's only handler (TLS and other protocol handlers would sit in front of it).
/// Reading is driven by hand (`autoRead` off, one socket read per readable event, like Perl's read
/// watcher); bytes that the channel delivers while the handle is not reading (NIO drains the socket
/// when it sees the peer's end of file) wait in `stash`, which plays the kernel's receive buffer.
///
/// Every property is touched only on the handle's event loop, one access at a time, so the stored
/// properties are declared `@exclusivity(unchecked)`: the runtime's dynamic exclusivity checks
/// (a thread-local access set consulted on each access) cost about a tenth of a message round trip's
/// user-space instructions (Benchmarks/cost-model.sh).
final class HandleCore: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// The adopted channel; `nil` until connected (Perl: `fh`).
    @exclusivity(unchecked) var channel: (any Channel)?
    let eventLoop: any EventLoop
    let allocator: ByteBufferAllocator
    /// The public face passed to callbacks. Weak: dropping the last user reference destroys.
    weak var facade: Handle?

    // Settings (Perl: the hash keys of the same name).
    @exclusivity(unchecked) var readSize: Int
    @exclusivity(unchecked) var maxReadSize: Int
    @exclusivity(unchecked) var readBufferMax: Int?
    @exclusivity(unchecked) var writeBufferMax: Int?
    @exclusivity(unchecked) var lowWaterMark: Int
    @exclusivity(unchecked) var autocork: Bool
    @exclusivity(unchecked) var linger: Double
    @exclusivity(unchecked) var peername: String?
    @exclusivity(unchecked) var socketFlags: (noDelay: Bool, keepalive: Bool, oobInline: Bool)

    // Callbacks.
    @exclusivity(unchecked) var onError: ((Handle, HandleError) -> Void)?
    @exclusivity(unchecked) var onRead: ((Handle) -> Void)?
    @exclusivity(unchecked) var onEof: ((Handle) -> Void)?
    @exclusivity(unchecked) var onDrain: DrainAction?
    @exclusivity(unchecked) var onTimeout: [((Handle) -> Void)?] = [nil, nil, nil]
    /// Called instead of trapping when a fatal error has no `onError` (tests only).
    @exclusivity(unchecked) var uncaughtErrorHook: ((String) -> Void)?
    /// The facade, held while ``Handle/keepOpenUntilDestroyed()`` asks for it; dropped by destroy.
    @exclusivity(unchecked) var keeper: Handle?

    // Read side.
    @exclusivity(unchecked) var readBuffer: ByteBuffer
    @exclusivity(unchecked) var readQueue: Deque<ReadEntry> = []
    /// Perl `_rw`: the handle wants socket reads.
    @exclusivity(unchecked) var reading = false
    /// Perl `_eof`: end of file was read.
    @exclusivity(unchecked) var sawEOF = false
    /// Perl `_skip_drain_rbuf`: a drain is running.
    @exclusivity(unchecked) var draining = false
    /// Bumped whenever bytes leave the front of the read buffer, so readers can tell when their
    /// scan positions went stale.
    @exclusivity(unchecked) var readEpoch: UInt64 = 0
    @exclusivity(unchecked) var stash: ByteBuffer?
    /// How the emulated kernel buffer ends (first one wins).
    @exclusivity(unchecked) var stashEnd: StashEnd?
    @exclusivity(unchecked) var stashReadScheduled = false
    @exclusivity(unchecked) var channelClosed = false

    // Write side.
    @exclusivity(unchecked) var inflight = 0
    @exclusivity(unchecked) var corked: ByteBuffer?
    /// The last buffer handed to the channel, kept to encode the next message into once the channel
    /// has let go of it (`clear()` reuses storage nobody else holds), so that a connection that
    /// writes one message per tick does not allocate a buffer per message.
    @exclusivity(unchecked) var spareWriteBuffer: ByteBuffer?
    /// ``queuedTotal`` when `on_drain` was last called with nothing left to write (`nil`: not since).
    @exclusivity(unchecked) var drainReportedEmptyAt: UInt64?
    /// ``channelOutstanding`` when write activity was last recorded: partial writes in between count
    /// as activity for `wtimeout`, as each successful `syswrite` does in Perl.
    @exclusivity(unchecked) var writeProgressMark = 0
    @exclusivity(unchecked) var flushScheduled = false
    /// Inside ``channelRead(context:data:)`` (nesting depth): a corked flush waits for its end.
    @exclusivity(unchecked) var readDispatchDepth = 0
    /// A corked flush is due at the end of the current ``channelRead(context:data:)``.
    @exclusivity(unchecked) var flushAfterRead = false
    @exclusivity(unchecked) var outputShut = false

    // Timers (index: HandleTimeoutKind.rawValue).
    @exclusivity(unchecked) var timeouts: [Double] = [0, 0, 0]
    @exclusivity(unchecked) var activity: [NIODeadline]
    @exclusivity(unchecked) var timers: [Scheduled<Void>?] = [nil, nil, nil]

    // TLS (HandleCore+TLS.swift).
    @exclusivity(unchecked) var tlsSettings: TLSSettings
    /// The TLS session while the channel has a TLS handler (Perl: `tls`).
    @exclusivity(unchecked) var tls: TLSSession?
    /// Writes wait in the pending buffer while TLS is being unwrapped.
    @exclusivity(unchecked) var writesHeld = false

    @exclusivity(unchecked) var destroyed = false
    /// The pending connect of the `connect` form (Perl `_connect`); cancelled by ``destroy()``.
    @exclusivity(unchecked) var connectGuard: TCPConnectGuard?
    @exclusivity(unchecked) var closeScheduled = false
    /// The fatal error that destroyed the handle, handed to async waiters.
    @exclusivity(unchecked) var destroyError: HandleError?
    @exclusivity(unchecked) var nextEntryID: UInt64 = 1
    @exclusivity(unchecked) var queuedTotal: UInt64 = 0
    @exclusivity(unchecked) var writtenTotal: UInt64 = 0
    /// All bytes received from the channel so far (after TLS: plaintext).
    @exclusivity(unchecked) var receivedTotal: UInt64 = 0
    /// Thread-safe copies of the byte counts, when someone asked (``Handle/countBytes(into:)``).
    @exclusivity(unchecked) var totals: HandleTotals?
    @exclusivity(unchecked) var writeWaiters: Deque<WriteWaiter> = []

    enum DrainAction {
        case user((Handle) -> Void)
        case shutdown
    }

    enum StashEnd {
        case eof
        case error(HandleError)
    }

    struct ReadEntry {
        /// One attempt: `true` when done (remove from the queue), `false` when more bytes are needed.
        let step: any ReadStep
        /// For reads awaited through the async API: an id (to cancel) and how to fail the waiter.
        var id: UInt64 = 0
        var fail: ((any Error) -> Void)?

        init(step: any ReadStep) { self.step = step }

        /// Wraps a closure (untyped reads).
        init(_ run: @escaping (HandleCore) -> Bool) { self.step = ClosureReadStep(run) }

        func run(_ core: HandleCore) -> Bool { step.run(core) }
    }

    /// Stores settings and callbacks; nothing runs until ``attach(_:)``.
    init(eventLoop: any EventLoop, allocator: ByteBufferAllocator, options: HandleOptions) {
        self.eventLoop = eventLoop
        self.allocator = allocator
        self.readSize = max(1, options.readSize)
        self.maxReadSize = max(options.maxReadSize, 1)
        if self.readSize > self.maxReadSize { self.maxReadSize = self.readSize }
        self.readBufferMax = options.readBufferMax
        self.writeBufferMax = options.writeBufferMax
        self.lowWaterMark = options.lowWaterMark
        self.autocork = options.autocork
        self.linger = options.linger
        self.peername = options.peername
        self.socketFlags = (options.noDelay, options.keepalive, options.oobInline)
        self.onError = options.onError
        self.onRead = options.onRead
        self.onEof = options.onEof
        self.onDrain = options.onDrain.map { .user($0) }
        self.onTimeout = [options.onTimeout, options.onReadTimeout, options.onWriteTimeout]
        self.timeouts = [options.timeout, options.readTimeout, options.writeTimeout]
        self.tlsSettings = TLSSettings(options)
        self.readBuffer = allocator.buffer(capacity: 0)
        let now = NIODeadline.now()
        self.activity = [now, now, now]
    }

    /// Adopts the connected channel and runs Perl's `_start`: socket options, timeouts, `on_drain`,
    /// reading when a reader is waiting, and writing what was queued while connecting.
    /// - Returns: `false` when the channel could not take the handler.
    @discardableResult
    func attach(_ channel: any Channel) -> Bool {
        do {
            try channel.pipeline.syncOperations.addHandler(self)
        } catch {
            destroyed = true
            return false
        }
        self.channel = channel
        configureChannel()
        if let mode = tlsSettings.mode { startTLS(mode, context: nil) }
        if destroyed { return true }
        let now = NIODeadline.now()
        activity = [now, now, now]
        for kind in HandleTimeoutKind.allCases where timeouts[kind.rawValue] > 0 {
            setTimeout(kind, timeouts[kind.rawValue])
        }
        if let drain = onDrain { setOnDrain(drain) }
        if !destroyed, onRead != nil || !readQueue.isEmpty { startRead() }
        if !destroyed, corked != nil, !flushScheduled, inflight == 0 { flushCorked() }
        return true
    }

    private func configureChannel() {
        guard let sync = channel?.syncOptions else { return }
        try? sync.setOption(ChannelOptions.autoRead, value: false)
        try? sync.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        try? sync.setOption(ChannelOptions.maxMessagesPerRead, value: 1)
        try? sync.setOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: readSize))
        applyLowWaterMark()
        if socketFlags.noDelay { setSocketFlag(Int32(IPPROTO_TCP), Int32(TCP_NODELAY), true) }
        if socketFlags.keepalive { setSocketFlag(SOL_SOCKET, SO_KEEPALIVE, true) }
        if socketFlags.oobInline { setSocketFlag(SOL_SOCKET, SO_OOBINLINE, true) }
    }

    /// Sets a boolean socket option, ignoring sockets that do not support it (pipes, Unix sockets).
    func setSocketFlag(_ level: Int32, _ name: Int32, _ on: Bool) {
        let option = ChannelOptions.Types.SocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: level), name: NIOBSDSocket.Option(rawValue: name))
        try? channel?.syncOptions?.setOption(option, value: on ? 1 : 0)
    }

    var hasAsyncWaiters: Bool {
        !writeWaiters.isEmpty || readQueue.contains { $0.fail != nil }
    }

    /// The write buffer length (Perl: `length $handle->{wbuf}`).
    ///
    /// Bytes handed to the channel count until the socket took them: the channel reports what a
    /// partial write left behind.
    var writeBufferLength: Int { channelOutstanding + (corked?.readableBytes ?? 0) }

    /// Bytes handed to the channel that the socket has not taken yet.
    var channelOutstanding: Int {
        guard inflight > 0, let sync = channel?.syncOptions,
            let buffered = try? sync.getOption(ChannelOptions.bufferedWritableBytes)
        else { return inflight }
        return min(inflight, buffered)
    }

    // MARK: Errors

    /// Perl `_error`: reports `error` and destroys the handle afterwards when fatal.
    func reportError(_ error: HandleError) {
        guard !destroyed else { return }
        guard let facade, !facade.destroyRequested.load(ordering: .relaxed) else {
            // destroy() was called on another thread and is on its way, or the handle was released
            // on another thread and its deinit's destroy is queued behind this: nobody to report to.
            destroy()
            return
        }
        if error.isFatal { destroyError = error }
        if let onError {
            onError(facade, error)
            if error.isFatal { destroy() }
        } else if hasAsyncWaiters {
            // An awaiting caller receives the error: no uncaught-error trap.
            destroyError = error
            destroy()
        } else {
            destroy()
            let message = "AnyEvent::Handle uncaught error: \(error.message)"
            if let hook = uncaughtErrorHook {
                hook(message)
            } else {
                preconditionFailure(message)
            }
        }
    }

    static func mapError(_ error: any Error) -> HandleError {
        if let io = error as? IOError {
            return HandleError(.init(errno: io.errnoCode), fatal: true)
        }
        if let handleError = error as? HandleError { return handleError }
        if let channelError = error as? ChannelError {
            switch channelError {
            case .ioOnClosedChannel, .outputClosed, .alreadyClosed, .eof:
                return HandleError(.brokenPipe, fatal: true)
            default:
                return HandleError(.init(errno: EIO), message: "\(channelError)", fatal: true)
            }
        }
        return HandleError(.init(errno: EIO), message: "\(error)", fatal: true)
    }

    // MARK: Destroy

    /// Perl `destroy`: no callback runs afterwards; pending writes linger unless `linger` is 0.
    func destroy() {
        guard !destroyed else { return }
        destroyed = true
        facade?.destroyRequested.store(true, ordering: .relaxed)
        connectGuard?.cancel()
        connectGuard = nil
        cancelTimers()
        onError = nil
        onRead = nil
        onEof = nil
        onDrain = nil
        onTimeout = [nil, nil, nil]
        let failure = destroyError ?? HandleError(.brokenPipe, message: "handle destroyed", fatal: true)
        failWaiters(failure)
        reading = false
        readBuffer = allocator.buffer(capacity: 0)
        stash = nil
        if linger > 0, writeBufferLength > 0, !channelClosed {
            flushCorked()
            if inflight > 0 {
                let seconds = linger
                eventLoop.assumeIsolated().scheduleTask(in: Self.amount(seconds)) { self.closeChannel() }
                keeper = nil
                return
            }
        }
        corked = nil
        closeChannel()
        keeper = nil
    }

    func closeChannel() {
        guard !closeScheduled else { return }
        closeScheduled = true
        if let session = tls, let context = try? channel?.pipeline.syncOperations.context(handler: session.handler) {
            // Perl frees the TLS session without a close notify: close below the TLS handler.
            context.close(promise: nil)
        } else {
            channel?.close(promise: nil)
        }
    }

    // MARK: ChannelInboundHandler

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        readDispatchDepth += 1
        receive(unwrapInboundIn(data))
        readDispatchDepth -= 1
        // Replies written by the read callbacks go out now, in one write, instead of in a task.
        if readDispatchDepth == 0, flushAfterRead {
            flushAfterRead = false
            corkedFlushTick()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            if tls != nil, tlsInputClosed() { return }
            receiveEOF()
        } else if let event = event as? TLSUserEvent {
            tlsEvent(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if tls != nil || Self.isTLSError(error) {
            tlsError(error)
            return
        }
        receiveError(Self.mapError(error))
    }

    /// With a low water mark, the channel reports when a pending write shrank to it (Perl calls
    /// `on_drain` after each `syswrite` that leaves at most `low_water_mark` bytes).
    /// Async write waiters are resumed there too, by the bytes the socket took so far.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard context.channel.isWritable, !destroyed else { return }
        if !writeWaiters.isEmpty {
            resumeWriteWaiters(upTo: writtenTotal &+ UInt64(inflight - channelOutstanding))
        }
        guard lowWaterMark > 0, drainIsDue else { return }
        callDrain()
    }

    func channelInactive(context: ChannelHandlerContext) {
        channelClosed = true
        receiveEOF()
    }
}

@available(*, unavailable)
extension HandleCore: Sendable {}
