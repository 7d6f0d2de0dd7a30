import NIOCore
import NIOEmbedded
import Testing

@testable import AEMPHandle

/// The error a test encoder throws.
struct EncodeFailure: Error, Equatable {}

/// One step of a write scenario.
enum WriteOp: Sendable, CustomStringConvertible {
    /// Queue these bytes.
    case push(String)
    /// An encoder that appends these bytes, then throws (the raw API queues nothing then).
    case failing(String)
    /// Run the loop's due tasks (the autocork tick).
    case tick
    /// Complete the writes the channel holds back.
    case release

    var description: String {
        switch self {
        case .push(let text): "push \(text)"
        case .failing(let text): "failing \(text)"
        case .tick: "tick"
        case .release: "release"
        }
    }
}

/// A write scenario under one configuration, run through both write APIs.
struct WriteScenario: Sendable, CustomTestStringConvertible {
    let name: String
    var autocork = false
    /// Channel writes stay outstanding until `.release`.
    var hold = false
    var writeBufferMax: Int?
    var lowWaterMark = 0
    let ops: [WriteOp]
    /// How many channel writes the scenario makes (both APIs).
    var channelWrites: Int
    /// Events that must appear in the log (both APIs).
    var mustLog: [String] = []

    var testDescription: String { name }

    /// What the handle did: callback events and `writeBufferLength` after each step, the channel
    /// writes, and `queuedTotal` at the end.
    struct Trace: Equatable {
        var log: [String] = []
        var writes: [[UInt8]] = []
        var queued: UInt64 = 0
    }

    func run(encoding: Bool) throws -> Trace {
        let fixture = try EmbeddedFixture(recordDrain: true) { options in
            options.autocork = autocork
            options.writeBufferMax = writeBufferMax
            options.lowWaterMark = lowWaterMark
        }
        defer { fixture.finish() }
        fixture.recorder.hold = hold
        let handle = fixture.handle
        for op in ops {
            switch op {
            case .push(let text):
                if encoding {
                    handle.pushWrite { $0.writeString(text) }
                } else {
                    handle.pushWrite(text)
                }
            case .failing(let text):
                if encoding {
                    #expect(throws: EncodeFailure()) {
                        try handle.pushWrite { buffer in
                            buffer.writeString(text)
                            throw EncodeFailure()
                        }
                    }
                }
            case .tick:
                fixture.tick()
            case .release:
                fixture.recorder.release()
            }
            fixture.note("\(op): wbuf \(handle.isDestroyed ? -1 : handle.writeBufferLength)")
        }
        fixture.recorder.release()
        fixture.tick()
        return Trace(log: fixture.log, writes: fixture.recorder.writes, queued: handle.core.queuedTotal)
    }
}

let writeScenarios: [WriteScenario] = {
    let many: [WriteOp] = (0..<50).map { .push("m\($0);") }
    return [
        WriteScenario(name: "autocork: one tick, one write", autocork: true, ops: many + [.tick], channelWrites: 1),
        WriteScenario(name: "no autocork: each write goes out", ops: [.push("a"), .push("b"), .push("c")], channelWrites: 3),
        WriteScenario(
            name: "no autocork, outstanding write: the rest coalesces", hold: true,
            ops: [.push("first")] + many + [.release, .tick, .release], channelWrites: 2),
        WriteScenario(
            name: "autocork, outstanding write", autocork: true, hold: true,
            ops: [.push("a"), .tick, .push("b"), .push("c"), .tick, .release, .push("d"), .tick, .release],
            channelWrites: 3),
        WriteScenario(
            name: "throwing encoder, autocork", autocork: true,
            ops: [.push("a"), .failing("xyz"), .push("b"), .tick], channelWrites: 1),
        WriteScenario(name: "throwing encoder, idle", ops: [.failing("xyz"), .push("b")], channelWrites: 1),
        WriteScenario(
            name: "throwing encoder, outstanding", hold: true,
            ops: [.push("a"), .push("b"), .failing("xyz"), .push("c"), .release, .release], channelWrites: 2),
        WriteScenario(
            name: "throwing encoder as the first pending bytes", hold: true,
            ops: [.push("a"), .failing("xyz"), .release, .push("c"), .release], channelWrites: 2),
        WriteScenario(
            name: "wbuf_max with autocork", autocork: true, writeBufferMax: 4,
            ops: [.push("abc"), .push("defgh"), .tick], channelWrites: 1),
        // (An EmbeddedChannel takes every write at once, so only the pending buffer can exceed
        // wbuf_max here; HandleTests provoke it on a socket.)
        WriteScenario(
            name: "wbuf_max exceeded while autocorked: ENOSPC, the bytes linger", autocork: true, writeBufferMax: 4,
            ops: [.push("abcdefgh")], channelWrites: 1, mustLog: ["error ENOSPC fatal=true"]),
        WriteScenario(
            name: "wbuf_max behind an outstanding write", hold: true, writeBufferMax: 4,
            ops: [.push("abc"), .push("defgh"), .release, .release], channelWrites: 2),
        WriteScenario(
            name: "low water mark and on_drain", hold: true, lowWaterMark: 3,
            ops: [.push("ab"), .push("cdef"), .release, .release], channelWrites: 2, mustLog: ["drain"]),
    ]
}()

