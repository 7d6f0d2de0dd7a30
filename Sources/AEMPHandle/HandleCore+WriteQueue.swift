import DequeModule
import NIOCore

extension HandleCore {
    /// Perl `push_write` (raw bytes) followed by `_drain_wbuf`.
    func pushWrite(_ data: ByteBuffer) {
        guard !destroyed else { return }
        queuedTotal &+= UInt64(data.readableBytes)
        let wasIdle = inflight == 0 && !flushScheduled
        if autocork {
            if corked == nil {
                corked = data
            } else {
                var data = data
                corked!.writeBuffer(&data)
            }
            if wasIdle {
                flushScheduled = true
                eventLoop.assumeIsolated().execute { self.corkedFlushTick() }
            }
        } else if wasIdle, corked == nil {
            send(data)
        } else if corked == nil {
            // A write is outstanding: queue behind it, as Perl appends to wbuf.
            send(data)
            return
        } else {
            var data = data
            corked!.writeBuffer(&data)
            return
        }
        if destroyed || !wasIdle { return }
        if let limit = writeBufferMax, limit < writeBufferLength {
            reportError(HandleError(.noSpace, fatal: true))
        }
    }

    /// Hands `data` to the channel and tracks its completion.
    func send(_ data: ByteBuffer) {
        let count = data.readableBytes
        guard count > 0 else { return }
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
        channel.writeAndFlush(data, promise: promise)
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
        while let first = writeWaiters.first, first.target <= writtenTotal {
            writeWaiters.removeFirst()
            first.resume(nil)
        }
        if destroyed {
            if inflight == 0 { closeChannel() }
            return
        }
        let now = NIODeadline.now()
        activity[HandleTimeoutKind.any.rawValue] = now
        activity[HandleTimeoutKind.write.rawValue] = now
        if inflight == 0, corked != nil, !flushScheduled {
            flushCorked()
        }
        if onDrain != nil, lowWaterMark >= writeBufferLength {
            callDrain()
        }
    }

    func writeFailed(_ count: Int, _ error: any Error) {
        inflight -= count
        if destroyed {
            if inflight == 0 { closeChannel() }
            return
        }
        reportError(Self.mapError(error))
    }

    /// Calls the current `on_drain` action.
    func callDrain() {
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

    /// Perl `push_shutdown`: shut the write side down once the buffer is empty.
    func pushShutdown() {
        guard !destroyed else { return }
        lowWaterMark = 0
        setOnDrain(.shutdown)
    }

    /// Perl `shutdown $fh, 1`.
    func shutdownOutput() {
        guard !outputShut, !channelClosed else { return }
        outputShut = true
        channel.close(mode: .output, promise: nil)
    }
}
