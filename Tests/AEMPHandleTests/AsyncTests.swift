import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import AEMPHandle

/// The async/await layer and pipe handles.
@Suite("Handle async API and pipes", .timeLimit(.minutes(2)))
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

    @Test("cancelling a read removes it from the queue and stops the wait at once")
    func cancellation() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let handle = fixture.handle
        let task = Task { try await handle.read(.line()) }
        try await Task.sleep(nanoseconds: 20_000_000)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await bounded { try await task.value } }
        fixture.peerWrite("next\n")
        #expect(try await bounded { try await handle.read(.line()) }.string == "next")
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
        await handle.destroyOnLoop()
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
        await handle.destroyOnLoop()
        close(pair.peer)
        try await group.shutdownGracefully()
    }

    // MARK: Every waiter resumed exactly once

    @Test("a cancelled write stops waiting although the peer reads nothing; the bytes still go out")
    func cancelledWriteIsBounded() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let handle = fixture.handle
        let size = 8 << 20
        let task = Task { try await handle.write(ByteBuffer(repeating: 1, count: size)) }
        try await Task.sleep(nanoseconds: 20_000_000)
        task.cancel()
        await #expect(throws: CancellationError.self) { try await bounded { try await task.value } }
        let waiting = try await handle.eventLoop.submit { handle.core.writeWaiters.count }.get()
        #expect(waiting == 0)
        let tail = Task { try await handle.write("!") }
        let received = fixture.peerRead(count: size + 1, seconds: 20)
        try await bounded { try await tail.value }
        #expect(received.bytes.count == size + 1)
        #expect(received.bytes.last == UInt8(ascii: "!"))
    }

    @Test("in an already cancelled task a read queues nothing; a write still queues its bytes")
    func alreadyCancelled() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let handle = fixture.handle
        fixture.peerWrite("kept\n")
        let outcome = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            let read = await Result { try await handle.read(.line()) }
            let write = await Result { try await handle.write("sent") }
            return (read.error is CancellationError || (try? read.get())?.string == "kept", write)
        }
        let (readEnded, write) = try await bounded { await outcome.value }
        #expect(readEnded)
        // The write either completed before the cancellation was seen or ended with it.
        #expect(write.error == nil || write.error is CancellationError)
        #expect(fixture.peerRead(count: 4).bytes == Array("sent".utf8))
        let state = try await handle.eventLoop.submit { (handle.core.readQueue.count, handle.core.writeWaiters.count) }.get()
        #expect(state == (0, 0))
    }

    @Test("destroy resumes every waiting read, write and write-buffer wait with EPIPE")
    func destroyResumesAll() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let handle = fixture.handle
        let reads = (0..<3).map { _ in Task { try await handle.read(.line()) } }
        let write = Task { try await handle.write(ByteBuffer(repeating: 2, count: 8 << 20)) }
        // The write is queued (and stalled: the peer reads nothing) before this wait starts.
        for _ in 0..<1000 where try await handle.eventLoop.submit({ handle.writeBufferLength }).get() == 0 {
            try await Task.sleep(nanoseconds: 5_000_000)
        }
        let drain = Task { try await handle.waitForWriteBuffer(atMost: 0) }
        try await Task.sleep(nanoseconds: 30_000_000)
        handle.destroy()
        for read in reads {
            await #expect(throws: HandleError.self) { try await bounded { try await read.value } }
        }
        await #expect(throws: HandleError.self) { try await bounded { try await write.value } }
        await #expect(throws: HandleError.self) { try await bounded { try await drain.value } }
        await #expect(throws: HandleError.self) { try await handle.read(.line()) }
        await #expect(throws: HandleError.self) { try await handle.waitForWriteBuffer(atMost: 0) }
    }

    @Test("a waiter that is dropped unresumed (a task lost on a stopped loop) resumes its caller with EPIPE")
    func droppedWaiterResumes() async throws {
        await #expect(throws: HandleError(.brokenPipe, fatal: true)) {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                _ = AsyncWaiter(continuation)
            }
        }
    }

    @Test("a waiter resumed twice resumes its caller once")
    func waiterResumesOnce() async throws {
        let value = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
            let waiter = AsyncWaiter(continuation)
            waiter.resume(returning: 1)
            waiter.resume(returning: 2)
            waiter.resume(throwing: CancellationError())
        }
        #expect(value == 1)
    }

    // MARK: Waiting for the write buffer

    @Test("waitForWriteBuffer returns at once below the mark, and after the peer read enough otherwise")
    func waitForWriteBuffer() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let handle = fixture.handle
        try await bounded { try await handle.waitForWriteBuffer(atMost: 0) }
        let size = 8 << 20
        handle.pushWrite(ByteBuffer(repeating: 3, count: size))
        let waiter = Task { try await handle.waitForWriteBuffer(atMost: 1 << 20) }
        try await Task.sleep(nanoseconds: 20_000_000)
        let pending = try await handle.eventLoop.submit { handle.writeBufferLength }.get()
        #expect(pending > 1 << 20)
        let received = fixture.peerRead(count: size, seconds: 20)
        #expect(received.bytes.count == size)
        try await bounded { try await waiter.value }
        let after = try await handle.eventLoop.submit { handle.writeBufferLength }.get()
        #expect(after <= 1 << 20)
    }

    @Test("a cancelled waitForWriteBuffer stops waiting; the handle goes on")
    func waitForWriteBufferCancelled() async throws {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let handle = fixture.handle
        handle.pushWrite(ByteBuffer(repeating: 4, count: 8 << 20))
        let waiter = Task { try await handle.waitForWriteBuffer(atMost: 0) }
        try await Task.sleep(nanoseconds: 20_000_000)
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await bounded { try await waiter.value } }
        #expect(fixture.peerRead(count: 8 << 20, seconds: 20).bytes.count == 8 << 20)
        try await bounded { try await handle.write("ok") }
    }
}

/// The time limit of ``bounded(seconds:_:)`` ran out.
struct BoundExceeded: Error {}

/// Runs `body` and returns its result, or throws ``BoundExceeded`` after `seconds` even if `body`
/// never finishes (a hang fails the test instead of stalling the run).
func bounded<T: Sendable>(
    seconds: Double = 10, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let once = Mutex<Bool>(false)
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        let finish: @Sendable (Result<T, any Error>) -> Void = { result in
            let first = once.withLock { done in
                defer { done = true }
                return !done
            }
            if first { continuation.resume(with: result) }
        }
        let work = Task { finish(await Result { try await body() }) }
        Task {
            try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
            work.cancel()
            finish(.failure(BoundExceeded()))
        }
    }
}

extension Result where Failure == any Error {
    /// The result of an async throwing call.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }

    var error: (any Error)? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
