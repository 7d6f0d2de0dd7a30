import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The listening socket as `prepare` sees it: bound, not yet listening (Perl: the `$fh, $host, $port` of
/// `$prepare_cb`).
public struct TCPListeningSocket: Sendable {
    /// The socket descriptor. Use it only inside `prepare` (for example with `setsockopt`); do not close it.
    public let descriptor: NIOBSDSocket.Handle
    /// The bound local endpoint (with the real port when port 0 was asked for).
    public let localAddress: ConnectTarget

    /// The bound host as text (`"::"`, `"0.0.0.0"`, `"127.0.0.1"`, or `"unix/"`).
    public var localHost: String { localAddress.perlHost }
    /// The bound TCP port, or `0` for a Unix-domain socket.
    public var localPort: Int { localAddress.portOrZero }
    /// Perl's `$port` as text: the decimal port, or the socket path for a Unix-domain socket.
    public var localService: String { localAddress.perlService }
}

/// A listening TCP (or Unix-domain) server; it is also the guard that keeps it listening (Perl: the guard that
/// `tcp_server` returns).
///
/// Calling ``cancel()`` or dropping the last reference stops listening (the socket is closed, a Unix-domain socket
/// file is removed); connections already handed to `accept` go on untouched.
public final class TCPServer: Sendable {
    /// The listen queue length used when `prepare` returns `nil` or a value `<= 0`: 128.
    public static let defaultBacklog = 128

    /// The bound local endpoint; with port 0 it carries the port the system picked.
    public let localAddress: ConnectTarget
    /// The event loop the listening socket, the accepted channels and the `accept` callbacks live on.
    public let eventLoop: any EventLoop
    /// The listen queue length that was requested.
    public let backlog: Int
    private let channel: EventLoopFuture<any Channel>
    private let cancelled: TCPLockedBox<Bool>
    private let socketFile: UnixSocketFile?
    /// Run once by ``cancel()`` (the connection sequence ends its iteration through this).
    let cancelHandlers = TCPLockedBox<[@Sendable () -> Void]>([])

    /// The bound host as text (`"::"`, `"0.0.0.0"`, `"127.0.0.1"`, ... or `"unix/"`).
    public var localHost: String { localAddress.perlHost }
    /// The bound TCP port (the real one when port 0 was asked for), or `0` for a Unix-domain socket.
    public var localPort: Int { localAddress.portOrZero }
    /// Perl's `$port` as text: the decimal port, or the socket path for a Unix-domain socket.
    public var localService: String { localAddress.perlService }

    fileprivate init(
        localAddress: ConnectTarget,
        eventLoop: any EventLoop,
        backlog: Int,
        channel: EventLoopFuture<any Channel>,
        cancelled: TCPLockedBox<Bool>,
        socketFile: UnixSocketFile?
    ) {
        self.localAddress = localAddress
        self.eventLoop = eventLoop
        self.backlog = backlog
        self.channel = channel
        self.cancelled = cancelled
        self.socketFile = socketFile
    }

    /// Whether ``cancel()`` was called.
    public var isCancelled: Bool { cancelled.withLock { $0 } }

    /// The listening channel, once NIO registered it (fails if registration failed).
    public var listeningChannel: EventLoopFuture<any Channel> { channel }

    /// Stops listening. Safe from any thread and more than once; no `accept` callback starts afterwards.
    /// Connections that were already accepted are not affected.
    public func cancel() {
        let wasCancelled = cancelled.withLock { value in
            defer { value = true }
            return value
        }
        guard !wasCancelled else { return }
        if let socketFile { RawSocket.removeUnixSocket(socketFile) }
        channel.whenSuccess { $0.close(promise: nil) }
        let handlers = cancelHandlers.withLock { handlers in
            defer { handlers = [] }
            return handlers
        }
        for handler in handlers { handler() }
    }

    /// Stops listening (like ``cancel()``) and waits until the listening socket is closed.
    public func close() async {
        cancel()
        guard let listening = try? await channel.get() else { return }
        try? await listening.closeFuture.get()
    }

    deinit { cancel() }
}

/// The `accept` callback of ``tcpServer(host:service:on:prepare:accept:)`` (Perl: `$accept_cb->($fh, $host, $port)`).
///
/// It runs on the server's event loop for every accepted connection and owns the connection's channel from then
/// on: Perl closes a handle nobody keeps, Swift cannot, so close the channel if you do not use it (with `autoRead`
/// off, NIO does not notice a peer that goes away until somebody reads).
public typealias TCPServerAccept = @Sendable (TCPConnection) -> Void

/// Listens on a host and port or service and hands every accepted connection to `accept` (Perl: `tcp_server`).
///
/// The socket is created with `SO_REUSEADDR` and bound; then `prepare` runs with the bound socket (for example to
/// learn the port picked for port 0, or to set options) and returns the listen queue length; then the socket
/// listens and is handed to SwiftNIO. Each accepted connection reaches `accept` on `eventLoop` as a
/// ``TCPConnection`` whose channel has an empty pipeline and `autoRead` off.
///
/// Hosts:
/// - `nil`: the wildcard. The IPv6 wildcard `::` as a dual-stack socket (`IPV6_V6ONLY` off, so IPv4 clients
///   connect too, reported as plain IPv4 peers) when the machine has IPv6, else `0.0.0.0`. (Perl picks by its
///   preferred protocol, IPv4 by default.)
/// - `"0"`: the IPv4 wildcard `0.0.0.0`; `"::"`: the IPv6 wildcard (with the system's `IPV6_V6ONLY` default).
/// - any literal IPv4 or IPv6 address. Host names are not accepted (as in Perl).
/// - `"unix/"`: a Unix-domain socket; `service` is its path. A socket file already at that path is removed first,
///   stale or not (Perl does the same), but any other kind of file there is an error (Perl would remove it too);
///   the socket file is removed again when the server stops, unless another server replaced it meanwhile.
///
/// Service: `nil`, `""` or `"0"` for an ephemeral port, a decimal port, or a TCP service name from the system's
/// services database (`/etc/services`).
///
/// ```swift
/// let server = try tcpServer(host: "127.0.0.1", service: nil) { connection in
///     print("connection from \(connection.peerHost) port \(connection.peerPort)")
/// }
/// print("listening on port \(server.localPort)")
/// ```
/// - Parameters:
///   - host: The address to bind, or `nil` for the wildcard (see above).
///   - service: The port or service name, or the socket path for `"unix/"`.
///   - eventLoop: The loop for the listener, its connections and callbacks (a NIOPosix loop); default
///     `MultiThreadedEventLoopGroup.singleton.next()`.
///   - prepare: Called once, synchronously, after bind and before listen; returns the listen queue length
///     (`nil` or `<= 0` for ``TCPServer/defaultBacklog``). Throwing aborts the server with that error.
///   - accept: Called for every accepted connection, on `eventLoop`.
/// - Returns: The server; keep it, dropping it stops listening.
/// - Throws: ``SocketError`` for everything detected before listening, with host and port in the message:
///   `EINVAL` for a host that is not an address or a bad port, `ENXIO` for an unknown service name,
///   `EADDRINUSE`, `EADDRNOTAVAIL`, `EACCES` and other `errno`s from the system.
public func tcpServer(
    host: String?,
    service: String?,
    on eventLoop: (any EventLoop)? = nil,
    prepare: (TCPListeningSocket) throws -> Int? = { _ in nil },
    accept: @escaping TCPServerAccept
) throws(SocketError) -> TCPServer {
    let (spec, place) = try serverBindSpec(host: host, service: service)
    return try startServer(spec, place: place, on: eventLoop, prepare: prepare, accept: accept)
}

/// Parses the host and service of a server into what to bind, plus the text that names it in errors.
func serverBindSpec(host: String?, service: String?) throws(SocketError) -> (BindSpec, String) {
    let place = "tcpServer \(host ?? "(wildcard)") \(service ?? "(ephemeral)")"
    if host == "unix/" {
        guard let path = service, !path.isEmpty else {
            throw SocketError(.invalidArgument, "\(place): a Unix-domain server needs a socket path as service")
        }
        return (.unix(path), place)
    }
    let port: Int
    switch service {
    case nil, "":
        port = 0
    case let text? where !text.isEmpty && text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }):
        guard text.utf8.count <= 5, let number = Int(text), number <= 65535 else {
            throw SocketError(.invalidArgument, "\(place): port \(text) is out of range 0...65535")
        }
        port = number
    case let name?:
        guard let number = servicePort(name) else {
            throw SocketError(.noSuchAddress, "\(place): unknown TCP service '\(name)'")
        }
        port = number
    }
    return (try bindSpec(host: host, port: port, place: place), place)
}

