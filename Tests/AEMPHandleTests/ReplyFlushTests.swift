import NIOCore
import NIOEmbedded
import Testing

@testable import AEMPHandle

/// With autocork, replies written by read callbacks leave in one write at the end of the read
/// being dispatched (no task); writes outside a read still wait for the loop's task.
@Suite("Autocork: replies flushed at the end of the read")
struct ReplyFlushTests {
    @Test func repliesWrittenInOnReadLeaveBeforeQueuedTasks() throws {
        let fixture = try EmbeddedFixture { options in options.autocork = true }
        defer { fixture.finish() }
        let handle = fixture.handle
        handle.onRead { handle in
            // Two requests in one read: two replies, one write.
            while let line = handle.withReadBuffer({ $0.readString(length: min(4, $0.readableBytes)) }), !line.isEmpty {
                // A task queued before the reply is written runs after the read: the reply is out by then.
                handle.eventLoop.assumeIsolated().execute { fixture.note("task: wbuf \(handle.writeBufferLength)") }
                handle.pushWrite(ByteBuffer(string: "re:" + line))
            }
        }
        _ = try fixture.channel.writeInbound(fixture.channel.allocator.buffer(string: "abcdefgh"))
        #expect(fixture.recorder.writes.map { String(decoding: $0, as: UTF8.self) } == ["re:abcdre:efgh"])
        fixture.tick()
        #expect(fixture.log == ["task: wbuf 0", "task: wbuf 0"])
    }

    @Test func writesOutsideAReadWaitForTheTick() throws {
        let fixture = try EmbeddedFixture { options in options.autocork = true }
        defer { fixture.finish() }
        fixture.handle.pushWrite(ByteBuffer(string: "a"))
        fixture.handle.pushWrite(ByteBuffer(string: "b"))
        #expect(fixture.recorder.writes.isEmpty)
        #expect(fixture.handle.writeBufferLength == 2)
        fixture.tick()
        #expect(fixture.recorder.writes.map { String(decoding: $0, as: UTF8.self) } == ["ab"])
    }
}