/// ``Handle/pushWrite(encoding:)``: the same semantics as ``Handle/pushWrite(_:)-(ByteBuffer)``,
/// without intermediate buffers, coalescing per loop tick.
@Suite("Writing by encoding into the write buffer")
struct EncodingWriteTests {
    @Test("the encoding path behaves exactly like pushWrite(ByteBuffer)", arguments: writeScenarios)
    func sameAsRaw(_ scenario: WriteScenario) throws {
        let raw = try scenario.run(encoding: false)
        let encoded = try scenario.run(encoding: true)
        #expect(encoded == raw)
        #expect(raw.writes.count == scenario.channelWrites)
        for event in scenario.mustLog {
            #expect(raw.log.contains(event), "\(event) missing from \(raw.log)")
        }
    }

    @Test("autocork: many small writes in one tick are one channel write, in order")
    func coalescesPerTick() throws {
        let fixture = try EmbeddedFixture { $0.autocork = true }
        defer { fixture.finish() }
        var expected: [UInt8] = []
        for index in 0..<200 {
            let text = "message \(index)\n"
            expected += Array(text.utf8)
            fixture.handle.pushWrite { $0.writeString(text) }
        }
        #expect(fixture.recorder.writes.isEmpty)
        #expect(fixture.handle.writeBufferLength == expected.count)
        fixture.tick()
        #expect(fixture.recorder.writes == [expected])
        #expect(fixture.handle.writeBufferLength == 0)
    }

    @Test("behind an outstanding write, the queued messages follow in one write")
    func coalescesBehindOutstanding() throws {
        let fixture = try EmbeddedFixture()
        defer { fixture.finish() }
        fixture.recorder.hold = true
        fixture.handle.pushWrite { $0.writeString("head;") }
        for index in 0..<100 { fixture.handle.pushWrite { $0.writeInteger(UInt16(index)) } }
        #expect(fixture.recorder.writes.count == 1)
        fixture.recorder.release()
        #expect(fixture.recorder.writes.count == 2)
        #expect(fixture.recorder.writes[1] == (0..<100).flatMap { [UInt8(0), UInt8($0)] })
    }

    @Test("the pending buffer is written in place: one storage for all messages of a tick")
    func noCopyPerMessage() throws {
        let fixture = try EmbeddedFixture { $0.autocork = true }
        defer { fixture.finish() }
        fixture.handle.pushWrite { $0.writeString("first") }
        let storage = fixture.handle.core.corked!.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        for _ in 0..<10 { fixture.handle.pushWrite { $0.writeString("more") } }
        let after = fixture.handle.core.corked!.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        #expect(storage == after)
        #expect(fixture.handle.core.corked!.readableBytes == 45)
    }

    @Test("typed writes use the same path: in order, one write per tick; a failing writer queues nothing")
    func typedWriters() throws {
        let fixture = try EmbeddedFixture { $0.autocork = true }
        defer { fixture.finish() }
        try fixture.handle.pushWrite(.netstring("ab"))
        #expect(throws: HandleError.self) {
            try fixture.handle.pushWrite(ClosureWriter { buffer throws(HandleError) in
                buffer.writeString("junk")
                throw HandleError.cannotEncode("no")
            })
        }
        try fixture.handle.pushWrite(.packstring("N", ByteBuffer(string: "c")))
        #expect(fixture.handle.core.queuedTotal == 10)
        fixture.tick()
        #expect(fixture.recorder.writes == [Array("2:ab,".utf8) + [0, 0, 0, 1, UInt8(ascii: "c")]])
    }

    @Test("after destroy nothing is encoded or queued")
    func afterDestroy() throws {
        let fixture = try EmbeddedFixture { $0.autocork = true }
        defer { fixture.finish() }
        fixture.handle.destroy()
        var called = false
        fixture.handle.pushWrite { _ in called = true }
        fixture.tick()
        #expect(!called)
        #expect(fixture.recorder.writes.isEmpty)
    }

    // MARK: On a socket

    @Test("on a socket: wbuf_max raises ENOSPC for what the socket could not take", arguments: [false, true])
    func writeBufferMaxOnSocket(encoding: Bool) throws {
        let got = Collector()
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.writeBufferMax = 64 * 1024
            options.onError = { _, error in got.add("\(error.code) fatal=\(error.isFatal)") }
            return options
        }
        defer { fixture.shutdown() }
        let size = 16 << 20
        fixture.onLoop { handle in
            if encoding {
                handle.pushWrite { $0.writeRepeatingByte(7, count: size) }
            } else {
                handle.pushWrite(ByteBuffer(repeating: 7, count: size))
            }
        }
        #expect(got.wait(for: 1) == ["ENOSPC fatal=true"])
    }

    @Test("on a socket: a thousand encoded messages arrive in order", arguments: [false, true])
    func manyMessagesOnSocket(autocork: Bool) throws {
        let fixture = try SocketPairFixture {
            var options = HandleOptions()
            options.autocork = autocork
            return options
        }
        defer { fixture.shutdown() }
        var expected: [UInt8] = []
        for index in 0..<1000 { expected += Array("\(index),".utf8) }
        fixture.onLoop { handle in
            for index in 0..<1000 { handle.pushWrite { $0.writeString("\(index),") } }
        }
        #expect(fixture.peerRead(count: expected.count).bytes == expected)
    }
}
