import DequeModule
import NIOCore

/// Remembers, on the loop, which read entry or write waiter an awaiting call owns, so that its
/// cancellation handler can find it. Touched on the loop only.
final class AsyncWaitToken: @unchecked Sendable {
    /// The id of the registered entry; 0 until registered.
    var id: UInt64 = 0
    /// The cancellation arrived before the registration.
    var cancelled = false
}

/// The continuation of one awaiting call, resumed exactly once.
///
/// Resuming twice is impossible (the second resume does nothing). A waiter released without having
/// been resumed, for example inside a task that a shut-down event loop dropped, resumes its caller
/// with `EPIPE` instead of leaving it suspended forever.
final class AsyncWaiter<T>: @unchecked Sendable {
    private var continuation: CheckedContinuation<T, any Error>?

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = continuation
    }

    func resume(returning value: sending T) {
        continuation.take()?.resume(returning: value)
    }

    func resume(throwing error: any Error) {
        continuation.take()?.resume(throwing: error)
    }

    deinit {
        continuation?.resume(throwing: HandleError(.brokenPipe, message: "handle abandoned", fatal: true))
    }
}

extension Handle {
    /// Awaits one typed read. Perl: `push_read (type => ..., $cb)` as an async call.
    ///
    /// The read joins the same queue as callback reads. A reader error (`EBADMSG`) is thrown here and
    /// removes the read (it does not go to `onError`); a fatal error throws the error that destroyed
    /// the handle. Cancelling the task removes the read from the queue and throws `CancellationError`;
    /// bytes it had not consumed stay in the buffer.
    /// - Throws: ``HandleError`` or `CancellationError`.
    public func read<R: HandleReader & Sendable>(_ reader: R) async throws -> R.Output where R.Output: Sendable {
        try await awaitOnLoop(R.Output.self) { core, token, waiter in
            token.id = core.nextEntryID
            core.nextEntryID &+= 1
            core.enqueue(core.makeAsyncEntry(reader, id: token.id, waiter), atFront: false)
        }
    }

    /// Writes `data` and waits until it has been handed to the operating system. Perl: `push_write`
    /// followed by waiting for `on_drain`.
    ///
    /// The bytes are queued at once. Cancelling the waiting task ends the wait with
    /// `CancellationError` but does not take the bytes back: they still go out, in order.
    /// - Throws: the fatal ``HandleError`` that destroyed the handle (for example `EPIPE`), or
    ///   `CancellationError`.
    public func write(_ data: ByteBuffer) async throws {
        try await awaitOnLoop(Void.self) { core, token, waiter in
            let target = core.queuedTotal &+ UInt64(data.readableBytes)
            core.addWriteWaiter(target: target, token: token, waiter)
            core.pushWrite(data)
            if !core.destroyed { core.resumeWriteWaiters(upTo: core.writtenTotal) }
        }
    }

    /// Writes the UTF-8 bytes of `string` and waits until they are handed to the operating system.
    public func write(_ string: String) async throws {
        try await write(allocator.buffer(string: string))
    }

    /// Waits until at most `mark` of the bytes queued so far still wait in the write buffer
    /// (``writeBufferLength``), for a producer off the loop that must not queue faster than the peer
    /// reads. Perl: setting `low_water_mark` and waiting for `on_drain`, without replacing `onDrain`.
    ///
    /// Returns at once when the buffer is already that short. Bytes queued by others during the wait
    /// are not waited for. Cancelling the task ends the wait with `CancellationError`.
    ///
    /// ```swift
    /// for message in messages {
    ///     try await handle.waitForWriteBuffer(atMost: 256 * 1024)
    ///     handle.pushWrite(message)
    /// }
    /// ```
    /// - Parameter mark: the number of bytes that may still be waiting (0: wait until all is written).
    /// - Throws: the fatal ``HandleError`` that destroyed the handle, or `CancellationError`.
    public func waitForWriteBuffer(atMost mark: Int) async throws {
        try await awaitOnLoop(Void.self) { core, token, waiter in
            guard core.writeBufferLength > mark else {
                waiter.resume(returning: ())
                return
            }
            let allowed = UInt64(max(mark, 0))
            let target = core.queuedTotal > allowed ? core.queuedTotal - allowed : 0
            core.addWriteWaiter(target: target, token: token, waiter)
        }
    }

