import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Handle {
    /// Moves a quiescent plain connection to another event loop: a new handle on `loop` takes over
    /// the same socket, with every byte this handle received and nobody consumed yet in front of its
    /// read buffer, and this handle is destroyed. Loop only.
    ///
    /// Used by the node to give a data connection that came in on its listener a loop of its own.
    /// The socket is duplicated and adopted by a new channel on `loop`; closing this handle's channel
    /// then closes only the old descriptor. The new handle has default options except `TCP_NODELAY`,
    /// `SO_KEEPALIVE` and `SO_OOBINLINE`, which are carried over, and no callbacks.
    ///
    /// - Returns: the new handle (the future fails when `loop` cannot adopt the socket; the
    ///   connection is closed then), or `nil` when the connection cannot move and nothing changed:
    ///   TLS is active, writes are pending, the end of the stream or an error was already seen, the
    ///   handle has no socket channel, or the descriptor cannot be duplicated.
    package func move(to loop: any EventLoop) -> EventLoopFuture<Handle>? {
        let core = self.core
        guard !core.destroyed, let channel = core.channel, !core.tlsActive, core.writeBufferLength == 0,
            !core.sawEOF, core.stashEnd == nil, !core.channelClosed
        else { return nil }
        let duplicate: CInt?
        do {
            duplicate = try channel.pipeline.syncOperations.withUnsafeTransportIfAvailable(of: NIOBSDSocket.Handle.self) {
                fcntl($0, F_DUPFD_CLOEXEC, 0)
            }
        } catch {
            return nil
        }
        guard let duplicate, duplicate >= 0 else { return nil }
        var pending = core.readBuffer
        if var stash = core.stash { pending.writeBuffer(&stash) }
        let received = pending
        let flags = core.socketFlags
        core.destroy()
        return ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.autoRead, value: false)
            .withConnectedSocket(duplicate)
            .flatMapThrowing { channel in
                var options = HandleOptions()
                options.noDelay = flags.noDelay
                options.keepalive = flags.keepalive
                options.oobInline = flags.oobInline
                let handle = Handle(channel: channel, options: options)
                handle.core.readBuffer = received
                return handle
            }
    }

    /// Keeps the handle, and so its connection, open until it is destroyed, even when nobody holds it
    /// any more (the way a NIO channel stays open until closed). Loop only.
    ///
    /// For handles a library hands to callbacks that may well keep no reference (a DataConn
    /// receiver): the connection then ends with ``destroy()``, a fatal error, or the peer's close
    /// once reading, never by being let go.
    package func keepOpenUntilDestroyed() {
        let core = self.core
        guard !core.destroyed else { return }
        core.keeper = self
    }
}
