import NIOCore
import Synchronization

/// Buffered, event-driven stream I/O on a connected channel. Perl: `AnyEvent::Handle`.
///
/// A handle owns a read buffer with a queue of readers (``pushRead(_:_:)``), a write buffer
/// (``pushWrite(_:)-(ByteBuffer)``), inactivity timers and the callbacks of ``HandleOptions``.
/// All callbacks run on the channel's event loop, one at a time, as in AnyEvent.
///
/// Threading: methods that take closures must be called on the handle's event loop (inside a
/// callback, or after hopping there); the others may be called from anywhere and hop to the
/// loop when needed. On the loop every method acts at once and may call callbacks before it
/// returns, exactly like the Perl methods ("this method may invoke callbacks").
///
/// ```swift
/// let handle = Handle(channel: channel, options: options)   // on channel.eventLoop
/// handle.pushWrite("HELLO\n")
/// handle.pushRead(.line()) { handle, line in print(line.string) }
/// ```
///
/// Dropping the last reference destroys the handle (pending writes still go out, see
/// ``HandleOptions/linger``).
public final class Handle: Sendable {
    /// The event loop all callbacks run on.
    public let eventLoop: any EventLoop
    /// The allocator for buffers written through this handle.
    public let allocator: ByteBufferAllocator
    let bound: NIOLoopBound<HandleCore>
    /// Set by ``destroy()`` on any thread, before the destroy itself runs on the loop, and by every
    /// destroy on the loop.
    let destroyRequested = Atomic<Bool>(false)

    /// Adopts a connected channel (empty pipeline, `autoRead` off) and starts the handle.
    ///
    /// Perl: `AnyEvent::Handle->new (fh => $fh, ...)`. Must be called on `channel.eventLoop`. This may
    /// call `onDrain` before it returns.
    /// - Parameters:
    ///   - channel: a connected stream channel.
    ///   - options: settings and callbacks.
    public convenience init(channel: any Channel, options: HandleOptions = HandleOptions()) {
        self.init(unattachedOn: channel.eventLoop, allocator: channel.allocator, options: options)
        core.attach(channel)
    }

    /// A handle without a channel yet (the `connect:` form): reads and writes queue up, nothing
    /// drains, no timer runs, until ``HandleCore/attach(_:)``. Must be called on `eventLoop`.
    init(unattachedOn eventLoop: any EventLoop, allocator: ByteBufferAllocator, options: HandleOptions) {
        eventLoop.preconditionInEventLoop()
        self.eventLoop = eventLoop
        self.allocator = allocator
        let core = HandleCore(eventLoop: eventLoop, allocator: allocator, options: options)
        self.bound = NIOLoopBound(core, eventLoop: eventLoop)
        core.facade = self
    }

    /// The adopted channel (Perl: `fh`); `nil` while connecting. Loop only.
    public var channel: (any Channel)? { core.channel }

    deinit {
        // Destroyed already (or on its way there): no hop, the loop may be gone by now.
        if destroyRequested.load(ordering: .relaxed) { return }
        let bound = self.bound
        if eventLoop.inEventLoop {
            bound.value.destroy()
        } else {
            eventLoop.execute { bound.value.destroy() }
        }
    }

    var core: HandleCore { bound.value }

    /// Runs `body` on the loop: at once when already there, otherwise later.
    func perform(_ body: @escaping @Sendable (HandleCore) -> Void) {
        if eventLoop.inEventLoop {
            body(bound.value)
        } else {
            let bound = self.bound
            eventLoop.execute { body(bound.value) }
        }
    }

    // MARK: Writing

    /// Queues raw bytes for writing. Perl: `push_write ($data)`.
    ///
    /// Without autocork the bytes are written at once when the buffer was empty, and `onDrain` may run
    /// before this returns.
    public func pushWrite(_ data: ByteBuffer) {
        perform { $0.pushWrite(data) }
    }

    /// Queues the UTF-8 bytes of `string`. Perl: `push_write ($data)`.
    public func pushWrite(_ string: String) {
        pushWrite(allocator.buffer(string: string))
    }

    /// Queues `bytes`. Perl: `push_write ($data)`.
    public func pushWrite(bytes: some Sequence<UInt8>) {
        pushWrite(allocator.buffer(bytes: bytes))
    }

    /// Encodes a value with a write type and queues it. Perl: `push_write (type => @args)`.
    /// - Throws: the writer's ``HandleError``; nothing is queued then.
    ///
    /// On the loop the value is encoded straight into the write buffer
    /// (``pushWrite(encoding:)``); from another thread it is encoded first, then handed over.
    public func pushWrite(_ writer: some HandleWriter) throws(HandleError) {
        if eventLoop.inEventLoop {
            try core.pushWrite { (buffer: inout ByteBuffer) throws(HandleError) in try writer.write(into: &buffer) }
            return
        }
        var buffer = allocator.buffer(capacity: 64)
        try writer.write(into: &buffer)
        pushWrite(buffer)
    }

