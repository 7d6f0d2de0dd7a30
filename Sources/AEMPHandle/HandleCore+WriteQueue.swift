import DequeModule
import NIOCore
import Synchronization

extension HandleCore {
    /// Buffers at least this large go to the channel directly behind an outstanding write instead of
    /// being copied into the pending buffer.
    static let directWriteThreshold = 64 * 1024

    /// Perl `push_write` (raw bytes) followed by `_drain_wbuf`.
    ///
    /// Without autocork and with nothing outstanding, the bytes are written at once (a completed write
    /// calls `on_drain` before this returns). Otherwise they join the pending buffer, which goes out in
    /// one write when the outstanding write completes (or on the next loop tick with autocork).
    func pushWrite(_ data: ByteBuffer) {
        guard !destroyed else { return }
        queuedTotal &+= UInt64(data.readableBytes)
        guard channel != nil else {
            appendPending(data)
            return
        }
        if isWriting {
            if corked == nil, !flushScheduled, data.readableBytes >= Self.directWriteThreshold {
                send(data)
            } else {
                appendPending(data)
            }
            return
        }
        if autocork {
            appendPending(data)
            scheduleCorkedFlush()
        } else {
            send(data)
        }
        checkWriteBufferMax()
    }

    /// The capacity of a fresh pending buffer that ``pushWrite(encoding:)`` encodes into.
    static let encodingCapacity = 1024

    /// ``pushWrite(_:)`` for bytes that `body` appends straight to the pending buffer (no
    /// intermediate buffer, no copy) whenever they would join it anyway: while a write is outstanding
    /// or scheduled, with autocork, or while connecting. Otherwise `body` encodes into a fresh buffer
    /// that is written at once. When `body` throws, nothing it appended stays queued.
    func pushWrite<E: Error>(encoding body: (inout ByteBuffer) throws(E) -> Void) throws(E) {
        guard !destroyed else { return }
        let attached = channel != nil
        let writing = isWriting
        guard !attached || writing || autocork else {
            var buffer = freshWriteBuffer()
            try body(&buffer)
            pushWrite(buffer)
            return
        }
        // Moved out while `body` runs: unique storage (no copy on write) and no overlapping access
        // should `body` look at the handle.
        var buffer = corked.take() ?? freshWriteBuffer()
        let start = buffer.writerIndex
        do {
            try body(&buffer)
        } catch {
            buffer.moveWriterIndex(to: start)
            restorePending(buffer)
            throw error
        }
        queuedTotal &+= UInt64(buffer.writerIndex - start)
        restorePending(buffer)
        guard attached, !writing, !destroyed, corked != nil, !flushScheduled else { return }
        // Autocork with nothing outstanding: the same as pushWrite.
        scheduleCorkedFlush()
        checkWriteBufferMax()
    }

    /// Buffers up to this capacity are kept as ``spareWriteBuffer`` after they were written.
    static let spareBufferMaximumCapacity = 64 * 1024

    /// An empty buffer to encode into: the spare one (its storage reused when the channel no longer
    /// holds it), else a new one.
    func freshWriteBuffer() -> ByteBuffer {
        if var spare = spareWriteBuffer.take() {
            spare.clear()
            return spare
        }
        return allocator.buffer(capacity: Self.encodingCapacity)
    }

    /// Puts the pending buffer back after ``pushWrite(encoding:)``; bytes that a nested write queued
    /// meanwhile follow it.
    private func restorePending(_ buffer: ByteBuffer) {
        if var nested = corked.take() {
            var buffer = buffer
            buffer.writeBuffer(&nested)
            corked = buffer
        } else if buffer.readableBytes > 0 {
            corked = buffer
        }
    }

    /// Perl's `_ww`: a write is outstanding or scheduled.
    var isWriting: Bool { inflight > 0 || flushScheduled || corked != nil }

    /// The autocork tick is due: everything queued until then goes out in one write, at the end of
    /// the read being dispatched (a reply to a request costs no task), else in a task of this tick.
    func scheduleCorkedFlush() {
        flushScheduled = true
        if readDispatchDepth > 0 {
            flushAfterRead = true
        } else {
            eventLoop.assumeIsolated().execute { self.corkedFlushTick() }
        }
    }