/// Listens on a host and a numeric port (Perl: `tcp_server`); see ``tcpServer(host:service:on:prepare:accept:)``.
///
/// - Parameters:
///   - host: The address to bind, or `nil` for the wildcard.
///   - port: The TCP port, `0` (the default) for an ephemeral one.
///   - eventLoop: The loop for the listener, its connections and callbacks.
///   - prepare: Called after bind and before listen; returns the listen queue length.
///   - accept: Called for every accepted connection, on `eventLoop`.
/// - Returns: The server; keep it, dropping it stops listening.
/// - Throws: ``SocketError`` for everything detected before listening.
public func tcpServer(
    host: String?,
    port: Int = 0,
    on eventLoop: (any EventLoop)? = nil,
    prepare: (TCPListeningSocket) throws -> Int? = { _ in nil },
    accept: @escaping TCPServerAccept
) throws(SocketError) -> TCPServer {
    let place = "tcpServer \(host ?? "(wildcard)") \(port)"
    guard host != "unix/" else {
        throw SocketError(.invalidArgument, "\(place): a Unix-domain server needs a socket path as service")
    }
    guard (0...65535).contains(port) else {
        throw SocketError(.invalidArgument, "\(place): port \(port) is out of range 0...65535")
    }
    return try startServer(
        try bindSpec(host: host, port: port, place: place),
        place: place,
        on: eventLoop,
        prepare: prepare,
        accept: accept
    )
}

