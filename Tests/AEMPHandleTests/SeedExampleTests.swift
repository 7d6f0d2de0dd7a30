import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

/// A handle on one end of a loopback TCP connection (or a socketpair), the raw peer on the other.
final class PeerFixture: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let peer: Int32
    /// Released in ``shutdown()`` before the loop stops, so that its deinit can still reach the loop.
    private(set) var handle: Handle!
    private var peerOpen = true

    init(tcp: Bool = true, options: @escaping @Sendable () -> HandleOptions = { HandleOptions() }) throws {
        let pair = try Bench.makePair(tcp: tcp)
        peer = pair.peer
        handle = try Handle.make(socket: pair.handle, group: group, options: options).wait()
    }

    func peerWrite(_ text: String) {
        _ = Bench.writeAll(peer, Array(text.utf8))
    }

    func peerWrite(bytes: [UInt8]) {
        _ = Bench.writeAll(peer, bytes)
    }

    /// Reads until `count` bytes or EOF arrived (bounded).
    func peerRead(count: Int, seconds: Double = 10) -> (bytes: [UInt8], eof: Bool) {
        Bench.readUntil(peer, count: count, seconds: seconds)
    }

    /// Runs `body` on the handle's loop and waits for it.
    func onLoop(_ body: @escaping @Sendable (Handle) -> Void) {
        let handle: Handle = self.handle
        try? group.next().submit { body(handle) }.wait()
    }

    /// Resets the connection from the peer's side (SO_LINGER 0, then close: the kernel sends RST).
    func resetPeer() {
        guard peerOpen else { return }
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(peer, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        closePeer()
    }

    func closePeer() {
        guard peerOpen else { return }
        peerOpen = false
        close(peer)
    }

    func shutdown() {
        onLoop { $0.destroy() }
        handle = nil
        closePeer()
        try? group.syncShutdownGracefully()
    }
}

/// The seed's examples and FAQ answers, error codes, options and backpressure, on real loopback sockets.
@Suite("Handle seed examples and FAQ on loopback", .serialized, .timeLimit(.minutes(2)))
struct SeedExampleTests {
    static func recording(_ got: Collector) -> HandleOptions {
        var options = HandleOptions()
        options.onError = { _, error in got.add("error \(error.code) fatal=\(error.isFatal)") }
        return options
    }

    // MARK: EXAMPLES section

