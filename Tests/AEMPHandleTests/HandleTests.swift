import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

/// Handle behaviour on real sockets and pipes: seed examples, errors, threading.
@Suite("Handle on sockets", .timeLimit(.minutes(2)))
struct HandleTests {
    @Test("the seed's EPP example: on_read with nested unshift_read")
    func eppExample() throws {
        let got = Collector()
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.onError = { _, error in got.add("error \(error)") }
            options.onRead = { handle in
                let peek = handle.withReadBuffer { $0.readableBytes }
                guard peek > 0 else { return }
                handle.unshiftRead(.chunk(4)) { handle, header in
                    let length = Int(header.getInteger(at: header.readerIndex, as: UInt32.self)!)
                    handle.unshiftRead(.chunk(length)) { _, body in got.add(String(buffer: body)) }
                }
            }
            return options
        }
        defer { fixture.shutdown() }
        fixture.peerWrite("\u{0}\u{0}\u{0}\u{5}hello\u{0}\u{0}")
        fixture.peerWrite("\u{0}\u{3}abc")
        #expect(got.wait(for: 2) == ["hello", "abc"])
    }

    @Test("the seed's OK + extra line example")
    func okExtraLine() throws {
        let got = Collector()
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.onError = { _, error in got.add("error \(error)") }
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.pushWrite("request 1\r\n")
            handle.pushRead(.line()) { handle, line in
                got.add("resp1 \(line.string)")
                if line.string == "OK" {
                    handle.unshiftRead(.line()) { _, extra in got.add("extra \(extra.string)") }
                }
            }
            handle.pushWrite("request 2\r\n")
            handle.pushRead(.line()) { _, line in got.add("resp2 \(line.string)") }
        }
        fixture.peerWrite("OK\r\nmore\r\nDONE\r\n")
        #expect(got.wait(for: 3) == ["resp1 OK", "extra more", "resp2 DONE"])
        #expect(String(decoding: fixture.peerRead(count: 22).bytes, as: UTF8.self) == "request 1\r\nrequest 2\r\n")
    }

    @Test("a fatal error without onError goes to the uncaught-error trap")
    func uncaught() throws {
        let got = Collector()
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.core.uncaughtErrorHook = { got.add($0) }
            handle.pushRead(.line()) { _, _ in got.add("line") }
        }
        shutdown(fixture.peer, Int32(SHUT_WR))
        #expect(got.wait(for: 1) == ["AnyEvent::Handle uncaught error: Broken pipe"])
        fixture.onLoop { handle in got.add("destroyed \(handle.isDestroyed)") }
        #expect(got.all.last == "destroyed true")
    }

    /// A handle released on another thread is destroyed by a task its deinit queues on the loop. An
    /// end of file served before that task runs must not reach the uncaught-error trap: nobody owns
    /// the handle any more (a CI run of the whole suite once crashed exactly here).
    @Test("a handle dropped on another thread reports nothing before its destroy runs")
    func droppedOffLoop() throws {
        let got = Collector()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let pair = try Bench.makePair(tcp: false)
        defer { close(pair.peer) }
        var handle: Handle? = try Handle.make(socket: pair.handle, group: group).wait()
        let loop = handle!.eventLoop
        let bound = handle!.bound  // keeps the core alive after the facade is gone
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        loop.execute {
            let core = bound.value
            core.uncaughtErrorHook = { got.add($0) }
            core.facade?.pushRead(.line()) { _, _ in got.add("line") }
            core.receiveEOF()  // queues the read of the end of file
            entered.signal()
            _ = release.wait(timeout: .now() + 5)  // the facade is released meanwhile
        }
        #expect(entered.wait(timeout: .now() + 5) == .success)
        handle = nil  // off the loop: its destroy is queued behind the end-of-file read
        release.signal()
        try loop.submit { got.add("destroyed \(bound.value.destroyed)") }.wait()
        #expect(got.all == ["destroyed true"])
    }

    @Test("calls from other threads hop to the loop; timeouts raise ETIMEDOUT")
    func offLoop() throws {
        let got = Collector()
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.onError = { handle, error in
                got.add("\(error.code) fatal=\(error.isFatal)")
                handle.setTimeout(0, kind: .read)
            }
            return options
        }
        defer { fixture.shutdown() }
        fixture.handle.pushWrite("from a thread")
        #expect(String(decoding: fixture.peerRead(count: 13).bytes, as: UTF8.self) == "from a thread")
        fixture.handle.setTimeout(0.05, kind: .read)
        #expect(got.wait(for: 1) == ["ETIMEDOUT fatal=false"])
        fixture.handle.stopRead()
        fixture.handle.startRead()
        fixture.handle.resetTimeout()
        fixture.handle.pushShutdown()
        #expect(fixture.peerRead(count: 1).eof)
    }

    @Test("wbuf_max and rbuf_max raise a fatal ENOSPC")
    func bufferLimits() throws {
        let got = Collector()
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.autocork = true
            options.writeBufferMax = 4
            options.onError = { _, error in got.add("\(error.code) fatal=\(error.isFatal)") }
            return options
        }
        defer { fixture.shutdown() }
        fixture.handle.pushWrite("12345")
        #expect(got.wait(for: 1) == ["ENOSPC fatal=true"])

        let reads = Collector()
        let second = try SocketPairFixture {
            var options = HandleOptions()
            options.readBufferMax = 2
            options.onError = { _, error in reads.add("\(error.code)") }
            options.onRead = { _ in reads.add("read") }
            return options
        }
        defer { second.shutdown() }
        second.peerWrite("abc")
        #expect(reads.wait(for: 2) == ["read", "ENOSPC"])
    }

    @Test("settings read back on the loop")
    func settings() throws {
        let got = Collector()
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.readSize = 16
            handle.maxReadSize = 64
            handle.readBufferMax = 10
            handle.writeBufferMax = 20
            handle.lowWaterMark = 5
            handle.autocork = true
            handle.linger = 1
            handle.peername = "example.org"
            handle.setNoDelay(true)
            handle.setKeepalive(true)
            handle.setOOBInline(false)
            handle.onEof(nil)
            handle.onTimeout(.write, nil)
            got.add("\(handle.readSize) \(handle.maxReadSize) \(handle.readBufferMax!) \(handle.writeBufferMax!)")
            got.add("\(handle.lowWaterMark) \(handle.autocork) \(handle.linger) \(handle.peername!)")
            handle.destroy()
            handle.pushWrite("ignored")
            got.add("\(handle.isDestroyed)")
        }
        #expect(got.all == ["16 64 10 20", "5 true 1.0 example.org", "true"])
    }

    @Test("reads and writes queue up before the channel is attached (the connect: form)")
    func queuedBeforeAttach() throws {
        let got = Collector()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let pair = try Bench.makePair(tcp: false)
        defer { close(pair.peer) }
        let channel = try ClientBootstrap(group: group)
            .channelOption(ChannelOptions.autoRead, value: false)
            .withConnectedSocket(pair.handle).wait()
        let box = try group.next().submit { () -> Handle in
            var options = HandleOptions()
            options.onDrain = { _ in got.add("drain") }
            options.readTimeout = 0.01
            options.onReadTimeout = { handle in
                got.add("timeout")
                handle.setTimeout(0, kind: .read)
            }
            let handle = Handle(unattachedOn: channel.eventLoop, allocator: channel.allocator, options: options)
            handle.pushWrite("early")
            handle.pushRead(.line()) { _, line in got.add("line \(line.string)") }
            got.add("queued \(handle.writeBufferLength) \(handle.channel == nil)")
            return handle
        }.wait()
        _ = Bench.writeAll(pair.peer, Array("hi\n".utf8))
        usleep(30_000)
        #expect(got.all == ["queued 5 true"])
        _ = try group.next().submit { box.core.attach(channel) }.wait()
        got.wait(for: 4)
        #expect(got.all.prefix(3) == ["queued 5 true", "drain", "line hi"])
        var received: [UInt8] = []
        for _ in 0..<100 where received.count < 5 {
            received += Bench.readAvailable(pair.peer).bytes
            usleep(1000)
        }
        #expect(received == Array("early".utf8))
        box.destroyAndWait()
    }

    @Test("many lines across read boundaries, then a bulk chunk")
    func volume() async throws {
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.readSize = 64
            return options
        }
        defer { fixture.shutdown() }
        let count = 5000
        let peer = fixture.peer
        let writer = Thread {
            var text = ""
            for index in 0..<count { text += String(repeating: "x", count: index % 150) + " \(index)\r\n" }
            let failed = Bench.writeAll(peer, Array(text.utf8)) ?? Bench.writeAll(peer, [UInt8](repeating: 0x5a, count: 1 << 20))
            // A writer that gave up ends the stream, so that the reads below fail instead of waiting forever.
            if failed != nil { shutdown(peer, Int32(SHUT_WR)) }
        }
        writer.start()
        let handle = fixture.handle
        let (seen, bulk) = try await bounded(seconds: 60) {
            var seen = 0
            for try await line in handle.reads(.line()) {
                #expect(line.string.hasSuffix(" \(seen)"))
                #expect(line.eol == ByteBuffer(string: "\r\n"))
                seen += 1
                if seen == count { break }
            }
            return (seen, try await handle.read(.chunk(1 << 20)))
        }
        #expect(seen == count)
        #expect(bulk.readableBytes == 1 << 20)
        #expect(bulk.readableBytesView.allSatisfy { $0 == 0x5a })
    }

    @Test("wbuf_max counts only what the socket has not taken yet")
    func writeBufferMaxAfterPartialWrite() throws {
        let got = Collector()
        let size = 2 << 20
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.writeBufferMax = size - 1
            options.onError = { _, error in got.add("\(error.code)") }
            options.onDrain = { handle in got.add("drain \(handle.writeBufferLength)") }
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.pushWrite(bytes: [UInt8](repeating: 1, count: size))
            got.add("pending \(handle.writeBufferLength > 0 && handle.writeBufferLength < size)")
        }
        #expect(fixture.peerRead(count: size, seconds: 10).bytes.count == size)
        got.wait(for: 3)
        #expect(got.all == ["drain 0", "pending true", "drain 0"])
    }

    @Test("partial progress of a large write counts as write activity")
    func slowReaderKeepsWriteTimeoutQuiet() throws {
        let got = Collector()
        let size = 1 << 20
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.writeTimeout = 0.15
            options.onWriteTimeout = { _ in got.add("wtimeout") }
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in handle.pushWrite(bytes: [UInt8](repeating: 2, count: size)) }
        var received = 0
        let deadline = Date().addingTimeInterval(10)
        while received < size, Date() < deadline {
            var chunk = [UInt8](repeating: 0, count: 32768)
            let count = read(fixture.peer, &chunk, chunk.count)
            if count > 0 { received += count }
            usleep(10_000)
        }
        #expect(received == size)
        #expect(got.all.isEmpty)
        fixture.handle.setTimeout(0, kind: .write)
    }

    @Test("with a low water mark, onDrain runs while a large write is still pending")
    func lowWaterMarkDuringLargeWrite() throws {
        let got = Collector()
        let size = 2 << 20
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.lowWaterMark = 256 * 1024
            return options
        }
        defer { fixture.shutdown() }
        fixture.onLoop { handle in
            handle.pushWrite(bytes: [UInt8](repeating: 3, count: size))
            handle.onDrain { handle in got.add(handle.writeBufferLength > 0 ? "early" : "done") }
        }
        #expect(fixture.peerRead(count: size, seconds: 10).bytes.count == size)
        got.wait(for: 2)
        // Whether an "early" call happens depends on how the kernel splits the 2 MiB into socket
        // writes (a last write that empties the buffer in one go gives only "done"); under load it
        // may not. What must hold: every early call comes before the final one, and the last says done.
        #expect(got.all.last == "done")
        #expect(got.all.dropLast().allSatisfy { $0 == "early" }, "\(got.all)")
    }
}