/// What to bind: one address, the dual-stack wildcard with an IPv4 fallback, or a Unix-domain path.
enum BindSpec {
    case ip(IPAddress, port: Int)
    case wildcard(port: Int)
    case unix(String)
}

private func bindSpec(host: String?, port: Int, place: String) throws(SocketError) -> BindSpec {
    switch host {
    case nil:
        return .wildcard(port: port)
    case "0":
        return .ip(.ipv4Any, port: port)
    case let text?:
        guard let address = parseIP(text) else {
            throw SocketError(.invalidArgument, "\(place): cannot parse '\(text)' as a host address")
        }
        return .ip(address, port: port)
    }
}

/// Creates, binds and prepares the socket; returns it with its bound address. The caller owns the descriptor.
private func bindSocket(_ spec: BindSpec, place: String) throws(SocketError) -> (CInt, ConnectTarget) {
    switch spec {
    case .unix(let path):
        try RawSocket.removeStaleUnixSocket(at: path, describing: place)
        let fd = try RawSocket.make(family: AF_UNIX, describing: place)
        do {
            try RawSocket.bind(fd, path: path, describing: place)
        } catch {
            RawSocket.close(fd)
            throw error
        }
        return (fd, .unix(path: path))
    case .ip(let address, let port):
        let fd = try RawSocket.make(family: address.family == .ipv4 ? AF_INET : AF_INET6, describing: place)
        do {
            try RawSocket.setReuseAddress(fd, describing: place)
            try RawSocket.bind(fd, address: address, port: UInt16(port), describing: place)
        } catch {
            RawSocket.close(fd)
            throw error
        }
        let (bound, boundPort) = RawSocket.localIPEndpoint(fd) ?? (address, port)
        return (fd, .ip(bound, port: boundPort))
    case .wildcard(let port):
        // Prefer a dual-stack IPv6 socket; fall back to IPv4 where the machine has no IPv6.
        let noIPv6: Set<Int32> = [EAFNOSUPPORT, EPROTONOSUPPORT, EADDRNOTAVAIL]
        do throws(SocketError) {
            let fd = try RawSocket.make(family: AF_INET6, describing: place)
            do {
                try RawSocket.setReuseAddress(fd, describing: place)
                try RawSocket.setIPv6Only(fd, false, describing: place)
                try RawSocket.bind(fd, address: .ipv6Any, port: UInt16(port), describing: place)
            } catch {
                RawSocket.close(fd)
                throw error
            }
            let (bound, boundPort) = RawSocket.localIPEndpoint(fd) ?? (.ipv6Any, port)
            return (fd, .ip(bound, port: boundPort))
        } catch where noIPv6.contains(error.code.errno) {
            return try bindSocket(.ip(.ipv4Any, port: port), place: place)
        }
    }
}

