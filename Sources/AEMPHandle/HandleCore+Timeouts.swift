import NIOCore

extension HandleCore {
    /// Perl `timeout` / `rtimeout` / `wtimeout`: sets the value and checks it at once, which may
    /// call the timeout callback (or raise `ETIMEDOUT`) before returning.
    func setTimeout(_ kind: HandleTimeoutKind, _ seconds: Double) {
        guard !destroyed else { return }
        precondition(seconds >= 0, "negative timeout \(seconds)")
        let index = kind.rawValue
        timeouts[index] = seconds
        cancelTimer(index)
        checkTimeout(kind)
    }

    /// Stops the timer of one kind (index: `HandleTimeoutKind.rawValue`).
    func cancelTimer(_ index: Int) {
        timers[index]?.cancel()
        timers[index] = nil
    }

    /// Stops all timers.
    func cancelTimers() {
        for index in timers.indices { cancelTimer(index) }
    }

    /// Perl `timeout_reset` / `rtimeout_reset` / `wtimeout_reset`.
    func resetTimeout(_ kind: HandleTimeoutKind) {
        guard !destroyed else { return }
        activity[kind.rawValue] = NIODeadline.now()
    }

    /// Fires the timeout when it is due, then arms the timer for the next check.
    func checkTimeout(_ kind: HandleTimeoutKind) {
        let index = kind.rawValue
        guard !destroyed, timeouts[index] > 0, channel != nil else {
            cancelTimer(index)
            return
        }
        let now = NIODeadline.now()
        if kind != .read, inflight > 0 {
            let outstanding = channelOutstanding
            if outstanding < writeProgressMark {
                // The socket took part of a pending write since the last look: that is activity.
                writeProgressMark = outstanding
                activity[HandleTimeoutKind.any.rawValue] = now
                activity[HandleTimeoutKind.write.rawValue] = now
            }
        }
        var after = activity[index] + Self.amount(timeouts[index]) - now
        if after <= .zero {
            activity[index] = now
            if let callback = onTimeout[index] {
                if let handle = facade { callback(handle) }
            } else {
                reportError(HandleError(.timedOut))
            }
            if destroyed || timeouts[index] <= 0 { return }
            after = Self.amount(timeouts[index])
        }
        guard timers[index] == nil else { return }
        timers[index] = eventLoop.assumeIsolated().scheduleTask(in: after) {
            self.timers[index] = nil
            self.checkTimeout(kind)
        }
    }

    static func amount(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64((seconds * 1_000_000_000).rounded()))
    }
}
