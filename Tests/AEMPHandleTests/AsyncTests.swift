import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

/// The async/await layer and pipe handles.
@Suite("Handle async API and pipes")
struct AsyncTests {
    @Test("await reads and writes")
    func readWrite() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        fixture.peerWrite("one\r\ntwo\n")
        let first = try await fixture.handle.read(LineReader())
        let second = try await fixture.handle.read(.line())
        #expect(first.string == "one")
        #expect(second.string == "two")
        try await fixture.handle.write("pong")
        #expect(fixture.peerRead(count: 4).bytes == Array("pong".utf8))
    }

    @Test("the read sequence ends at a clean end of file")
    func sequence() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        fixture.peerWrite("1\n2\n3\n")
        shutdown(fixture.peer, Int32(SHUT_WR))
        var lines: [String] = []
        for try await line in fixture.handle.reads(.line()) { lines.append(line.string) }
        #expect(lines == ["1", "2", "3"])
    }

    @Test("a partial value at end of file throws EPIPE")
    func partialAtEOF() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        fixture.peerWrite("partial")
        shutdown(fixture.peer, Int32(SHUT_WR))
        await #expect(throws: HandleError(.brokenPipe, fatal: true)) {
            for try await _ in fixture.handle.reads(.line()) {}
        }
        await #expect(throws: HandleError.self) { try await fixture.handle.read(.chunk(1)) }
    }

    @Test("a reader error is thrown and the handle stays usable")
    func readerError() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        fixture.peerWrite("abc")
        let reader = RegexReader(accept: try HandleRegex("^[0-9]+\\s"), reject: try HandleRegex("[^0-9]"))
        await #expect(throws: HandleError.badMessage()) { try await fixture.handle.read(reader) }
        let rest = try await fixture.handle.read(.chunk(3))
        #expect(rest == ByteBuffer(string: "abc"))
    }

    @Test("cancelling a read removes it from the queue")
    func cancellation() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let handle = fixture.handle
        let task = Task { try await handle.read(.line()) }
        try await Task.sleep(nanoseconds: 20_000_000)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        fixture.peerWrite("next\n")
        #expect(try await handle.read(.line()).string == "next")
    }

    @Test("writing to a closed peer throws EPIPE")
    func writeToClosedPeer() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        fixture.closePeer()
        var failure: HandleError?
        for _ in 0..<20 where failure == nil {
            do {
                try await fixture.handle.write("x")
            } catch let error as HandleError {
                failure = error
            }
        }
        #expect(failure?.code == .brokenPipe)
        await #expect(throws: HandleError.self) { try await fixture.handle.write("again") }
    }

    @Test("a handle on two pipes (the stdin/stdout shape)")
    func pipes() async throws {
        var input: [Int32] = [-1, -1]
        var output: [Int32] = [-1, -1]
        #expect(pipe(&input) == 0)
        #expect(pipe(&output) == 0)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let handle = try await Handle.make(input: input[0], output: output[1], group: group).get()
        let hello = Array("hello\n".utf8)
        #expect(write(input[1], hello, hello.count) == hello.count)
        #expect(try await handle.read(.line()).string == "hello")
        try await handle.write("out")
        var got = [UInt8](repeating: 0, count: 3)
        #expect(read(output[0], &got, 3) == 3)
        #expect(got == Array("out".utf8))
        close(input[1])
        await #expect(throws: HandleError.self) { try await handle.read(.line()) }
        handle.destroy()
        close(output[0])
        try await group.shutdownGracefully()
    }

    @Test("a handle on one descriptor for both directions")
    func singleDescriptor() async throws {
        let pair = try Bench.makePair(tcp: false)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let handle = try await Handle.make(fileDescriptor: pair.handle, group: group).get()
        _ = Bench.writeAll(pair.peer, Array("ab".utf8))
        #expect(try await handle.read(.chunk(2)) == ByteBuffer(string: "ab"))
        handle.destroy()
        close(pair.peer)
        try await group.shutdownGracefully()
    }
}
