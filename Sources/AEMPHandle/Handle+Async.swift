import DequeModule
import NIOCore

/// Remembers, on the loop, which queue entry an awaiting read owns (for cancellation).
final class AsyncReadToken: @unchecked Sendable {
    var id: UInt64 = 0
    var cancelled = false
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
        let token = AsyncReadToken()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R.Output, any Error>) in
                perform { core in
                    if token.cancelled {
                        continuation.resume(throwing: CancellationError())
                        return
                    }
                    guard !core.destroyed else {
                        continuation.resume(throwing: core.failureForWaiters)
                        return
                    }
                    token.id = core.nextEntryID
                    core.nextEntryID &+= 1
                    core.enqueue(core.makeAsyncEntry(reader, id: token.id, continuation), atFront: false)
                }
            }
        } onCancel: {
            perform { core in
                guard token.id != 0 else {
                    token.cancelled = true
                    return
                }
                if let index = core.readQueue.firstIndex(where: { $0.id == token.id }) {
                    core.readQueue.remove(at: index).fail?(CancellationError())
                }
            }
        }
    }

    /// Writes `data` and waits until it has been handed to the operating system. Perl: `push_write`
    /// followed by waiting for `on_drain`.
    ///
    /// The bytes are queued at once; cancelling the waiting task does not take them back.
    /// - Throws: the fatal ``HandleError`` that destroyed the handle (for example `EPIPE`).
    public func write(_ data: ByteBuffer) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            perform { core in
                guard !core.destroyed else {
                    continuation.resume(throwing: core.failureForWaiters)
                    return
                }
                let target = core.queuedTotal &+ UInt64(data.readableBytes)
                core.writeWaiters.append((target, { error in
                    if let error { continuation.resume(throwing: error) } else { continuation.resume() }
                }))
                core.pushWrite(data)
                if !core.destroyed, core.writtenTotal >= target,
                    let index = core.writeWaiters.firstIndex(where: { $0.target == target })
                {
                    core.writeWaiters.remove(at: index).resume(nil)
                }
            }
        }
    }

    /// Writes the UTF-8 bytes of `string` and waits until they are handed to the operating system.
    public func write(_ string: String) async throws {
        try await write(allocator.buffer(string: string))
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
    var failureForWaiters: HandleError {
        destroyError ?? HandleError(.brokenPipe, message: "handle destroyed", fatal: true)
    }

    /// A queue entry that resumes `continuation` instead of calling back.
    func makeAsyncEntry<R: HandleReader>(
        _ reader: R, id: UInt64, _ continuation: CheckedContinuation<R.Output, any Error>
    ) -> ReadEntry where R.Output: Sendable {
        var entry = ReadEntry(step: AsyncReadStep(reader, epoch: readEpoch, continuation))
        entry.id = id
        entry.fail = { continuation.resume(throwing: $0) }
        return entry
    }
}

/// A typed read awaited through the async API: reader errors are thrown to the waiter.
final class AsyncReadStep<R: HandleReader>: ReadStep where R.Output: Sendable {
    var reader: R
    var seenEpoch: UInt64
    let continuation: CheckedContinuation<R.Output, any Error>

    init(_ reader: R, epoch: UInt64, _ continuation: CheckedContinuation<R.Output, any Error>) {
        self.reader = reader
        self.seenEpoch = epoch
        self.continuation = continuation
    }

    func run(_ core: HandleCore) -> Bool {
        if core.readEpoch != seenEpoch { reader.restartScan() }
        let before = core.readBuffer.readerIndex
        let output: R.Output?
        do throws(HandleError) {
            output = try reader.read(from: &core.readBuffer)
        } catch {
            if core.readBuffer.readerIndex != before { core.readEpoch &+= 1 }
            continuation.resume(throwing: error)
            return true
        }
        if core.readBuffer.readerIndex != before { core.readEpoch &+= 1 }
        seenEpoch = core.readEpoch
        guard let output else { return false }
        continuation.resume(returning: output)
        return true
    }
}