func startServer(
    _ spec: BindSpec,
    place: String,
    on eventLoop: (any EventLoop)?,
    prepare: (TCPListeningSocket) throws -> Int?,
    accept: @escaping TCPServerAccept
) throws(SocketError) -> TCPServer {
    let eventLoop = eventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
    guard let bootstrap = ServerBootstrap(validatingGroup: eventLoop) else {
        throw SocketError(.invalidArgument, "\(place): tcpServer needs a NIOPosix event loop, not \(eventLoop)")
    }
    let (fd, localAddress) = try bindSocket(spec, place: place)
    let socketFile: UnixSocketFile? =
        if case .unix(let path) = localAddress { RawSocket.fileIdentity(at: path) } else { nil }
    func abandon() {
        RawSocket.close(fd)
        if let socketFile { RawSocket.removeUnixSocket(socketFile) }
    }

    let requested: Int?
    do {
        requested = try prepare(TCPListeningSocket(descriptor: fd, localAddress: localAddress))
    } catch {
        abandon()
        throw TCPConnector.socketError(error, preparing: place)
    }
    let backlog = min(requested.flatMap { $0 > 0 ? $0 : nil } ?? TCPServer.defaultBacklog, Int(Int32.max))
    do {
        try RawSocket.listen(fd, backlog: CInt(backlog), describing: place)
    } catch {
        abandon()
        throw error
    }

    let cancelled = TCPLockedBox(false)
    // NIO listens again (with its own backlog of 128) when it adopts the socket; the server channel initializer
    // runs on the loop right after that, while the channel certainly owns the descriptor, and restores ours.
    let channel = bootstrap
        .serverChannelOption(.tcpOption(.tcp_nodelay), value: 0)
        .serverChannelInitializer { channel in
            do {
                try RawSocket.listen(fd, backlog: CInt(backlog), describing: place)
                return channel.eventLoop.makeSucceededVoidFuture()
            } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        .childChannelOption(.autoRead, value: false)
        .childChannelInitializer { child in
            do {
                try child.pipeline.syncOperations.addHandler(
                    TCPAcceptedActivation { channel in
                        guard !cancelled.withLock({ $0 }) else {
                            channel.close(promise: nil)
                            return
                        }
                        let peer = channel.remoteAddress.flatMap(ConnectTarget.init) ?? .unix(path: "")
                        accept(TCPConnection(channel: channel, peer: peer))
                    }
                )
                return child.eventLoop.makeSucceededVoidFuture()
            } catch {
                return child.eventLoop.makeFailedFuture(error)
            }
        }
        .withBoundSocket(fd)
    return TCPServer(
        localAddress: localAddress,
        eventLoop: eventLoop,
        backlog: backlog,
        channel: channel,
        cancelled: cancelled,
        socketFile: socketFile
    )
}

/// Waits in an accepted channel's pipeline until the channel is active, then leaves the pipeline empty and hands
/// the channel over.
final class TCPAcceptedActivation: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let deliver: (any Channel) -> Void

    init(deliver: @escaping (any Channel) -> Void) {
        self.deliver = deliver
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        deliver(channel)
    }
}

extension TCPConnector {
    /// Maps an error thrown by a server's `prepare` into a ``SocketError``.
    static func socketError(_ error: any Error, preparing place: String) -> SocketError {
        switch error {
        case let error as SocketError:
            return error
        case let error as IOError:
            let code = SocketError.Code(errno: error.errnoCode)
            return SocketError(code, "\(place): prepare failed: \(code.systemDescription)", underlying: error)
        default:
            return SocketError(.invalidArgument, "\(place): prepare failed: \(error)", underlying: error)
        }
    }
}