    /// Perl's `wbuf_max` check after queuing with nothing outstanding.
    func checkWriteBufferMax() {
        if destroyed { return }
        if let limit = writeBufferMax, limit < writeBufferLength {
            reportError(HandleError(.noSpace, fatal: true))
        }
    }

    func appendPending(_ data: ByteBuffer) {
        if corked == nil {
            corked = data
        } else {
            var data = data
            corked!.writeBuffer(&data)
        }
    }

    /// Hands `data` to the channel and tracks its completion.
    func send(_ data: ByteBuffer) {
        let count = data.readableBytes
        guard count > 0 else { return }
        if writesHeld {
            // TLS is being unwrapped: the bytes go out in plain text afterwards.
            appendPending(data)
            return
        }
        inflight += count
        let promise = eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                self.writeCompleted(count)
            case .failure(let error):
                self.writeFailed(count, error)
            }
        }
        guard let channel else {
            promise.fail(ChannelError.ioOnClosedChannel)
            return
        }
        channel.writeAndFlush(data, promise: promise)
        if data.capacity <= Self.spareBufferMaximumCapacity { spareWriteBuffer = data }
        if !destroyed { writeProgressMark = channelOutstanding }
    }

    /// The autocork tick: everything written since the last tick goes out in one write.
    func corkedFlushTick() {
        flushScheduled = false
        flushCorked()
    }

    /// Writes the corked bytes now.
    func flushCorked() {
        guard let data = corked else { return }
        corked = nil
        send(data)
    }

    func writeCompleted(_ count: Int) {
        inflight -= count
        writtenTotal &+= UInt64(count)
        totals?.written.add(UInt64(count), ordering: .relaxed)
        resumeWriteWaiters(upTo: writtenTotal)
        if destroyed {
            if inflight == 0 { closeChannel() }
            return
        }
        let now = NIODeadline.now()
        activity[HandleTimeoutKind.any.rawValue] = now
        activity[HandleTimeoutKind.write.rawValue] = now
        writeProgressMark = channelOutstanding
        if inflight == 0, corked != nil, !flushScheduled {
            // The pending bytes go out as one write; its completion decides about on_drain.
            flushCorked()
            return
        }
        if drainIsDue { callDrain() }
    }

    func writeFailed(_ count: Int, _ error: any Error) {
        inflight -= count
        if destroyed {
            if inflight == 0 { closeChannel() }
            return
        }
        reportError(Self.mapError(error))
    }

    /// A write made progress: `on_drain` is due when the buffer is at or below the low water mark,
    /// but not again for bytes already reported drained (the socket may take a write, so the buffer
    /// reads empty and setting `on_drain` reports it, before the write's completion arrives).
    var drainIsDue: Bool {
        onDrain != nil && lowWaterMark >= writeBufferLength && drainReportedEmptyAt != queuedTotal
    }

    /// Calls the current `on_drain` action.
    func callDrain() {
        drainReportedEmptyAt = writeBufferLength == 0 ? queuedTotal : nil
        switch onDrain {
        case .user(let callback):
            if let handle = facade { callback(handle) }
        case .shutdown:
            shutdownOutput()
        case nil:
            break
        }
    }

    /// Perl `on_drain`: replaces the callback and calls it at once when the buffer is low enough.
    func setOnDrain(_ action: DrainAction?) {
        guard !destroyed else { return }
        onDrain = action
        if action != nil, lowWaterMark >= writeBufferLength {
            callDrain()
        }
    }

    /// Perl `low_water_mark`: also tells the channel to report writability at that level.
    func setLowWaterMark(_ value: Int) {
        lowWaterMark = max(0, value)
        applyLowWaterMark()
    }

    func applyLowWaterMark() {
        guard lowWaterMark > 0, lowWaterMark < Int.max - 1, let sync = channel?.syncOptions else { return }
        let mark = ChannelOptions.Types.WriteBufferWaterMark(low: lowWaterMark + 1, high: lowWaterMark + 1)
        try? sync.setOption(ChannelOptions.writeBufferWaterMark, value: mark)
    }

    /// Perl `push_shutdown`: shut the write side down once the buffer is empty.
    func pushShutdown() {
        guard !destroyed else { return }
        lowWaterMark = 0
        setOnDrain(.shutdown)
    }

    /// Perl `shutdown $fh, 1`.
    func shutdownOutput() {
        guard !outputShut, !channelClosed, let channel else { return }
        outputShut = true
        channel.close(mode: .output, promise: nil)
    }
}
