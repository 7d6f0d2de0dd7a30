import AEMPCodecs
import AEMPHandle
import NIOCore

extension Node {
    /// Sends a message like ``send(_:_:)-([Value])`` and then waits while the destination cannot take
    /// more: while over ``NodeConfiguration/sendHighWaterMark`` bytes wait to be written to the
    /// connection (until half of that is left), or while over ``queuedMessageLimit`` messages wait for
    /// the connection to come up. A producer using it cannot outrun a slow consumer and exhaust memory.
    ///
    /// Perl has only the fire-and-forget `snd`; this is its flow-controlled counterpart. Messages to
    /// local ports never wait. The message order is the same as with ``send(_:_:)-([Value])``.
    ///
    /// - Parameters:
    ///   - port: the destination.
    ///   - message: the message elements.
    public func send(to port: PortID, _ message: [Value]) async {
        let mark = configuration.sendHighWaterMark
        let wait: Wait = await evaluate { core in
            core.send(to: port, message)
            guard port.node != core.nodeID, let remote = core.remotes[port.node] else { return .none }
            if let link = remote.link {
                return link.writeBufferLength > mark ? .handle(link.handle) : .none
            }
            return remote.queue.count > self.queuedMessageLimit ? .queue : .none
        }
        switch wait {
        case .none:
            return
        case .handle(let handle):
            // The connection may end meanwhile: that ends the wait too (monitors report it).
            try? await handle.waitForWriteBuffer(atMost: mark / 2)
        case .queue:
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                perform { core in
                    guard let remote = core.remotes[port.node], remote.link == nil,
                        remote.queue.count > self.queuedMessageLimit
                    else {
                        continuation.resume()
                        return
                    }
                    remote.queueWaiters.append(continuation)
                }
            }
        }
    }

    /// How many messages may wait for a connection before ``send(to:_:)`` waits:
    /// ``NodeConfiguration/sendHighWaterMark`` / 256 (at least 1).
    public var queuedMessageLimit: Int { max(1, configuration.sendHighWaterMark / 256) }

    /// Bytes waiting to be written to `node`'s connection (0 when not connected).
    public func queuedBytes(to node: NodeID) async -> Int {
        await evaluate { core in core.remotes[node]?.link?.writeBufferLength ?? 0 }
    }

    private enum Wait: Sendable {
        case none
        case handle(Handle)
        case queue
    }
}
