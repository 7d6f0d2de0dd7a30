import DequeModule
import NIOCore
import Synchronization

extension HandleCore {
    // MARK: Arrivals from the channel

    /// One socket read's worth of bytes from the channel.
    func receive(_ buffer: ByteBuffer) {
        guard !destroyed else { return }
        receivedTotal &+= UInt64(buffer.readableBytes)
        totals?.received.add(UInt64(buffer.readableBytes), ordering: .relaxed)
        if reading, stash == nil, !stashReadScheduled, buffer.readableBytes <= readSize {
            processRead(buffer)
        } else if stash == nil {
            stash = buffer
        } else {
            var more = buffer
            stash!.writeBuffer(&more)
        }
        scheduleNextRead()
    }

    /// The channel saw the peer's end of file (or closed).
    func receiveEOF() {
        guard stashEnd == nil else { return }
        stashEnd = .eof
        scheduleNextRead()
    }

    /// The channel reported a read error.
    func receiveError(_ error: HandleError) {
        guard stashEnd == nil else { return }
        var fatal = error
        fatal.isFatal = true
        stashEnd = .error(fatal)
        scheduleNextRead()
    }

    /// Perl's read watcher body for one successful `sysread` of `data`.
    func processRead(_ data: ByteBuffer) {
        let length = data.readableBytes
        let now = NIODeadline.now()
        activity[HandleTimeoutKind.any.rawValue] = now
        activity[HandleTimeoutKind.read.rawValue] = now
        if readBuffer.readableBytes == 0 {
            // Adopted: no copy.
            readBuffer = data
        } else {
            // The new bytes must follow the leftover. In a buffer of its own, they are appended while
            // there is room behind it; only when it is full is the leftover moved to the front, and
            // only where that copies less than growing (which copies the consumed bytes too) or
            // avoids growing at all.
            var data = data
            let appended: Bool? = readBuffer.modifyIfUniquelyOwned { buffer in
                let front = buffer.readerIndex
                let room = buffer.writableBytes
                if room < length, front > 0, front + room >= length || front > buffer.readableBytes {
                    buffer.discardReadBytes()
                }
                buffer.writeBuffer(&data)
                return true
            }
            if appended == nil {
                // Shared storage (NIO's receive pool, or a slice a reader handed out): writing to it
                // would copy all of it, consumed bytes included. Copy just the leftover and the new
                // bytes, with room for the next arrival.
                var merged = allocator.buffer(capacity: readBuffer.readableBytes + 2 * length)
                merged.writeImmutableBuffer(readBuffer)
                merged.writeBuffer(&data)
                readBuffer = merged
            }
        }
        drainReadBuffer()
        if !destroyed, length == readSize, readSize < maxReadSize {
            setReadSize(min(readSize * 2, maxReadSize))
        }
    }

