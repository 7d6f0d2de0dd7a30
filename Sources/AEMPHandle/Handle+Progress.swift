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
}
