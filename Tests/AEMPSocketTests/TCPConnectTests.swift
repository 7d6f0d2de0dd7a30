@testable import AEMPSocket
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Helpers shared by the TCP tests

/// A bounded wait failed.
struct TCPTestTimeout: Error {}

/// Polls `probe` every 5 ms until it returns a value, at most `seconds`.
func waitFor<T>(seconds: Double = 5, _ probe: () -> T?) async throws -> T {
    let rounds = Int(seconds * 200)
    for _ in 0..<rounds {
        if let value = probe() { return value }
        try await Task.sleep(for: .milliseconds(5))
    }
    throw TCPTestTimeout()
}

/// Runs `body`, failing with ``TCPTestTimeout`` after `seconds`; `body` must honour task cancellation.
func within<T: Sendable>(
    seconds: Double = 5,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TCPTestTimeout()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Collects whatever a callback receives, for polling from the test.
final class Recorder<Element: Sendable>: Sendable {
    private let box = TCPLockedBox<[Element]>([])
    var callback: @Sendable (Element) -> Void { { [box] element in box.withLock { $0.append(element) } } }
    var all: [Element] { box.withLock { $0 } }
    var count: Int { box.withLock { $0.count } }

    /// Waits until at least `count` elements arrived and returns the `count`-th.
    func element(_ count: Int, seconds: Double = 5) async throws -> Element {
        try await waitFor(seconds: seconds) { box.withLock { $0.count >= count ? $0[count - 1] : nil } }
    }
}

/// Whether this machine can use IPv6 loopback.
let machineHasIPv6: Bool = {
    guard let fd = try? RawSocket.make(family: AF_INET6, describing: "probe") else { return false }
    defer { RawSocket.close(fd) }
    return (try? RawSocket.bind(fd, address: .ipv6Loopback, port: 0, describing: "probe")) != nil
}()

/// A bound (IPv4 loopback) socket that is not listening: connecting to its port is refused. Keeps the port taken.
final class ClosedPort {
    let fd: CInt
    let port: Int

    init() throws {
        fd = try RawSocket.make(family: AF_INET, describing: "closed port")
        try RawSocket.bind(fd, address: .ipv4Loopback, port: 0, describing: "closed port")
        port = RawSocket.localIPEndpoint(fd)!.1
    }

    deinit { RawSocket.close(fd) }
}

/// A loopback listener with the smallest backlog that never accepts: once its queue is full, SYNs are dropped
/// and connection attempts hang until they time out.
final class FullListener {
    let fd: CInt
    let port: Int
    private var fillers: [TCPConnection] = []

    private init(fd: CInt, port: Int) {
        self.fd = fd
        self.port = port
    }

    /// Makes the listener and fills its queue (bounded: at most 8 connections of 300 ms each).
    static func make() async throws -> FullListener {
        let fd = try RawSocket.make(family: AF_INET, describing: "full listener")
        try RawSocket.bind(fd, address: .ipv4Loopback, port: 0, describing: "full listener")
        try RawSocket.listen(fd, backlog: 0, describing: "full listener")
        let listener = FullListener(fd: fd, port: RawSocket.localIPEndpoint(fd)!.1)
        for _ in 0..<8 {
            do {
                let connection = try await tcpConnect(
                    targets: [listener.target],
                    prepare: { _ in .milliseconds(300) }
                )
                listener.fillers.append(connection)
            } catch {
                guard error.code == .timedOut else { throw error }
                return listener
            }
        }
        throw TCPTestTimeout()
    }

    var target: ConnectTarget { .ip(.ipv4Loopback, port: port) }

    deinit {
        for filler in fillers { filler.channel.close(promise: nil) }
        RawSocket.close(fd)
    }
}

/// Reads inbound bytes into a string until `count` bytes arrived, then leaves the pipeline.
private final class ReadCollector: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private var buffer = ByteBuffer()
    private let count: Int
    private let promise: EventLoopPromise<String>

    init(count: Int, promise: EventLoopPromise<String>) {
        self.count = count
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        if buffer.readableBytes >= count {
            context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
            promise.succeed(String(buffer: buffer))
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }
}

/// Completes with `value` or, after `seconds`, with `fallback`, whichever comes first.
func firstOf<T: Sendable>(
    _ future: EventLoopFuture<T>,
    orAfter seconds: Double,
    _ fallback: Result<T, any Error>
) async -> Result<T, any Error> {
    let loop = future.eventLoop
    let promise = loop.makePromise(of: T.self)
    let done = TCPLockedBox(false)
    @Sendable func complete(_ result: Result<T, any Error>) {
        guard done.withLock({ flag in defer { flag = true }; return !flag }) else { return }
        promise.completeWith(result)
    }
    future.whenComplete { complete($0) }
    let timer = loop.scheduleTask(in: .milliseconds(Int64(seconds * 1000))) { complete(fallback) }
    let result: Result<T, any Error>
    do { result = .success(try await promise.futureResult.get()) } catch { result = .failure(error) }
    timer.cancel()
    return result
}

/// Reads exactly `count` bytes from a handed-over channel (adds a handler and turns `autoRead` on), within 5 s.
func readString(from channel: any Channel, count: Int) async throws -> String {
    let promise = channel.eventLoop.makePromise(of: String.self)
    try await channel.eventLoop.submit {
        try channel.pipeline.syncOperations.addHandler(ReadCollector(count: count, promise: promise))
    }.get()
    try await channel.setOption(.autoRead, value: true).get()
    return try await firstOf(promise.futureResult, orAfter: 5, .failure(TCPTestTimeout())).get()
}

/// Writes a string to a channel.
func write(_ text: String, to channel: any Channel) async throws {
    try await channel.writeAndFlush(ByteBuffer(string: text)).get()
}

/// Checks that bytes flow both ways between two ends of a connection.
func expectDataFlows(_ client: any Channel, _ server: any Channel) async throws {
    try await write("ping from client", to: client)
    #expect(try await readString(from: server, count: 16) == "ping from client")
    try await write("pong from server", to: server)
    #expect(try await readString(from: client, count: 16) == "pong from server")
}

/// Whether a channel gets closed within `seconds`.
func becomesClosed(_ channel: any Channel, seconds: Double = 5) async -> Bool {
    let closed = channel.closeFuture.map { true }
    return (try? await firstOf(closed, orAfter: seconds, .success(false)).get()) ?? false
}

/// A fresh directory for Unix-domain sockets; short, to stay under the sun_path limit.
func makeSocketDirectory() throws -> String {
    var template = Array("/tmp/aemp-tcp-XXXXXX".utf8CString)
    guard let result = mkdtemp(&template) else { throw SocketError(.invalidArgument, "mkdtemp failed") }
    return String(cString: result)
}

/// A started echo-less server that records the connections it accepts.
struct RecordingServer {
    let server: TCPServer
    let accepted: Recorder<TCPConnection>

    init(host: String?, port: Int = 0) throws {
        let accepted = Recorder<TCPConnection>()
        self.server = try tcpServer(host: host, port: port, accept: accepted.callback)
        self.accepted = accepted
    }

    init(unixPath: String) throws {
        let accepted = Recorder<TCPConnection>()
        self.server = try tcpServer(host: "unix/", service: unixPath, accept: accepted.callback)
        self.accepted = accepted
    }
}

// MARK: - tcpConnect

@Suite("tcpConnect") struct TCPConnectTests {
    @Test func connectsOverIPv4AndDataFlows() async throws {
        let listener = try RecordingServer(host: "127.0.0.1")
        let outcomes = Recorder<TCPConnectOutcome>()
        let service = String(listener.server.localPort)
        let pending = tcpConnect(host: "127.0.0.1", service: service, connect: outcomes.callback)
        let outcome = try await outcomes.element(1)
        let client = try #require(outcome.connection)
        #expect(client.peerHost == "127.0.0.1")
        #expect(client.peerPort == listener.server.localPort)
        #expect(client.peerService == String(listener.server.localPort))
        #expect(client.peer == .ip(.ipv4Loopback, port: listener.server.localPort))
        #expect(try await client.channel.getOption(.autoRead).get() == false)
        #expect(try await client.channel.getOption(.tcpOption(.tcp_nodelay)).get() == 0)
        let server = try await listener.accepted.element(1)
        #expect(try await server.channel.getOption(.autoRead).get() == false)
        #expect(try await server.channel.getOption(.tcpOption(.tcp_nodelay)).get() == 0)
        let activationLeft = try await server.channel.eventLoop.submit {
            (try? server.channel.pipeline.syncOperations.context(handlerType: TCPAcceptedActivation.self)) != nil
        }.get()
        #expect(!activationLeft)
        #expect(server.peerHost == "127.0.0.1")
        #expect(server.peerPort == client.channel.localAddress?.port)
        try await expectDataFlows(client.channel, server.channel)
        #expect(outcomes.count == 1)
        pending.cancel()  // after success: must leave the socket alone
        try await write("still open", to: client.channel)
        #expect(try await readString(from: server.channel, count: 10) == "still open")
        try await client.channel.close()
    }

    @Test(.enabled(if: machineHasIPv6, "this machine has no IPv6 loopback"))
    func connectsOverIPv6() async throws {
        let listener = try RecordingServer(host: "::1")
        #expect(listener.server.localHost == "::1")
        let client = try await tcpConnect(host: "::1", service: String(listener.server.localPort))
        #expect(client.peerHost == "::1")
        #expect(client.peerPort == listener.server.localPort)
        let server = try await listener.accepted.element(1)
        #expect(server.peerHost == "::1")
        try await expectDataFlows(client.channel, server.channel)
        try await client.channel.close()
    }

    @Test func connectsToUnixSocket() async throws {
        let directory = try makeSocketDirectory()
        defer { rmdir(directory) }
        let path = directory + "/s"
        let listener = try RecordingServer(unixPath: path)
        defer { listener.server.cancel() }
        let outcomes = Recorder<TCPConnectOutcome>()
        let pending = tcpConnect(host: "unix/", service: path, connect: outcomes.callback)
        let client = try #require(try await outcomes.element(1).connection)
        #expect(client.peerHost == "unix/")
        #expect(client.peerService == path)
        #expect(client.peerPort == 0)
        let server = try await listener.accepted.element(1)
        #expect(server.peerHost == "unix/")
        #expect(server.peerService == "")
        try await expectDataFlows(client.channel, server.channel)
        try await client.channel.close()
        _ = pending
    }

    @Test func missingUnixSocketFails() async throws {
        let directory = try makeSocketDirectory()
        defer { rmdir(directory) }
        let error = await #expect(throws: SocketError.self) {
            _ = try await tcpConnect(host: "unix/", service: directory + "/absent")
        }
        #expect(error?.code == SocketError.Code(errno: ENOENT))
    }

    @Test func refusedPortGivesConnectionRefused() async throws {
        let closed = try ClosedPort()
        let outcomes = Recorder<TCPConnectOutcome>()
        let pending = tcpConnect(host: "127.0.0.1", service: String(closed.port), connect: outcomes.callback)
        let error = try #require(try await outcomes.element(1).error)
        #expect(error.code == .connectionRefused)
        #expect(error.message.contains("127.0.0.1"))
        #expect(error.connectAttemptFailures.map(\.target) == [.ip(.ipv4Loopback, port: closed.port)])
        #expect(error.connectAttemptFailures.first?.error.code == .connectionRefused)
        try await Task.sleep(for: .milliseconds(50))
        #expect(outcomes.count == 1)
        _ = pending
    }

    @Test func unresolvableHostGivesENXIO() async throws {
        let error = await #expect(throws: SocketError.self) {
            _ = try await within { try await tcpConnect(host: "no such host!", service: "80") }
        }
        #expect(error?.code == .noSuchAddress)
    }

    @Test func noTargetsGivesENXIO() async throws {
        let error = await #expect(throws: SocketError.self) {
            _ = try await tcpConnect(targets: [])
        }
        #expect(error?.code == .noSuchAddress)
        #expect(error?.connectAttemptFailures.isEmpty == true)
    }

    @Test func firstTargetRefusesSecondAccepts() async throws {
        let closed = try ClosedPort()
        let listener = try RecordingServer(host: "127.0.0.1")
        let port = listener.server.localPort
        let prepared = Recorder<Int>()
        let client = try await tcpConnect(
            targets: [.ip(.ipv4Loopback, port: closed.port), .ip(.ipv4Loopback, port: port)],
            prepare: { [callback = prepared.callback] channel in
                callback(1)
                #expect(!channel.isActive)
                return nil
            }
        )
        #expect(client.peerPort == port)
        #expect(prepared.count == 2)
        _ = try await listener.accepted.element(1)
        try await client.channel.close()
    }

    @Test func retryMovesOnToTheNextTargetThenFails() async throws {
        let first = try RecordingServer(host: "127.0.0.1")
        let second = try RecordingServer(host: "127.0.0.1")
        let targets: [ConnectTarget] = [
            .ip(.ipv4Loopback, port: first.server.localPort), .ip(.ipv4Loopback, port: second.server.localPort),
        ]
        let outcomes = Recorder<TCPConnectOutcome>()
        let pending = tcpConnect(targets: targets) { outcome in
            outcomes.callback(outcome)
            if case .connected(_, let retry) = outcome { retry() }
        }
        let one = try #require(try await outcomes.element(1).connection)
        #expect(one.peerPort == first.server.localPort)
        let two = try #require(try await outcomes.element(2).connection)
        #expect(two.peerPort == second.server.localPort)
        let error = try #require(try await outcomes.element(3).error)
        #expect(error.code == SocketError.Code(errno: ECONNABORTED))
        #expect(error.connectAttemptFailures.count == 2)
        #expect(await becomesClosed(one.channel))
        #expect(await becomesClosed(two.channel))
        // The servers see the rejected connections closed.
        let accepted = try await first.accepted.element(1)
        _ = try? await accepted.channel.setOption(.autoRead, value: true).get()
        #expect(await becomesClosed(accepted.channel))
        _ = pending
    }

    @Test func retryFromAnotherThreadAfterTheCallback() async throws {
        let first = try RecordingServer(host: "127.0.0.1")
        let second = try RecordingServer(host: "127.0.0.1")
        let outcomes = Recorder<TCPConnectOutcome>()
        let pending = tcpConnect(
            targets: [
                .ip(.ipv4Loopback, port: first.server.localPort), .ip(.ipv4Loopback, port: second.server.localPort),
            ],
            connect: outcomes.callback
        )
        guard case .connected(let one, let retry) = try await outcomes.element(1) else {
            Issue.record("first target did not connect")
            return
        }
        retry()
        retry()  // only the first call counts
        let two = try #require(try await outcomes.element(2).connection)
        #expect(two.peerPort == second.server.localPort)
        #expect(await becomesClosed(one.channel))
        try await Task.sleep(for: .milliseconds(50))
        #expect(outcomes.count == 2)
        try await two.channel.close()
        _ = pending
    }

    @Test func retryAfterCancelOnlyClosesTheConnection() async throws {
        let first = try RecordingServer(host: "127.0.0.1")
        let second = try RecordingServer(host: "127.0.0.1")
        let outcomes = Recorder<TCPConnectOutcome>()
        let pending = tcpConnect(
            targets: [
                .ip(.ipv4Loopback, port: first.server.localPort), .ip(.ipv4Loopback, port: second.server.localPort),
            ],
            connect: outcomes.callback
        )
        guard case .connected(let one, let retry) = try await outcomes.element(1) else {
            Issue.record("first target did not connect")
            return
        }
        pending.cancel()
        #expect(one.channel.isActive)  // cancelling after success leaves the socket alone
        retry()
        #expect(await becomesClosed(one.channel))
        try await Task.sleep(for: .milliseconds(50))
        #expect(outcomes.count == 1)
        #expect(second.accepted.count == 0)
    }

    @Test func attemptTimesOutWithPrepareTimeout() async throws {
        let full = try await FullListener.make()
        let outcomes = Recorder<TCPConnectOutcome>()
        let pending = tcpConnect(
            targets: [full.target],
            prepare: { _ in .milliseconds(200) },
            connect: outcomes.callback
        )
        let error = try #require(try await outcomes.element(1).error)
        #expect(error.code == .timedOut)
        #expect(error.connectAttemptFailures.first?.error.code == .timedOut)
        _ = pending
    }

    @Test func timedOutTargetIsFollowedByTheNext() async throws {
        let full = try await FullListener.make()
        let listener = try RecordingServer(host: "127.0.0.1")
        let client = try await tcpConnect(
            targets: [full.target, .ip(.ipv4Loopback, port: listener.server.localPort)],
            prepare: { _ in .milliseconds(200) }
        )
        #expect(client.peerPort == listener.server.localPort)
        try await client.channel.close()
    }

    @Test func prepareCanBindTheSocket() async throws {
        let listener = try RecordingServer(host: "127.0.0.1")
        let localPort = try ClosedPort().port  // a port that was free a moment ago
        let bindFailures = Recorder<String>()
        let client = try await tcpConnect(host: "127.0.0.1", service: listener.server.localService) { channel in
            let address = try SocketAddress(ipAddress: "127.0.0.1", port: localPort)
            channel.bind(to: address).whenFailure { [callback = bindFailures.callback] in callback("\($0)") }
            return nil
        }
        #expect(bindFailures.all.isEmpty)
        #expect(client.channel.localAddress?.port == localPort)
        #expect(try await listener.accepted.element(1).peerPort == localPort)
        try await client.channel.close()
    }

    @Test func prepareErrorFailsThatAttempt() async throws {
        let listener = try RecordingServer(host: "127.0.0.1")
        let target = ConnectTarget.ip(.ipv4Loopback, port: listener.server.localPort)
        let calls = Recorder<Int>()
        let client = try await tcpConnect(targets: [target, target]) { [callback = calls.callback] _ in
            callback(1)
            if calls.count == 1 { throw SocketError(.addressNotAvailable, "no") }
            return nil
        }
        #expect(client.peerPort == listener.server.localPort)
        #expect(calls.count == 2)
        try await client.channel.close()

        let error = await #expect(throws: SocketError.self) {
            _ = try await tcpConnect(targets: [target]) { _ in throw SocketError(.addressNotAvailable, "no") }
        }
        #expect(error?.code == .addressNotAvailable)
    }

    @Test func cancelAbortsPendingConnectAndClosesTheSocket() async throws {
        let full = try await FullListener.make()
        let outcomes = Recorder<TCPConnectOutcome>()
        let channels = Recorder<any Channel>()
        let pending = tcpConnect(
            targets: [full.target],
            prepare: { [callback = channels.callback] channel in
                callback(channel)
                return .seconds(10)
            },
            connect: outcomes.callback
        )
        let channel = try await channels.element(1)
        pending.cancel()
        #expect(pending.isCancelled)
        #expect(await becomesClosed(channel))
        try await Task.sleep(for: .milliseconds(100))
        #expect(outcomes.count == 0)
    }

    @Test func droppingTheGuardAbortsTheConnect() async throws {
        let full = try await FullListener.make()
        let outcomes = Recorder<TCPConnectOutcome>()
        let channels = Recorder<any Channel>()
        var pending: TCPConnectGuard? = tcpConnect(
            targets: [full.target],
            prepare: { [callback = channels.callback] channel in
                callback(channel)
                return .seconds(10)
            },
            connect: outcomes.callback
        )
        let channel = try await channels.element(1)
        #expect(pending != nil)
        pending = nil
        #expect(await becomesClosed(channel))
        try await Task.sleep(for: .milliseconds(100))
        #expect(outcomes.count == 0)
    }

    @Test func cancelBeforeStartRunsNothing() async throws {
        let listener = try RecordingServer(host: "127.0.0.1")
        let outcomes = Recorder<TCPConnectOutcome>()
        let prepared = Recorder<Int>()
        // Made and cancelled within one task on the connect's own loop: the attempt starts on a later
        // iteration, so the cancel surely comes first (from another thread it could race the start).
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let port = String(listener.server.localPort)
        try await loop.submit {
            let pending = tcpConnect(
                host: "127.0.0.1",
                service: port,
                on: loop,
                prepare: { [callback = prepared.callback] _ in
                    callback(1)
                    return nil
                },
                connect: outcomes.callback
            )
            pending.cancel()
        }.get()
        try await Task.sleep(for: .milliseconds(100))
        #expect(outcomes.count == 0)
        #expect(prepared.count == 0)
    }

    @Test func asyncConnectHonoursTaskCancellation() async throws {
        let full = try await FullListener.make()
        let channels = Recorder<any Channel>()
        let task = Task {
            try await tcpConnect(targets: [full.target]) { [callback = channels.callback] channel in
                callback(channel)
                return .seconds(10)
            }
        }
        let channel = try await channels.element(1)
        task.cancel()
        let result = await task.result
        #expect(throws: SocketError(.cancelled)) { try result.get() }
        #expect(await becomesClosed(channel))
    }

    @Test func asyncConnectInAlreadyCancelledTask() async throws {
        let listener = try RecordingServer(host: "127.0.0.1")
        let port = listener.server.localPort
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await tcpConnect(host: "127.0.0.1", service: String(port))
        }
        let result = await task.result
        #expect(throws: SocketError(.cancelled)) { try result.get() }
    }

    @Test func socketAddressConversions() throws {
        let v4 = try SocketAddress(IPAddress.ipv4Loopback, port: 4040)
        #expect(v4.ipAddress == "127.0.0.1")
        #expect(v4.port == 4040)
        #expect(IPAddress(v4) == .ipv4Loopback)
        #expect(ConnectTarget(v4) == .ip(.ipv4Loopback, port: 4040))
        let v6 = try SocketAddress(ConnectTarget.ip(.ipv6Loopback, port: 1))
        #expect(v6.ipAddress == "::1")
        #expect(ConnectTarget(v6) == .ip(.ipv6Loopback, port: 1))
        let mapped = try SocketAddress(ipAddress: "::ffff:10.1.2.3", port: 7)
        #expect(IPAddress(mapped)?.family == .ipv6)
        #expect(ConnectTarget(mapped) == .ip(IPAddress(bytes: [10, 1, 2, 3])!, port: 7))
        let unix = try SocketAddress(ConnectTarget.unix(path: "/tmp/x"))
        #expect(ConnectTarget(unix) == .unix(path: "/tmp/x"))
        #expect(IPAddress(unix) == nil)
        #expect(throws: SocketError(.invalidArgument)) { try SocketAddress(IPAddress.ipv4Loopback, port: 65536) }
        #expect(throws: SocketError(.invalidArgument)) { try SocketAddress(ConnectTarget.unix(path: "")) }
        #expect(throws: SocketError(SocketError.Code(errno: ENAMETOOLONG))) {
            try SocketAddress(ConnectTarget.unix(path: "/" + String(repeating: "x", count: 200)))
        }
    }
}
