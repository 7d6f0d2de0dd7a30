import AEMPSocket
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

/// A loopback server whose connections are handles that record every line they read and answer
/// each with `echo:<line>`.
final class LineServer: @unchecked Sendable {
    let server: TCPServer
    let lines: Collector
    private let box: HandleBox

    init(host: String, service: String? = nil, port: Int = 0, on loop: any EventLoop, tag: String = "") throws {
        let box = HandleBox()
        let lines = Collector()
        let accept: TCPServerAccept = { connection in
            let handle = Handle(channel: connection.channel, options: HandleOptions())
            box.add(handle)
            LineServer.readLoop(handle, lines, tag: tag)
        }
        if let service {
            server = try tcpServer(host: host, service: service, on: loop, accept: accept)
        } else {
            server = try tcpServer(host: host, port: port, on: loop, accept: accept)
        }
        self.box = box
        self.lines = lines
    }

    private static func readLoop(_ handle: Handle, _ lines: Collector, tag: String) {
        handle.onError { _, _ in }
        handle.pushRead(.line()) { handle, line in
            lines.add(tag + line.string)
            handle.pushWrite("echo:\(line.string)\n")
            readLoop(handle, lines, tag: tag)
        }
    }

    var port: Int { server.localPort }

    func stop() {
        server.cancel()
        box.destroyAll()
    }
}

/// Keeps server-side handles alive (their loop owns them).
final class HandleBox: @unchecked Sendable {
    private let lock = NSLock()
    private var handles: [Handle] = []

    func add(_ handle: Handle) {
        lock.lock()
        handles.append(handle)
        lock.unlock()
    }

    func destroyAll() {
        lock.lock()
        let all = handles
        handles = []
        lock.unlock()
        for handle in all { handle.destroy() }
    }
}

/// Hands a retry from the loop to the test thread.
final class RetrySlot: @unchecked Sendable {
    private let lock = NSLock()
    private var retry: HandleConnectRetry?

    func set(_ value: HandleConnectRetry) {
        lock.lock()
        retry = value
        lock.unlock()
    }

    func get() -> HandleConnectRetry? {
        lock.lock()
        defer { lock.unlock() }
        return retry
    }
}

/// Holds the client handle created on the loop.
/// Options whose `onError` only records: a late error on a client handle must show up as a failed
/// expectation, not as the uncaught-error trap that ends the whole test process.
func tolerantOptions(_ errors: Collector? = nil) -> HandleOptions {
    var options = HandleOptions()
    options.onError = { _, error in errors?.add("error \(error.code)") }
    return options
}

final class ClientSlot: @unchecked Sendable {
    var handle: Handle?
}

