import NIOCore
import NIOPosix

extension Handle {
    /// Adopts a connected channel from any thread. Perl: `AnyEvent::Handle->new (fh => $fh, ...)`.
    ///
    /// `options` runs on the channel's event loop, so its callbacks may capture loop-bound state.
    /// This is how a channel from `tcpConnect`/`tcpServer` (empty pipeline, `autoRead` off) becomes
    /// a handle.
    /// - Returns: the started handle.
    public static func make(
        channel: any Channel,
        options: @escaping @Sendable () -> HandleOptions = { HandleOptions() }
    ) -> EventLoopFuture<Handle> {
        channel.eventLoop.submit { Handle(channel: channel, options: options()) }
    }

    /// Adopts a connected stream socket descriptor (TCP or Unix domain); the handle owns it from now
    /// on. Perl: `new (fh => $socket)`.
    /// - Parameters:
    ///   - socket: a connected `SOCK_STREAM` socket.
    ///   - group: where the handle's event loop comes from.
    ///   - options: settings and callbacks, built on the event loop.
    public static func make(
        socket: CInt,
        group: any EventLoopGroup,
        options: @escaping @Sendable () -> HandleOptions = { HandleOptions() }
    ) -> EventLoopFuture<Handle> {
        ClientBootstrap(group: group)
            .channelOption(ChannelOptions.autoRead, value: false)
            .withConnectedSocket(socket)
            .flatMap { make(channel: $0, options: options) }
    }

    /// Adopts one descriptor used for both directions (a pipe end, a character device, a socket);
    /// the handle owns it from now on. Perl: `new (fh => $fh)`.
    public static func make(
        fileDescriptor: CInt,
        group: any EventLoopGroup,
        options: @escaping @Sendable () -> HandleOptions = { HandleOptions() }
    ) -> EventLoopFuture<Handle> {
        NIOPipeBootstrap(group: group)
            .channelOption(ChannelOptions.autoRead, value: false)
            .takingOwnershipOfDescriptor(inputOutput: fileDescriptor)
            .flatMap { make(channel: $0, options: options) }
    }

    /// Adopts separate input and output descriptors, such as two pipes or stdin and stdout; the
    /// handle owns them from now on. Perl: two handles on `\*STDIN` and `\*STDOUT`, joined in one.
    /// - Parameters:
    ///   - input: the descriptor to read from (e.g. `STDIN_FILENO`).
    ///   - output: the descriptor to write to (e.g. `STDOUT_FILENO`).
    ///   - group: where the handle's event loop comes from.
    ///   - options: settings and callbacks, built on the event loop.
    public static func make(
        input: CInt,
        output: CInt,
        group: any EventLoopGroup,
        options: @escaping @Sendable () -> HandleOptions = { HandleOptions() }
    ) -> EventLoopFuture<Handle> {
        NIOPipeBootstrap(group: group)
            .channelOption(ChannelOptions.autoRead, value: false)
            .takingOwnershipOfDescriptors(input: input, output: output)
            .flatMap { make(channel: $0, options: options) }
    }
}