    /// Changes the size of the next socket reads.
    func setReadSize(_ size: Int) {
        readSize = max(1, size)
        try? channel?.syncOptions?.setOption(
            ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: readSize))
    }

    /// Serves one read from the stash (a readable event of the emulated kernel buffer).
    func stashRead() {
        stashReadScheduled = false
        guard reading, !destroyed else { return }
        if var pending = stash, pending.readableBytes > 0 {
            let piece = pending.readSlice(length: min(readSize, pending.readableBytes))!
            stash = pending.readableBytes > 0 ? pending : nil
            processRead(piece)
        } else if let end = stashEnd {
            switch end {
            case .eof:
                reading = false
                sawEOF = true
                drainReadBuffer()
            case .error(let error):
                reportError(error)
            }
        }
        scheduleNextRead()
    }

    /// Asks for the next read while the handle is reading.
    func scheduleNextRead() {
        guard reading, !destroyed, !sawEOF else { return }
        if stash != nil || stashEnd != nil {
            guard !stashReadScheduled else { return }
            stashReadScheduled = true
            eventLoop.assumeIsolated().execute { self.stashRead() }
        } else if !channelClosed, let channel {
            channel.read()
        }
    }

    // MARK: The read queue

    /// Perl `_drain_rbuf`: serves the read queue, then `on_read`, then end of file and `rbuf_max`.
    func drainReadBuffer() {
        // No draining before the channel is attached (Perl: `_skip_drain_rbuf` while connecting).
        guard !draining, !destroyed, channel != nil else { return }
        draining = true
        defer { draining = false }
        while true {
            let length = readBuffer.readableBytes
            if let entry = readQueue.popFirst() {
                let done = entry.run(self)
                if destroyed { return }
                if !done {
                    // Back to the head first, so a destroy after the error sees (and fails) it.
                    readQueue.prepend(entry)
                    if sawEOF {
                        reportEndOfFile()
                        return
                    }
                    break
                }
            } else if let onRead {
                guard length > 0 else { break }
                if let handle = facade { onRead(handle) }
                if destroyed { return }
                if length == readBuffer.readableBytes, readQueue.isEmpty, self.onRead != nil {
                    if sawEOF {
                        reportEndOfFile()
                        return
                    }
                    break
                }
            } else {
                reading = false
                break
            }
        }
        if readBuffer.readableBytes == 0, readBuffer.capacity > 0 {
            // Everything consumed: let go of the storage. It is usually NIO's receive buffer, which
            // NIO reuses for the next read only when nobody else holds it.
            readBuffer = ByteBuffer()
        }
        if sawEOF {
            if let onEof {
                if let handle = facade { onEof(handle) }
            } else {
                reportError(HandleError(.none, message: "Unexpected end-of-file", fatal: true))
            }
            return
        }
        if let limit = readBufferMax, limit < readBuffer.readableBytes {
            reportError(HandleError(.noSpace, fatal: true))
            return
        }
        if !reading, onRead != nil || !readQueue.isEmpty {
            startRead()
        }
    }

    /// Perl's fatal `EPIPE` for an end of file that leaves a read unsatisfied.
    func reportEndOfFile() {
        var error = HandleError(.brokenPipe, fatal: true)
        error.isEndOfFile = readBuffer.readableBytes == 0
        reportError(error)
    }

    /// Perl `push_read` / `unshift_read`.
    func enqueue(_ entry: ReadEntry, atFront: Bool) {
        guard !destroyed else { return }
        if atFront {
            readQueue.prepend(entry)
        } else {
            readQueue.append(entry)
        }
        drainReadBuffer()
    }

    /// Wraps a typed reader and its callback as a queue entry (one allocation).
    func makeEntry<R: HandleReader>(_ reader: R, _ callback: @escaping (Handle, R.Output) -> Void) -> ReadEntry {
        ReadEntry(step: TypedReadStep(reader, epoch: readEpoch, .callback(callback)))
    }

    /// Perl `on_read`: replaces the callback and serves the buffer at once.
    func setOnRead(_ callback: ((Handle) -> Void)?) {
        guard !destroyed else { return }
        onRead = callback
        if callback != nil { drainReadBuffer() }
    }

    /// Removes up to `count` bytes from the front of the read buffer.
    func consume(_ count: Int) {
        let removed = min(max(count, 0), readBuffer.readableBytes)
        guard removed > 0 else { return }
        readBuffer.moveReaderIndex(forwardBy: removed)
        readEpoch &+= 1
    }

    /// Perl `start_read`.
    func startRead() {
        guard !reading, !sawEOF, !destroyed, channel != nil else { return }
        reading = true
        scheduleNextRead()
    }

    /// Perl `stop_read`.
    func stopRead() {
        reading = false
    }
}

/// One queued read: asked again on every arrival until it returns `true`.
protocol ReadStep: AnyObject {
    func run(_ core: HandleCore) -> Bool
}

/// An untyped read (Perl: `push_read ($cb)`).
final class ClosureReadStep: ReadStep {
    let body: (HandleCore) -> Bool
    init(_ body: @escaping (HandleCore) -> Bool) { self.body = body }
    func run(_ core: HandleCore) -> Bool { body(core) }
}

/// A typed read with its callback (reader errors go to `on_error`) or, for the async API, with the
/// resumption of an awaiting caller (reader errors are thrown to it).
final class TypedReadStep<R: HandleReader>: ReadStep {
    enum Sink {
        case callback((Handle, R.Output) -> Void)
        case async((Result<R.Output, HandleError>) -> Void)
    }

    var reader: R
    var seenEpoch: UInt64
    let sink: Sink

    init(_ reader: R, epoch: UInt64, _ sink: Sink) {
        self.reader = reader
        self.seenEpoch = epoch
        self.sink = sink
    }

    func run(_ core: HandleCore) -> Bool {
        if core.readEpoch != seenEpoch { reader.restartScan() }
        let before = core.readBuffer.readerIndex
        // No tuples or Results of the generic output here: this runs unspecialised (the reader type
        // is only known at run time), where each of those costs a metadata lookup per read.
        do throws(HandleError) {
            guard let output = try reader.read(from: &core.readBuffer) else {
                noteProgress(core, since: before)
                return false
            }
            noteProgress(core, since: before)
            switch sink {
            case .callback(let callback):
                if let handle = core.facade { callback(handle, output) }
            case .async(let resume):
                resume(.success(output))
            }
            return true
        } catch {
            noteProgress(core, since: before)
            switch sink {
            case .callback:
                core.reportError(error)
                return core.destroyed || !error.keepsReader
            case .async(let resume):
                resume(.failure(error))
                return true
            }
        }
    }

    @inline(__always)
    private func noteProgress(_ core: HandleCore, since before: Int) {
        if core.readBuffer.readerIndex != before { core.readEpoch &+= 1 }
        seenEpoch = core.readEpoch
    }
}