    @Test("HTTP header: regex accept \\r\\n\\r\\n with the skip regex, over three writes")
    func httpHeader() throws {
        let got = Collector()
        let fixture = try PeerFixture { Self.recording(got) }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            let accept = try! HandleRegex("\r\n\r\n")
            let skip = try! HandleRegex("^.*[^\r\n]")
            handle.pushRead(.regex(accept, skip: skip)) { _, match in got.add("header \(String(buffer: match.data))") }
            handle.pushRead(.line()) { _, line in got.add("body \(line.string)") }
        }
        fixture.peerWrite("GET / HTTP/1.0\r\nHost: example.org\r")
        usleep(20_000)
        fixture.peerWrite("\n\r")
        usleep(20_000)
        fixture.peerWrite("\npayload\n")
        #expect(
            got.wait(for: 2) == ["header GET / HTTP/1.0\r\nHost: example.org\r\n\r\n", "body payload"])
    }

    @Test("EPP: frames written with packstring N come back through the on_read/unshift_read parser as written")
    func epp() throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = Self.recording(got)
            // The seed's parser, unchanged: on_read unshifts a 4-octet header read, which unshifts the body.
            options.onRead = { handle in
                handle.unshiftRead(.chunk(4)) { handle, header in
                    let length = Int(header.getInteger(at: header.readerIndex, as: UInt32.self)!)
                    handle.unshiftRead(.chunk(length)) { _, xml in got.add(String(buffer: xml)) }
                }
            }
            return options
        }
        defer { fixture.shutdown() }
        let frames = ["<epp><hello/></epp>", "", "<epp><greeting>\(String(repeating: "x", count: 5000))</greeting></epp>"]
        fixture.onLoop { handle in
            for frame in frames {
                try? handle.pushWrite(PackstringWriter(format: "N", payload: ByteBuffer(string: frame)))
            }
        }
        let total = frames.reduce(0) { $0 + 4 + $1.utf8.count }
        let wire = fixture.peerRead(count: total).bytes
        #expect(wire.count == total)
        #expect(Array(wire.prefix(4)) == [0, 0, 0, 19])
        // Echo the frames back: the first one byte by byte, the rest in one write.
        for byte in wire.prefix(23) {
            fixture.peerWrite(bytes: [byte])
            usleep(1000)
        }
        fixture.peerWrite(bytes: Array(wire.dropFirst(23)))
        #expect(got.wait(for: 3) == frames)
    }

    @Test("OK + extra line: unshift_read from inside the callback goes before the queued 64-byte chunk",
          arguments: [true, false])
    func okExtraLine(ok: Bool) throws {
        let got = Collector()
        let fixture = try PeerFixture { Self.recording(got) }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.pushWrite("request 1\r\n")
            handle.pushRead(.line()) { handle, line in
                got.add("response 1 \(line.string)")
                if line.string == "OK" {
                    handle.unshiftRead(.line()) { _, extra in got.add("extra \(extra.string)") }
                }
            }
            handle.pushWrite("request 2\r\n")
            handle.pushRead(.chunk(64)) { _, chunk in got.add("response 2 \(chunk.readableBytes)") }
        }
        #expect(String(decoding: fixture.peerRead(count: 22).bytes, as: UTF8.self) == "request 1\r\nrequest 2\r\n")
        let sixtyFour = String(repeating: "z", count: 64)
        fixture.peerWrite(ok ? "OK\r\nextra data\r\n" + sixtyFour : "ERROR\r\n" + sixtyFour)
        let expected =
            ok ? ["response 1 OK", "extra extra data", "response 2 64"] : ["response 1 ERROR", "response 2 64"]
        #expect(got.wait(for: expected.count) == expected)
    }

    // MARK: FAQ answers

    @Test("FAQ request loop with an outstanding push_read: EOF between requests is a fatal EPIPE")
    func requestLoopPushRead() throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = Self.recording(got)
            options.onEof = { _ in got.add("eof") }
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            func startRequest(_ handle: Handle) {
                handle.pushRead(.line()) { handle, line in
                    got.add("request \(line.string)")
                    handle.pushWrite("reply \(line.string)\n")
                    startRequest(handle)
                }
            }
            startRequest(handle)
        }
        fixture.peerWrite("a\nb\n")
        #expect(String(decoding: fixture.peerRead(count: 16).bytes, as: UTF8.self) == "reply a\nreply b\n")
        shutdown(fixture.peer, Int32(SHUT_WR))
        #expect(got.wait(for: 3) == ["request a", "request b", "error EPIPE fatal=true"])
        fixture.onLoop { handle in got.add("destroyed \(handle.isDestroyed)") }
        #expect(got.all.last == "destroyed true")
    }

    @Test("FAQ request loop through on_read: EOF while idle is on_eof, not an error")
    func requestLoopOnRead() throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = Self.recording(got)
            options.onEof = { _ in got.add("eof") }
            options.onRead = { handle in
                handle.pushRead(.line()) { handle, line in
                    got.add("request \(line.string)")
                    handle.pushWrite("reply \(line.string)\n")
                }
            }
            return options
        }
        defer { fixture.shutdown() }
        fixture.peerWrite("a\n")
        usleep(10_000)
        fixture.peerWrite("b\nc\n")
        #expect(
            String(decoding: fixture.peerRead(count: 24).bytes, as: UTF8.self) == "reply a\nreply b\nreply c\n")
        shutdown(fixture.peer, Int32(SHUT_WR))
        #expect(got.wait(for: 4) == ["request a", "request b", "request c", "eof"])
    }

    @Test("FAQ read until the peer closes: on_read does nothing, the data is in rbuf at the EPIPE; read_size grew")
    func readUntilClose() throws {
        let got = Collector()
        let size = 300_000
        let fixture = try PeerFixture {
            var options = HandleOptions()
            options.maxReadSize = 65536
            options.onRead = { _ in }
            options.onEof = nil
            options.onError = { handle, error in
                let data = handle.readBuffer
                handle.consumeAll()
                let intact = data.readableBytesView.elementsEqual((0..<size).lazy.map { UInt8(truncatingIfNeeded: $0) })
                got.add("error \(error.code) fatal=\(error.isFatal) \(data.readableBytes) intact=\(intact)")
                got.add("read size grew \(handle.readSize > 2048 && handle.readSize <= 65536)")
            }
            return options
        }
        defer { fixture.shutdown() }
        fixture.peerWrite(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0) })
        fixture.closePeer()
        #expect(got.wait(for: 2) == ["error EPIPE fatal=true \(size) intact=true", "read size grew true"])
    }

    @Test("FAQ wait until all data is written: destroy in on_drain; the peer gets everything, then EOF")
    func destroyInOnDrain() throws {
        let got = Collector()
        let size = 2 << 20
        let fixture = try PeerFixture { Self.recording(got) }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.pushWrite(bytes: repeatElement(UInt8(ascii: "d"), count: size))
            handle.onDrain { handle in
                got.add("drain \(handle.writeBufferLength)")
                handle.destroy()
            }
        }
        let received = fixture.peerRead(count: size + 1)
        #expect(received.bytes.count == size)
        #expect(received.eof)
        #expect(got.all == ["drain 0"])
    }

    @Test("push_shutdown half-closes after the queue drained; reading still works")
    func pushShutdownHalfClose() throws {
        let got = Collector()
        let size = 1 << 20
        let fixture = try PeerFixture { Self.recording(got) }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.pushWrite(bytes: repeatElement(UInt8(ascii: "s"), count: size))
            handle.pushShutdown()
            handle.pushRead(.line()) { _, line in got.add("line \(line.string)") }
        }
        let received = fixture.peerRead(count: size + 1)
        #expect(received.bytes.count == size)
        #expect(received.eof)
        fixture.peerWrite("still reading\n")
        #expect(got.wait(for: 1) == ["line still reading"])
    }

    @Test("FAQ 'Broken pipe': EOF with a read outstanding is a fatal EPIPE, the partial data stays, no on_eof")
    func brokenPipe() throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = HandleOptions()
            options.onEof = { _ in got.add("eof") }
            options.onError = { handle, error in
                got.add("error \(error.code) fatal=\(error.isFatal) rbuf=\(String(buffer: handle.readBuffer))")
            }
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in handle.pushRead(.line()) { _, line in got.add("line \(line.string)") } }
        fixture.peerWrite("partial")
        fixture.closePeer()
        #expect(got.wait(for: 1) == ["error EPIPE fatal=true rbuf=partial"])
        usleep(20_000)
        #expect(got.all.count == 1)
    }

    @Test("FAQ TLS server: one cert_file holding the key and then the certificate; a verifying client with peername")
    func tlsServerCombinedFile() throws {
        let certs = try tlsCertificates()
        let combined = certs.path("combined-\(UUID().uuidString).pem")
        let key = try String(contentsOfFile: certs.path("server.key"), encoding: .utf8)
        let cert = try String(contentsOfFile: certs.path("server.pem"), encoding: .utf8)
        try (key + "\n" + cert).write(toFile: combined, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: combined) }
        let serverTLS = try TLSContext(.init(certFile: combined))
        let clientTLS = try TLSTests.clientContext(certs)
        let pair = try TLSPair(
            accepting: serverTLS,
            connecting: clientTLS,
            client: { options, events in
                options.peername = "localhost"
            })
        defer { pair.shutdown() }
        let events = pair.events
        pair.onLoop { server, client in
            server.pushRead(.line()) { handle, line in
                events.add("S:line:\(line.string)")
                handle.pushWrite("world\n")
            }
            client.pushWrite("hello\n")
            client.pushRead(.line()) { _, line in events.add("C:line:\(line.string)") }
        }
        #expect(pair.wait(for: "C:line:world") == ["S:line:hello", "C:line:world"])
    }

    @Test("FAQ: forgetting the last reference inside on_eof is safe; the handle closes and nothing runs afterwards")
    func forgetInsideOnEof() throws {
        final class Box: @unchecked Sendable {
            var handle: Handle?
        }
        let got = Collector()
        let box = Box()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let pair = try Bench.makePair(tcp: true)
        defer { close(pair.peer) }
        box.handle = try Handle.make(socket: pair.handle, group: group) {
            var options = HandleOptions()
            options.onRead = { handle in handle.consumeAll() }
            options.onError = { _, error in got.add("error \(error.code)") }
            options.onEof = { _ in
                got.add("eof")
                box.handle = nil
            }
            options.readTimeout = 0.05
            options.onReadTimeout = { _ in got.add("rtimeout") }
            return options
        }.wait()
        _ = Bench.writeAll(pair.peer, Array("bye".utf8))
        shutdown(pair.peer, Int32(SHUT_WR))
        #expect(got.wait(for: 1) == ["eof"])
        var eof = false
        let deadline = Date().addingTimeInterval(5)
        while !eof, Date() < deadline {
            eof = Bench.readAvailable(pair.peer).eof
            if !eof { usleep(1000) }
        }
        #expect(eof)
        usleep(100_000)
        #expect(got.all == ["eof"])
        box.handle = nil
    }

    // MARK: destroy inside callbacks

    @Test("destroy inside a read callback: the other buffered lines and the EOF are never delivered")
    func destroyInReadCallback() throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = Self.recording(got)
            options.onEof = { _ in got.add("eof") }
            options.onDrain = { _ in got.add("drain") }
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            for _ in 0..<3 {
                handle.pushRead(.line()) { handle, line in
                    got.add("line \(line.string)")
                    handle.destroy()
                    handle.pushWrite("ignored")
                    handle.pushRead(.line()) { _, _ in got.add("never") }
                }
            }
        }
        fixture.peerWrite("1\n2\n3\n")
        fixture.closePeer()
        got.wait(for: 2)
        usleep(30_000)
        #expect(got.all == ["drain", "line 1"])
        fixture.onLoop { handle in got.add("destroyed \(handle.isDestroyed)") }
        #expect(got.all.last == "destroyed true")
    }

    @Test("destroy inside on_eof and inside a timeout callback: nothing runs afterwards")
    func destroyInEofAndTimeout() throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = Self.recording(got)
            options.onRead = { _ in }
            options.onEof = { handle in
                got.add("eof")
                handle.destroy()
            }
            return options
        }
        defer { fixture.shutdown() }
        shutdown(fixture.peer, Int32(SHUT_WR))
        #expect(got.wait(for: 1) == ["eof"])

        let timeouts = Collector()
        let second = try PeerFixture {
            var options = Self.recording(timeouts)
            options.readTimeout = 0.02
            options.timeout = 0.02
            options.onReadTimeout = { handle in
                timeouts.add("rtimeout")
                handle.destroy()
            }
            options.onTimeout = { _ in timeouts.add("timeout") }
            return options
        }
        defer { second.shutdown() }
        timeouts.wait(for: 1)
        usleep(80_000)
        // Both timers expire together; whichever runs first destroys, so exactly one callback ran.
        #expect(timeouts.all.count == 1)
    }

    // MARK: error codes

    @Test("non-fatal ETIMEDOUT through on_error for timeout, rtimeout and wtimeout; the handle goes on after timeout_reset",
          arguments: [HandleTimeoutKind.any, .read, .write])
    func timeoutsContinue(kind: HandleTimeoutKind) throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = HandleOptions()
            options.onError = { handle, error in
                got.add("error \(error.code) fatal=\(error.isFatal)")
                if got.all.count == 1 {
                    handle.resetTimeout(kind)
                } else {
                    handle.setTimeout(0, kind: kind)
                    handle.pushWrite("alive\n")
                    handle.pushRead(.line()) { _, line in got.add("line \(line.string)") }
                }
            }
            return options
        }
        defer { fixture.shutdown() }
        fixture.handle.setTimeout(0.05, kind: kind)
        #expect(got.wait(for: 2) == ["error ETIMEDOUT fatal=false", "error ETIMEDOUT fatal=false"])
        #expect(String(decoding: fixture.peerRead(count: 6).bytes, as: UTF8.self) == "alive\n")
        fixture.peerWrite("back\n")
        #expect(got.wait(for: 3).last == "line back")
        usleep(80_000)
        #expect(got.all.count == 3)
    }

    @Test("a timeout setter fires at once when the handle is already idle longer, and may destroy it before returning",
          arguments: [HandleTimeoutKind.any, .read, .write])
    func timeoutSetterDestroys(kind: HandleTimeoutKind) throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = HandleOptions()
            options.onError = { handle, error in
                got.add("error \(error.code) fatal=\(error.isFatal)")
                handle.destroy()
            }
            return options
        }
        defer { fixture.shutdown() }
        usleep(60_000)
        fixture.onLoop { handle in
            handle.setTimeout(0.02, kind: kind)
            got.add("returned destroyed=\(handle.isDestroyed)")
        }
        #expect(got.all == ["error ETIMEDOUT fatal=false", "returned destroyed=true"])
    }

    @Test("the on_timeout callbacks replace the error, per kind", arguments: [HandleTimeoutKind.any, .read, .write])
    func timeoutCallbacks(kind: HandleTimeoutKind) throws {
        let got = Collector()
        let fixture = try PeerFixture { Self.recording(got) }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.onTimeout(kind) { handle in
                got.add("timeout \(kind)")
                handle.setTimeout(0, kind: kind)
            }
            handle.setTimeout(0.03, kind: kind)
        }
        #expect(got.wait(for: 1) == ["timeout \(kind)"])
        usleep(60_000)
        #expect(got.all.count == 1)
    }

    @Test("the OS errno reaches on_error: the peer resets the connection (reading: ECONNRESET; writing: EPIPE or ECONNRESET)",
          arguments: [true, false])
    func connectionReset(reading: Bool) throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = HandleOptions()
            options.onError = { _, error in got.add("\(error.code)|\(error.isFatal)") }
            return options
        }
        defer { fixture.shutdown() }
        if reading {
            fixture.onLoop { handle in handle.pushRead(.line()) { _, _ in got.add("line") } }
            fixture.peerWrite("unterminated")
            usleep(20_000)
        }
        fixture.resetPeer()
        usleep(20_000)
        if !reading {
            for _ in 0..<50 where got.all.isEmpty {
                fixture.onLoop { handle in handle.pushWrite("after reset\n") }
                usleep(2000)
            }
        }
        let events = got.wait(for: 1)
        #expect(events.count == 1)
        if reading {
            #expect(events.first == "ECONNRESET|true")
        } else {
            #expect(events.first == "EPIPE|true" || events.first == "ECONNRESET|true")
        }
        fixture.onLoop { handle in got.add("destroyed \(handle.isDestroyed)") }
        #expect(got.all.last == "destroyed true")
    }

    // MARK: options

    static func flag(_ channel: any Channel, _ level: Int32, _ name: Int32) -> String {
        let option = ChannelOptions.Types.SocketOption(
            level: NIOBSDSocket.OptionLevel(rawValue: level), name: NIOBSDSocket.Option(rawValue: name))
        guard let value = try? channel.syncOptions?.getOption(option) else { return "?" }
        return value != 0 ? "1" : "0"
    }

    @Test("no_delay, keepalive and oobinline set the socket options, at creation and later")
    func socketFlags() throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = HandleOptions()
            options.noDelay = true
            options.keepalive = true
            return options
        }
        defer { fixture.shutdown() }
        let read: @Sendable (Handle) -> Void = { handle in
            guard let channel = handle.channel else { return got.add("no channel") }
            got.add(
                [Self.flag(channel, Int32(IPPROTO_TCP), Int32(TCP_NODELAY)), Self.flag(channel, SOL_SOCKET, SO_KEEPALIVE),
                 Self.flag(channel, SOL_SOCKET, SO_OOBINLINE)].joined(separator: " "))
        }
        fixture.onLoop(read)
        fixture.onLoop { handle in
            handle.setNoDelay(false)
            handle.setKeepalive(false)
            handle.setOOBInline(false)
        }
        fixture.onLoop(read)
        #expect(got.all == ["1 1 1", "0 0 0"])
    }

    @Test("oobinline: urgent data is read in line by default, dropped from the stream without it",
          arguments: [true, false])
    func oobInline(inline: Bool) throws {
        let got = Collector()
        let fixture = try PeerFixture {
            var options = Self.recording(got)
            options.oobInline = inline
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in handle.pushRead(.line()) { _, line in got.add("line \(line.string)") } }
        fixture.peerWrite("ab")
        var urgent = UInt8(ascii: "c")
        #expect(send(fixture.peer, &urgent, 1, Int32(MSG_OOB)) == 1)
        fixture.peerWrite("d\n")
        #expect(got.wait(for: 1) == [inline ? "line abcd" : "line abd"])
    }

    @Test("linger: dropping the last reference with a large write pending still delivers all of it, then EOF")
    func lingerAfterDrop() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let pair = try Bench.makePair(tcp: true)
        defer { close(pair.peer) }
        let size = 4 << 20
        do {
            let handle = try Handle.make(socket: pair.handle, group: group).wait()
            handle.pushWrite(bytes: repeatElement(UInt8(ascii: "L"), count: size))
        }
        var received = 0
        var eof = false
        let deadline = Date().addingTimeInterval(20)
        while !eof, Date() < deadline {
            let (data, sawEOF) = Bench.readAvailable(pair.peer)
            received += data.count
            eof = sawEOF
            if data.isEmpty, !eof { usleep(1000) }
        }
        #expect(received == size)
        #expect(eof)
    }

    // MARK: backpressure

    @Test("stop_read: nothing is read from the socket, the peer's writes back up; start_read delivers everything",
          arguments: [false, true])
    func stopReadBackpressure(tcp: Bool) throws {
        let got = Collector()
        let counted = Collector()
        let fixture = try PeerFixture(tcp: tcp) {
            var options = Self.recording(got)
            options.onRead = { handle in
                counted.add("\(handle.readBuffer.readableBytes)")
                handle.consumeAll()
            }
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in handle.stopRead() }
        fixture.peerWrite("x")
        usleep(30_000)
        fixture.onLoop { handle in got.add("rbuf \(handle.readBuffer.readableBytes)") }
        #expect(got.all == ["rbuf 0"])
        #expect(counted.all.isEmpty)

        // The peer writes until its socket is full: the handle does not drain it while stopped.
        var written = 1
        var full = false
        let piece = [UInt8](repeating: 7, count: 65536)
        for _ in 0..<1000 where !full {
            let count = piece.withUnsafeBytes { send(fixture.peer, $0.baseAddress!, piece.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                written += count
            } else if count < 0, errno == EAGAIN {
                usleep(10_000)
                full = !Bench.ready(fixture.peer, events: Int32(POLLOUT))
            }
        }
        #expect(full)
        #expect(counted.all.isEmpty)

        fixture.onLoop { handle in handle.startRead() }
        let deadline = Date().addingTimeInterval(10)
        while counted.all.reduce(0, { $0 + Int($1)! }) < written, Date() < deadline { usleep(1000) }
        #expect(counted.all.reduce(0, { $0 + Int($1)! }) == written)
        #expect(got.all == ["rbuf 0"])
    }

    // MARK: async API

    @Test("async: cancelling a read of a partial line keeps its bytes; the next read gets the whole line")
    func asyncCancelPartial() async throws {
        let fixture = try PeerFixture()
        defer { fixture.shutdown() }
        let handle: Handle = fixture.handle
        fixture.peerWrite("par")
        let task = Task { try await handle.read(.line()) }
        try await Task.sleep(nanoseconds: 30_000_000)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        let queued = try await handle.eventLoop.submit { (handle.core.readQueue.count, handle.readBuffer.readableBytes) }.get()
        #expect(queued.0 == 0)
        #expect(queued.1 == 3)
        fixture.peerWrite("tial\n")
        #expect(try await handle.read(.line()).string == "partial")
        try await handle.write("ok\n")
        #expect(fixture.peerRead(count: 3).bytes == Array("ok\n".utf8))
    }

    @Test("async: a read sequence of netstrings left early; the remaining bytes serve the next read")
    func asyncSequenceEarlyExit() async throws {
        let fixture = try PeerFixture()
        defer { fixture.shutdown() }
        let handle: Handle = fixture.handle
        fixture.peerWrite("3:one,3:two,5:three,rest\n")
        var seen: [String] = []
        for try await item in handle.reads(.netstring()) {
            seen.append(String(buffer: item))
            if seen.count == 3 { break }
        }
        #expect(seen == ["one", "two", "three"])
        #expect(try await handle.read(.line()).string == "rest")
        shutdown(fixture.peer, Int32(SHUT_WR))
        var more = 0
        for try await _ in handle.reads(.netstring()) { more += 1 }
        #expect(more == 0)
    }

    @Test("async: cancelling a stalled write ends the wait, takes nothing back; the peer gets every byte in order")
    func asyncCancelStalledWrite() async throws {
        let fixture = try PeerFixture()
        defer { fixture.shutdown() }
        let handle: Handle = fixture.handle
        let size = 16 << 20
        let payload = ByteBuffer(repeating: UInt8(ascii: "w"), count: size)
        let task = Task { try await handle.write(payload) }
        try await Task.sleep(nanoseconds: 50_000_000)
        task.cancel()
        // The peer reads nothing yet: the wait ends because of the cancellation alone.
        await #expect(throws: CancellationError.self) { try await task.value }
        let tail = Task { try await handle.write("tail\n") }
        let received = fixture.peerRead(count: size + 5, seconds: 20)
        try await tail.value
        #expect(received.bytes.count == size + 5)
        #expect(received.bytes.prefix(size).allSatisfy { $0 == UInt8(ascii: "w") })
        #expect(Array(received.bytes.suffix(5)) == Array("tail\n".utf8))
    }

    @Test("async: a cancelled read between two others keeps the queue order")
    func asyncCancelMiddle() async throws {
        let fixture = try PeerFixture()
        defer { fixture.shutdown() }
        let handle: Handle = fixture.handle
        let first = Task { try await handle.read(.chunk(2)) }
        try await Task.sleep(nanoseconds: 20_000_000)
        let middle = Task { try await handle.read(.chunk(100)) }
        try await Task.sleep(nanoseconds: 20_000_000)
        let last = Task { try await handle.read(.line()) }
        try await Task.sleep(nanoseconds: 20_000_000)
        middle.cancel()
        await #expect(throws: CancellationError.self) { try await middle.value }
        fixture.peerWrite("ABcd\n")
        #expect(try await first.value == ByteBuffer(string: "AB"))
        #expect(try await last.value.string == "cd")
    }
}
