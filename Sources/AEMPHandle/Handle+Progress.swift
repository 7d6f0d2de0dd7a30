import Synchronization

extension Handle {
    /// Bytes handed to the socket that it has not taken yet: non-zero only while the kernel's send
    /// buffer is full (a write would block). Loop only.
    ///
    /// With ``socketAcceptedBytes`` this tells whether a peer that sends nothing is still reading:
    /// while there is a backlog, every byte the kernel takes is a byte the peer acknowledged.
    package var socketBacklog: Int {
        let core = self.core
        return core.destroyed ? 0 : core.channelOutstanding
    }

    /// All bytes the socket has taken from this handle so far (complete and partial writes). Loop only.
    package var socketAcceptedBytes: UInt64 {
        let core = self.core
        guard !core.destroyed else { return core.writtenTotal }
        return core.writtenTotal &+ UInt64(max(0, core.inflight - core.channelOutstanding))
    }

    /// All bytes received from the socket so far (plaintext when TLS is on), whether read yet or
    /// not. Loop only.
    package var socketReceivedBytes: UInt64 {
        core.receivedTotal
    }

    /// Counts this handle's bytes into `totals` from now on (bytes before are added at once), for
    /// readers on other threads (a node's metrics). Loop only.
    package func countBytes(into totals: HandleTotals) {
        let core = self.core
        totals.received.add(core.receivedTotal, ordering: .relaxed)
        totals.written.add(core.writtenTotal, ordering: .relaxed)
        core.totals = totals
    }

    /// Whether ``destroy()`` was called (from any thread).
    package var isDestroyRequested: Bool {
        destroyRequested.load(ordering: .relaxed)
    }
}

/// Byte counts of a handle, readable from any thread (``Handle/countBytes(into:)``).
package final class HandleTotals: Sendable {
    /// Bytes received from the socket (plaintext with TLS).
    package let received = Atomic<UInt64>(0)
    /// Bytes the socket took.
    package let written = Atomic<UInt64>(0)

    package init() {}
}