@Suite("Handle connect form", .serialized, .timeLimit(.minutes(2)))
final class ConnectTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    deinit { try? group.syncShutdownGracefully() }
    var loop: any EventLoop { group.next() }

    /// Runs `body` on the loop and waits for it.
    func onLoop(_ body: @escaping @Sendable (any EventLoop) -> Void) throws {
        let loop = self.loop
        try loop.submit { body(loop) }.wait()
    }

    /// A loopback TCP port with nothing listening.
    func closedPort() throws -> Int {
        let server = try tcpServer(host: "127.0.0.1", port: 0, on: loop) { $0.channel.close(promise: nil) }
        let port = server.localPort
        server.cancel()
        try server.listeningChannel.wait().closeFuture.wait()
        return port
    }

    @Test(arguments: [false, true])
    func queuedWriteAndReadBeforeConnect(encoding: Bool) throws {
        let server = try LineServer(host: "127.0.0.1", on: loop)
        defer { server.stop() }
        let events = Collector()
        let slot = ClientSlot()
        let port = server.port
        try onLoop { loop in
            let handle = Handle(
                connectingTo: "127.0.0.1", service: String(port), on: loop, options: tolerantOptions(),
                onConnect: { handle, host, port, _ in
                    events.add("connect \(host) \(port) \(handle.channel != nil)")
                },
                onConnectError: { _, error in events.add("connect-error \(error.code)") })
            #expect(handle.channel == nil)
            #expect(handle.peername == "127.0.0.1")
            if encoding {
                // Encoded straight into the pending buffer, which goes out once connected.
                handle.pushWrite { $0.writeString("hel") }
                handle.pushWrite { $0.writeString("lo\n") }
            } else {
                handle.pushWrite("hello\n")
            }
            handle.pushRead(.line()) { _, line in events.add("read \(line.string)") }
            slot.handle = handle
        }
        let seen = events.wait(for: 2)
        #expect(seen == ["connect 127.0.0.1 \(port) true", "read echo:hello"])
        #expect(server.lines.wait(for: 1) == ["hello"])
        try onLoop { _ in slot.handle?.destroy() }
    }

    @Test func settingsChangedWhileConnectingApply() throws {
        let server = try LineServer(host: "127.0.0.1", on: loop)
        defer { server.stop() }
        let events = Collector()
        let slot = ClientSlot()
        let port = server.port
        try onLoop { loop in
            let handle = Handle(connectingTo: "127.0.0.1", service: String(port), on: loop, options: tolerantOptions())
            handle.onTimeout(.read) { handle in
                events.add("rtimeout")
                handle.destroy()
            }
            handle.setTimeout(0.05, kind: .read)
            handle.onDrain { _ in events.add("drain") }
            slot.handle = handle
        }
        // As in Perl: the on_drain setter runs it at once (empty buffer), the start runs it again,
        // and the read timeout set while connecting is armed only once connected.
        #expect(events.wait(for: 3) == ["drain", "drain", "rtimeout"])
    }

    @Test func refusedGoesToOnConnectError() throws {
        let port = try closedPort()
        let events = Collector()
        let slot = ClientSlot()
        try onLoop { loop in
            var options = HandleOptions()
            options.onError = { _, error in events.add("error \(error.code)") }
            slot.handle = Handle(
                connectingTo: "127.0.0.1", service: String(port), on: loop, options: options,
                onConnect: { _, _, _, _ in events.add("connect") },
                onConnectError: { handle, error in
                    events.add("connect-error \(error.code) \(error.isFatal) \(error.message) \(handle.isDestroyed)")
                })
        }
        let message = String(cString: strerror(ECONNREFUSED))
        #expect(events.wait(for: 1) == ["connect-error ECONNREFUSED true \(message) false"])
        let destroyed = try loop.submit { slot.handle?.isDestroyed ?? false }.wait()
        #expect(destroyed)
        usleep(20_000)
        #expect(events.all.count == 1)
    }

    @Test func refusedWithoutOnConnectErrorIsFatalOnError() throws {
        let port = try closedPort()
        let events = Collector()
        let slot = ClientSlot()
        try onLoop { loop in
            var options = HandleOptions()
            options.onError = { handle, error in
                events.add("error \(error.code) \(error.isFatal)")
            }
            let handle = Handle(connectingTo: "127.0.0.1", service: String(port), on: loop, options: options)
            handle.pushRead(.line()) { _, _ in events.add("read") }
            slot.handle = handle
        }
        #expect(events.wait(for: 1) == ["error ECONNREFUSED true"])
        let destroyed = try loop.submit { slot.handle?.isDestroyed ?? false }.wait()
        #expect(destroyed)
    }

    @Test func uncaughtConnectErrorReachesTheHook() throws {
        let port = try closedPort()
        let events = Collector()
        let slot = ClientSlot()
        try onLoop { loop in
            let handle = Handle(connectingTo: "127.0.0.1", service: String(port), on: loop)
            handle.core.uncaughtErrorHook = { message in events.add(message) }
            slot.handle = handle
        }
        let seen = events.wait(for: 1)
        #expect(seen.count == 1)
        #expect(seen.first?.hasPrefix("AnyEvent::Handle uncaught error:") == true)
    }

    @Test func unknownServiceIsENXIO() throws {
        let events = Collector()
        let slot = ClientSlot()
        try onLoop { loop in
            slot.handle = Handle(
                connectingTo: "127.0.0.1", service: "no-such-service-aemp", on: loop, options: tolerantOptions(),
                onConnectError: { _, error in events.add("connect-error \(error.code)") })
        }
        #expect(events.wait(for: 1) == ["connect-error ENXIO"])
    }

    @Test func retryMovesToTheNextTarget() throws {
        let first = try LineServer(host: "127.0.0.1", on: loop, tag: "v4:")
        defer { first.stop() }
        let second: LineServer
        do {
            second = try LineServer(host: "::1", port: first.port, on: loop, tag: "v6:")
        } catch {
            // The port is taken on ::1 by someone else; nothing to test against.
            return
        }
        defer { second.stop() }
        let hosts = FileManager.default.temporaryDirectory.appendingPathComponent("aemp-hosts-\(getpid())")
        try "127.0.0.1 twohomes.test\n::1 twohomes.test\n".write(to: hosts, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: hosts) }
        let resolver = DNSResolver(
            configuration: .init(timeout: .milliseconds(200), attempts: 1, hostsFile: hosts.path), group: group)
        let events = Collector()
        let slot = ClientSlot()
        let port = first.port
        try onLoop { loop in
            var options = HandleOptions()
            // An error here is a test failure, reported as an event instead of the uncaught-error trap.
            options.onError = { _, error in events.add("error \(error.code)") }
            let handle = Handle(
                connectingTo: "twohomes.test", service: String(port), on: loop, resolver: resolver, options: options,
                onPrepare: { _, _ in
                    events.add("prepare")
                    return nil
                },
                onConnect: { handle, host, _, retry in
                    events.add("connect \(host)")
                    if host == "127.0.0.1" {
                        // Wait for the queued line to arrive, then reject this target.
                        handle.pushRead(.line()) { handle, line in
                            events.add("first \(line.string)")
                            handle.pushRead(.line()) { _, _ in events.add("stale read") }
                            retry()
                        }
                    } else {
                        handle.pushWrite("second\n")
                        handle.pushRead(.line()) { _, line in events.add("second \(line.string)") }
                    }
                })
            handle.pushWrite("first\n")
            slot.handle = handle
        }
        let seen = events.wait(for: 6)
        #expect(seen == [
            "prepare", "connect 127.0.0.1", "first echo:first",
            "prepare", "connect ::1", "second echo:second",
        ])
        #expect(first.lines.wait(for: 1) == ["v4:first"])
        #expect(second.lines.wait(for: 1) == ["v6:second"])
        try onLoop { _ in slot.handle?.destroy() }
    }

    @Test func retryWithNoTargetLeftReportsTheError() throws {
        let server = try LineServer(host: "127.0.0.1", on: loop)
        defer { server.stop() }
        let events = Collector()
        let slot = ClientSlot()
        let port = server.port
        try onLoop { loop in
            slot.handle = Handle(
                connectingTo: "127.0.0.1", service: String(port), on: loop, options: tolerantOptions(),
                onConnect: { handle, _, _, retry in
                    events.add("connect")
                    // A large pending write on the old connection must not surface as an error.
                    handle.pushWrite(ByteBuffer(repeating: 0x41, count: 4 << 20))
                    retry()
                    events.add("after retry wbuf \(handle.writeBufferLength) channel \(handle.channel == nil)")
                },
                onConnectError: { _, error in events.add("connect-error \(error.code.errno == ECONNABORTED)") })
        }
        // With no target left, the failure is reported from inside `retry()`.
        #expect(events.wait(for: 3) == ["connect", "connect-error true", "after retry wbuf 0 channel true"])
    }

    @Test func retryLaterFromAnotherThreadFailsAsyncWaiters() async throws {
        let server = try LineServer(host: "127.0.0.1", on: loop)
        defer { server.stop() }
        let events = Collector()
        let slot = ClientSlot()
        let retries = RetrySlot()
        let port = server.port
        try onLoop { loop in
            slot.handle = Handle(
                connectingTo: "127.0.0.1", service: String(port), on: loop, options: tolerantOptions(),
                onConnect: { _, _, _, retry in
                    events.add("connect")
                    retries.set(retry)
                },
                onConnectError: { _, error in events.add("connect-error \(error.code.errno == ECONNABORTED)") })
        }
        #expect(events.wait(for: 1) == ["connect"])
        let handle = try #require(slot.handle)
        let reader = Task { try await handle.read(LineReader.line()) }
        try await Task.sleep(for: .milliseconds(20))
        let retry = try #require(retries.get())
        retry()
        await #expect(throws: HandleError(.init(errno: ECONNABORTED), fatal: true)) {
            _ = try await reader.value
        }
        #expect(events.wait(for: 2) == ["connect", "connect-error true"])
    }

    @Test func timeoutFromOnPrepare() throws {
        // A listener that never accepts, its queue filled: further connects hang in SYN_SENT.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 0) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        #expect(bound)
        var fillers: [Int32] = []
        defer { for fd in fillers { close(fd) } }
        for _ in 0..<4 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
            fillers.append(fd)
        }
        usleep(50_000)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let events = Collector()
        let slot = ClientSlot()
        let started = Date()
        try onLoop { loop in
            slot.handle = Handle(
                connectingTo: "127.0.0.1", service: String(port), on: loop, options: tolerantOptions(),
                onPrepare: { _, channel in
                    events.add("prepare \(channel.isActive)")
                    return 0.2
                },
                onConnect: { _, _, _, _ in events.add("connect") },
                onConnectError: { _, error in events.add("connect-error \(error.code)") })
        }
        let seen = events.wait(for: 2)
        if seen.last == "connect" { return }  // the kernel accepted after all; nothing to time out
        #expect(seen == ["prepare false", "connect-error ETIMEDOUT"])
        #expect(Date().timeIntervalSince(started) < 4)
    }

    @Test func destroyWhileConnectingAborts() throws {
        let server = try LineServer(host: "127.0.0.1", on: loop)
        defer { server.stop() }
        let events = Collector()
        let port = server.port
        try onLoop { loop in
            var options = HandleOptions()
            options.onError = { _, error in events.add("error \(error.code)") }
            let handle = Handle(
                connectingTo: "127.0.0.1", service: String(port), on: loop, options: options,
                onConnect: { _, _, _, _ in events.add("connect") },
                onConnectError: { _, _ in events.add("connect-error") })
            handle.pushWrite("never\n")
            let pending = handle.core.connectGuard
            handle.destroy()
            #expect(handle.isDestroyed)
            #expect(pending?.isCancelled == true)
            #expect(handle.core.connectGuard == nil)
        }
        usleep(100_000)
        #expect(events.all.isEmpty)
        #expect(server.lines.all.isEmpty)
    }

    @Test func droppingTheHandleWhileConnectingAborts() throws {
        let port = try closedPort()
        let events = Collector()
        try onLoop { loop in
            _ = Handle(
                connectingTo: "127.0.0.1", service: String(port), on: loop, options: tolerantOptions(),
                onConnect: { _, _, _, _ in events.add("connect") },
                onConnectError: { _, _ in events.add("connect-error") })
        }
        usleep(100_000)
        #expect(events.all.isEmpty)
    }

    @Test func unixDomainSocket() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("aemp-hc-\(getpid()).sock").path
        unlink(path)
        let server = try LineServer(host: "unix/", service: path, on: loop)
        defer { server.stop() }
        let events = Collector()
        let slot = ClientSlot()
        try onLoop { loop in
            let handle = Handle(
                connectingTo: "unix/", service: path, on: loop, options: tolerantOptions(),
                onConnect: { _, host, port, _ in events.add("connect \(host) \(port == path)") })
            handle.pushWrite("over unix\n")
            handle.pushRead(.line()) { _, line in events.add("read \(line.string)") }
            slot.handle = handle
        }
        #expect(events.wait(for: 2) == ["connect unix/ true", "read echo:over unix"])
        try onLoop { _ in slot.handle?.destroy() }
    }

    @Test func asyncConnectReturnsAStartedHandle() async throws {
        let server = try LineServer(host: "127.0.0.1", on: loop)
        defer { server.stop() }
        let handle = try await Handle.connect(host: "127.0.0.1", service: String(server.port), on: loop)
        try await handle.write(ByteBuffer(string: "async\n"))
        let line = try await handle.read(LineReader.line())
        #expect(line.string == "echo:async")
        let peername = try await loop.submit { handle.peername }.get()
        #expect(peername == "127.0.0.1")
        handle.destroy()
    }

    @Test func asyncConnectRefusedThrows() async throws {
        let port = try closedPort()
        await #expect(throws: HandleError(.init(errno: ECONNREFUSED), fatal: true)) {
            _ = try await Handle.connect(host: "127.0.0.1", service: String(port), on: loop)
        }
    }

    @Test func asyncConnectCancelledThrowsECANCELED() async throws {
        let loop = self.loop
        let task = Task {
            try await Handle.connect(host: "127.0.0.1", service: "1", on: loop)
        }
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("connected to port 1")
        } catch let error as HandleError {
            #expect([ECANCELED, ECONNREFUSED].contains(error.code.errno))
        }
    }
}
