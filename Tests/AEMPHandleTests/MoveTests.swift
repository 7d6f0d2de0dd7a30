import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

/// `Handle.move(to:)`: a quiescent plain connection continues on another loop, nothing lost.
@Suite("Handle moving to another loop", .timeLimit(.minutes(1)))
struct MoveTests {
    @Test("received bytes, buffered and stashed, come first on the new loop; then the peer's next bytes")
    func movesWithItsBytes() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let pair = try Bench.makePair(tcp: true)
        defer { close(pair.peer) }
        let handle = try await Handle.make(socket: pair.handle, group: loops[0]).get()
        // One line read and consumed, the rest of the first arrival left in the read buffer.
        _ = Bench.writeAll(pair.peer, Array("first\nleft over ".utf8))
        #expect(try await handle.read(.line()).string == "first")
        let moved = try await loops[0].flatSubmit { () -> EventLoopFuture<Handle> in
            handle.move(to: loops[1]) ?? loops[0].makeFailedFuture(HandleError(.brokenPipe, fatal: true))
        }.get()
        #expect(moved.eventLoop === loops[1])
        #expect(try await loops[0].submit { handle.isDestroyed }.get())
        _ = Bench.writeAll(pair.peer, Array("bytes\n".utf8))
        #expect(try await moved.read(.line()).string == "left over bytes")
        // A larger transfer after the move, read in many socket reads.
        let bulk = [UInt8](repeating: 0x78, count: 65536)
        _ = Bench.writeAll(pair.peer, bulk)
        #expect(try await moved.read(.chunk(65536)).readableBytes == 65536)
        try await moved.write("answer\n")
        #expect(Bench.readUntil(pair.peer, count: 7, seconds: 5).bytes == Array("answer\n".utf8))
        moved.destroy()
        try await group.shutdownGracefully()
    }

    @Test("a handle with writes still queued, or past the end of the stream, stays where it is")
    func refusesWhenItCannotMove() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        let pair = try Bench.makePair(tcp: true)
        let handle = try await Handle.make(socket: pair.handle, group: loops[0]).get()
        // The peer reads nothing: 16 MiB cannot all go into the socket.
        handle.pushWrite(ByteBuffer(repeating: 0x41, count: 16 << 20))
        let queued = try await loops[0].submit { handle.writeBufferLength }.get()
        #expect(queued > 0)
        let moved = try await loops[0].submit { handle.move(to: loops[1]) == nil }.get()
        #expect(moved)
        #expect(try await loops[0].submit { handle.isDestroyed }.get() == false)
        handle.destroy()

        // After the peer's end of file (seen through onEof, so the handle lives on).
        let other = try Bench.makePair(tcp: true)
        let eof = Collector()
        let reader = try await Handle.make(socket: other.handle, group: loops[0]) {
            var options = HandleOptions()
            options.onEof = { _ in eof.add("eof") }
            options.onRead = { $0.consumeAll() }
            return options
        }.get()
        _ = Bench.writeAll(other.peer, Array("last\n".utf8))
        shutdown(other.peer, Int32(SHUT_WR))
        for _ in 0..<500 where eof.all.isEmpty { try await Task.sleep(for: .milliseconds(2)) }
        #expect(eof.all == ["eof"])
        let stays = try await loops[0].submit { (reader.move(to: loops[1]) == nil, reader.isDestroyed) }.get()
        #expect(stays == (true, false))
        reader.destroy()
        close(pair.peer)
        close(other.peer)
        try await group.shutdownGracefully()
    }
}