    /// Runs `register` on the loop with a waiter for the caller, unless the handle is destroyed.
    ///
    /// `register` either resumes the waiter or hands it to an entry whose id it stores in the token;
    /// a cancellation then removes that entry and resumes the caller with `CancellationError`.
    private func awaitOnLoop<T: Sendable>(
        _: T.Type,
        _ register: @escaping @Sendable (HandleCore, AsyncWaitToken, AsyncWaiter<T>) -> Void
    ) async throws -> T {
        let token = AsyncWaitToken()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let waiter = AsyncWaiter(continuation)
                perform { core in
                    guard !core.destroyed else {
                        waiter.resume(throwing: core.failureForWaiters)
                        return
                    }
                    register(core, token, waiter)
                    if token.cancelled { core.cancelWaiter(id: token.id) }
                    // Not registered (resumed already, or cancelled before): the waiter ends here.
                    if token.cancelled || token.id == 0 { waiter.resume(throwing: CancellationError()) }
                }
            }
        } onCancel: {
            perform { core in
                if token.id == 0 {
                    token.cancelled = true
                } else {
                    core.cancelWaiter(id: token.id)
                }
            }
        }
    }

    /// An async sequence of typed reads that ends at a clean end of file.
    ///
    /// ```swift
    /// for try await line in handle.reads(.line()) { print(line.string) }
    /// ```
    public func reads<R: HandleReader & Sendable>(_ reader: R) -> HandleReadSequence<R> {
        HandleReadSequence(handle: self, reader: reader)
    }
}

/// Typed reads as an `AsyncSequence` (see ``Handle/reads(_:)``).
public struct HandleReadSequence<R: HandleReader & Sendable>: AsyncSequence, Sendable where R.Output: Sendable {
    /// The decoded values.
    public typealias Element = R.Output
    let handle: Handle
    let reader: R

    /// Iterates by awaiting one read at a time.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let handle: Handle
        let reader: R
        var finished = false

        /// The next value, or `nil` once the peer closed cleanly between values.
        public mutating func next() async throws -> R.Output? {
            guard !finished else { return nil }
            do {
                return try await handle.read(reader)
            } catch let error as HandleError where error.isEndOfFile {
                finished = true
                return nil
            }
        }
    }

    /// Starts iterating.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(handle: handle, reader: reader)
    }
}

extension HandleCore {
    /// One caller of ``Handle/write(_:)`` or ``Handle/waitForWriteBuffer(atMost:)``: resumed once
    /// `writtenTotal` reaches `target`.
    struct WriteWaiter {
        let target: UInt64
        let id: UInt64
        let waiter: AsyncWaiter<Void>
    }

    var failureForWaiters: HandleError {
        destroyError ?? HandleError(.brokenPipe, message: "handle destroyed", fatal: true)
    }

    /// A queue entry that resumes `waiter` instead of calling back.
    func makeAsyncEntry<R: HandleReader>(_ reader: R, id: UInt64, _ waiter: AsyncWaiter<R.Output>) -> ReadEntry
    where R.Output: Sendable {
        let resume: (Result<R.Output, HandleError>) -> Void = { result in
            switch result {
            case .success(let output): waiter.resume(returning: output)
            case .failure(let error): waiter.resume(throwing: error)
            }
        }
        var entry = ReadEntry(step: TypedReadStep(reader, epoch: readEpoch, .async(resume)))
        entry.id = id
        entry.fail = { waiter.resume(throwing: $0) }
        return entry
    }

    /// Registers a write waiter; its id goes into `token`.
    func addWriteWaiter(target: UInt64, token: AsyncWaitToken, _ waiter: AsyncWaiter<Void>) {
        token.id = nextEntryID
        nextEntryID &+= 1
        // Targets only grow, except for waitForWriteBuffer marks: keep the queue sorted.
        let entry = WriteWaiter(target: target, id: token.id, waiter: waiter)
        if let last = writeWaiters.last, last.target > target,
            let index = writeWaiters.firstIndex(where: { $0.target > target })
        {
            writeWaiters.insert(entry, at: index)
        } else {
            writeWaiters.append(entry)
        }
    }

    /// Resumes the write waiters whose bytes are all written (`progress` bytes went out in total).
    func resumeWriteWaiters(upTo progress: UInt64) {
        while let first = writeWaiters.first, first.target <= progress {
            writeWaiters.removeFirst()
            first.waiter.resume(returning: ())
        }
    }

    /// Ends a cancelled wait: its read leaves the queue (its bytes stay in the buffer) or its write
    /// waiter is dropped (the bytes still go out). Nothing when it completed already.
    func cancelWaiter(id: UInt64) {
        if let index = readQueue.firstIndex(where: { $0.id == id }) {
            readQueue.remove(at: index).fail?(CancellationError())
        } else if let index = writeWaiters.firstIndex(where: { $0.id == id }) {
            writeWaiters.remove(at: index).waiter.resume(throwing: CancellationError())
        }
    }

    /// Empties the read queue and fails every awaiting caller with `error` (destroy, connect retry).
    func failWaiters(_ error: HandleError) {
        let waiting = readQueue
        readQueue.removeAll()
        for entry in waiting { entry.fail?(error) }
        let writers = writeWaiters
        writeWaiters.removeAll()
        for writer in writers { writer.waiter.resume(throwing: error) }
    }
}