    /// Queues the bytes that `body` appends to the write buffer, without an intermediate buffer.
    /// Perl: `push_write ($data)` with the data built in place. Loop only.
    ///
    /// While a write is outstanding or scheduled, with ``HandleOptions/autocork``, or while connecting,
    /// `body` appends directly to the pending buffer: no allocation and no copy per message, and all
    /// messages queued in one loop tick go out together in one channel write. Otherwise `body` encodes
    /// into a fresh buffer that is written at once, exactly as ``pushWrite(_:)-(ByteBuffer)`` does.
    /// `wbuf_max` (`ENOSPC`), `onDrain`, the low water mark and linger behave as for
    /// ``pushWrite(_:)-(ByteBuffer)``. After ``destroy()`` nothing happens and `body` is not called.
    ///
    /// ```swift
    /// handle.pushWrite { buffer in
    ///     buffer.writeInteger(UInt32(payload.readableBytes))
    ///     buffer.writeImmutableBuffer(payload)
    /// }
    /// ```
    ///
    /// - Parameter body: appends the bytes to write; it must only append (never read or move the
    ///   reader index) and must not call into the handle.
    /// - Throws: what `body` throws; then nothing that `body` appended stays queued.
    public func pushWrite(encoding body: (inout ByteBuffer) throws -> Void) rethrows {
        try core.pushWrite(encoding: body)
    }

    /// Shuts the write side down once everything queued is written. Perl: `push_shutdown`.
    ///
    /// Replaces `onDrain` and sets the low water mark to 0.
    public func pushShutdown() {
        perform { $0.pushShutdown() }
    }

    /// Bytes queued but not yet written (Perl: `length $handle->{wbuf}`). Loop only.
    public var writeBufferLength: Int { core.writeBufferLength }

    // MARK: Reading

    /// Appends a typed read to the queue. Perl: `push_read (type => @args, $cb)`. Loop only.
    ///
    /// Data already buffered is served at once, so `callback` may run before this returns.
    public func pushRead<R: HandleReader>(_ reader: R, _ callback: @escaping (Handle, R.Output) -> Void) {
        let core = self.core
        core.enqueue(core.makeEntry(reader, callback), atFront: false)
    }

    /// Prepends a typed read to the queue. Perl: `unshift_read (type => @args, $cb)`. Loop only.
    public func unshiftRead<R: HandleReader>(_ reader: R, _ callback: @escaping (Handle, R.Output) -> Void) {
        let core = self.core
        core.enqueue(core.makeEntry(reader, callback), atFront: true)
    }

    /// Appends an untyped read. Perl: `push_read ($cb)`. Loop only.
    ///
    /// `callback` runs on each attempt, looks at ``readBuffer``, removes what it uses with
    /// ``consume(_:)`` and returns `true` when done (it is then removed from the queue).
    public func pushRead(raw callback: @escaping (Handle) -> Bool) {
        core.enqueue(rawEntry(callback), atFront: false)
    }

    /// Prepends an untyped read. Perl: `unshift_read ($cb)`. Loop only.
    public func unshiftRead(raw callback: @escaping (Handle) -> Bool) {
        core.enqueue(rawEntry(callback), atFront: true)
    }

    private func rawEntry(_ callback: @escaping (Handle) -> Bool) -> HandleCore.ReadEntry {
        HandleCore.ReadEntry { core in
            guard let handle = core.facade else { return true }
            return callback(handle)
        }
    }

    /// The read buffer (Perl: `$handle->{rbuf}`). Loop only; the value shares storage, no copy.
    public var readBuffer: ByteBuffer { core.readBuffer }

    /// Removes up to `count` bytes from the front of the read buffer (Perl:
    /// `substr $handle->{rbuf}, 0, $count, ""`). Loop only.
    public func consume(_ count: Int) {
        core.consume(count)
    }

    /// Direct access to the read buffer (Perl: the `$handle->{rbuf}` lvalue), for `onRead` and raw
    /// reads. Only remove bytes from the front (read or move the reader index); never append. Loop only.
    public func withReadBuffer<T>(_ body: (inout ByteBuffer) throws -> T) rethrows -> T {
        let core = self.core
        let before = core.readBuffer.readerIndex
        defer { if core.readBuffer.readerIndex != before { core.readEpoch &+= 1 } }
        return try body(&core.readBuffer)
    }

    /// Empties the read buffer (Perl: `$handle->{rbuf} = ""`). Loop only.
    public func consumeAll() {
        core.consume(core.readBuffer.readableBytes)
    }

    /// Stops reading from the socket (Perl: `stop_read`). Undone by any queued read, and by the
    /// next drain while `onRead` is set.
    public func stopRead() {
        perform { $0.stopRead() }
    }

    /// Starts reading (Perl: `start_read`). Without `onRead` or queued reads, one read fills the
    /// buffer and reading stops again.
    public func startRead() {
        perform { $0.startRead() }
    }

    // MARK: Lifetime

    /// Destroys the handle (Perl: `destroy`): no callback runs afterwards and later calls do nothing.
    /// Pending writes linger (``HandleOptions/linger``). Safe inside callbacks.
    public func destroy() {
        // From another thread the destroy reaches the loop a moment later; nothing reported in between
        // may reach a callback or the uncaught-error trap.
        destroyRequested.store(true, ordering: .relaxed)
        perform { $0.destroy() }
    }

    /// Whether ``destroy()`` ran, explicitly or after a fatal error (Perl: `destroyed`). Loop only.
    public var isDestroyed: Bool { core.destroyed }
}
