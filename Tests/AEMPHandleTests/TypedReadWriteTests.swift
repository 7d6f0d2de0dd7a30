import AEMPCodecs
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

#if canImport(Glibc)
import Glibc
#endif

/// A value for the `codable` read and write types.
struct TypedPoint: Codable, Equatable, Sendable {
    var x: Int
    var y: Double
    var name: String
    var tags: [String]
    var note: String?
}

/// A handle on one end of a socket pair or loopback TCP connection, on a shared event loop group.
final class TypedFixture: @unchecked Sendable {
    let handle: Handle
    let peer: Int32
    let events = Collector()
    private var closed = false

    init(group: any EventLoopGroup, tcp: Bool = false, byteByByte: Bool = false) throws {
        let pair = try Bench.makePair(tcp: tcp)
        peer = pair.peer
        let events = self.events
        handle = try Handle.make(socket: pair.handle, group: group) {
            var options = HandleOptions()
            if byteByByte {
                options.readSize = 1
                options.maxReadSize = 1
            }
            options.onError = { _, error in
                events.add("error \(error.code) fatal=\(error.isFatal)")
            }
            return options
        }.wait()
    }

    func onLoop(_ body: @escaping @Sendable (Handle) -> Void) {
        let handle = self.handle
        try? handle.eventLoop.submit { body(handle) }.wait()
    }

    func write(_ bytes: [UInt8]) {
        _ = Bench.writeAll(peer, bytes)
    }

    /// Reads from the peer until `count` bytes arrived (bounded).
    func peerRead(count: Int) -> [UInt8] {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(5)
        while out.count < count, Date() < deadline {
            let (data, eof) = Bench.readAvailable(peer)
            out += data
            if eof { break }
            if data.isEmpty { usleep(500) }
        }
        return out
    }

    /// The peer shuts down its writing side (the handle sees end of file).
    func closePeerWriting() {
        shutdown(peer, Int32(SHUT_WR))
    }

    func close() {
        guard !closed else { return }
        closed = true
        handle.destroyAndWait()
        Glibc.close(peer)
    }
}

/// One read type with an input holding several values, and the values expected from it.
struct TypedCase: Sendable, CustomTestStringConvertible {
    init(
        name: String, input: [UInt8], expected: [String],
        reads: (push: @Sendable (Handle, @escaping @Sendable (String) -> Void) -> Void, steps: @Sendable () -> [ReadStepper])
    ) {
        self.name = name
        self.input = input
        self.expected = expected
        self.push = reads.push
        self.steps = reads.steps
    }

    let name: String
    let input: [UInt8]
    let expected: [String]
    /// Queues one read per expected value; each reports its value through `report`.
    let push: @Sendable (Handle, @escaping @Sendable (String) -> Void) -> Void
    /// The same reads as plain steps over a buffer, for driving them without a handle.
    let steps: @Sendable () -> [ReadStepper]

    var testDescription: String { name }
}

/// A canonical text for a decoded value.
func describeValue(_ value: Value) -> String { Oracle.text(["v": Oracle.json(value)]) }
func describeBytes(_ bytes: ByteBuffer) -> String { Oracle.hex(Array(bytes.readableBytesView)) }

func codableFrames(_ values: [TypedPoint]) throws -> [UInt8] {
    var buffer = ByteBuffer()
    for value in values { try CodableWriter(value).write(into: &buffer) }
    return Array(buffer.readableBytesView)
}

let typedPoints = [
    TypedPoint(x: -3, y: 0.5, name: "p\u{e9}", tags: ["a", "bc"], note: nil),
    TypedPoint(x: 1 << 40, y: -2, name: "", tags: [], note: "n"),
]

let typedCases: [TypedCase] = {
    func reads<R: HandleReader & Sendable>(
        _ count: Int, _ make: @escaping @Sendable () -> R, _ text: @escaping @Sendable (R.Output) -> String
    ) -> (push: @Sendable (Handle, @escaping @Sendable (String) -> Void) -> Void, steps: @Sendable () -> [ReadStepper]) {
        let push: @Sendable (Handle, @escaping @Sendable (String) -> Void) -> Void = { handle, report in
            for _ in 0..<count { handle.pushRead(make()) { _, output in report(text(output)) } }
        }
        let steps: @Sendable () -> [ReadStepper] = { (0..<count).map { _ in ReadStepper(make(), text) } }
        return (push, steps)
    }
    let longPayload = [UInt8](repeating: UInt8(ascii: "y"), count: 130)
    let json = #"{"k":[1,"x\u00e9",true,null]} ["a b",-2.5e3,{}]"s\"q" []"#
    let cborHex = "a26161016162820203" + "9f0102ff" + "7f61616162ff" + "f6" + "d8646161"
    return [
        TypedCase(
            name: "netstring", input: Array("5:hello,0:,3:a:c,".utf8),
            expected: ["68656c6c6f", "", "613a63"],
            reads: reads(3, { NetstringReader() }, describeBytes)),
        TypedCase(
            name: "packstring N", input: [0, 0, 0, 3] + Array("abc".utf8) + [0, 0, 0, 0],
            expected: ["616263", ""],
            reads: reads(2, { PackstringReader(format: .known("N")) }, describeBytes)),
        TypedCase(
            name: "packstring w", input: [0x81, 0x02] + longPayload + [0x01, 0x7A],
            expected: [Oracle.hex(longPayload), "7a"],
            reads: reads(2, { PackstringReader(format: .known("w")) }, describeBytes)),
        TypedCase(
            name: "json", input: Array(json.utf8),
            expected: [
                describeValue(["k": [1, "x\u{e9}", true, .null]]), describeValue(["a b", -2500.0, .map([])]),
                describeValue("s\"q"), describeValue([]),
            ],
            reads: reads(4, { JSONReader() }, describeValue)),
        TypedCase(
            name: "cbor", input: Oracle.fromHex(cborHex),
            expected: [
                describeValue(["a": 1, "b": [2, 3]]), describeValue([1, 2]), describeValue("ab"), describeValue(.null),
                describeValue(.tagged(100, "a")),
            ],
            reads: reads(5, { CBORReader() }, describeValue)),
        TypedCase(
            name: "codable", input: (try? codableFrames(typedPoints)) ?? [],
            expected: typedPoints.map { "\($0)" },
            reads: reads(2, { CodableReader(TypedPoint.self) }, { "\($0)" })),
    ]
}()

@Suite("Typed read and write types", .serialized, .timeLimit(.minutes(2)))
struct TypedReadWriteTests {
    // MARK: Every split point

    @Test("socket pair, every split point", arguments: allReadCases)
    func socketSplits(_ typed: TypedCase) throws {
        // Runs the case's reads against a buffer that grows in two steps, through the real queue.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        for split in 0...typed.input.count {
            let fixture = try TypedFixture(group: group)
            defer { fixture.close() }
            fixture.onLoop { handle in typed.push(handle) { fixture.events.add($0) } }
            fixture.write(Array(typed.input[..<split]))
            // Let the first part arrive on its own (pacing only; nothing is asserted about time).
            usleep(1000)
            fixture.write(Array(typed.input[split...]))
            let got = fixture.events.wait(for: typed.expected.count)
            #expect(got == typed.expected, "\(typed.name) split at \(split)")
            fixture.onLoop { handle in
                #expect(handle.readBuffer.readableBytes == 0, "\(typed.name) split at \(split): bytes left")
            }
        }
    }

    @Test("byte by byte on loopback TCP", arguments: allReadCases)
    func byteByByte(_ typed: TypedCase) throws {
        // read_size 1: every byte is its own socket read, so every reader sees every split point.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group, tcp: true, byteByByte: true)
        defer { fixture.close() }
        fixture.onLoop { handle in typed.push(handle) { fixture.events.add($0) } }
        fixture.write(typed.input)
        #expect(fixture.events.wait(for: typed.expected.count) == typed.expected)
    }

    @Test("readers fed directly at every split point", arguments: allReadCases)
    func directSplits(_ typed: TypedCase) throws {
        // The HandleReader contract without a handle: nothing is lost or read twice at any split.
        for split in 0...typed.input.count {
            var queue = DirectQueue(typed.steps())
            try queue.feed(Array(typed.input[..<split]))
            try queue.feed(Array(typed.input[split...]))
            #expect(queue.outputs == typed.expected, "\(typed.name) split at \(split)")
            #expect(queue.buffer.readableBytes == 0)
        }
    }

    // MARK: Malformed input

    @Test("malformed netstring length: non-fatal EBADMSG, bytes stay, handle alive")
    func netstringBadLength() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        fixture.onLoop { handle in handle.pushRead(.netstring()) { _, data in fixture.events.add(describeBytes(data)) } }
        fixture.write(Array("1x:".utf8))
        #expect(fixture.events.wait(for: 1) == ["error EBADMSG fatal=false"])
        fixture.onLoop { handle in
            #expect(!handle.isDestroyed)
            #expect(handle.readBuffer == ByteBuffer(string: "1x:"))
        }
    }

    @Test("netstring with a wrong terminator: EBADMSG, then the next read goes on")
    func netstringBadTerminator() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        fixture.onLoop { handle in
            handle.pushRead(.netstring()) { _, data in fixture.events.add("bad " + describeBytes(data)) }
            handle.pushRead(.netstring()) { _, data in fixture.events.add(describeBytes(data)) }
        }
        fixture.write(Array("3:abcX2:ok,".utf8))
        #expect(fixture.events.wait(for: 2) == ["error EBADMSG fatal=false", "6f6b"])
    }

    @Test("netstring with a leading zero: waits for the ':' like Perl, then EBADMSG")
    func netstringLeadingZero() throws {
        var reader = NetstringReader()
        var buffer = ByteBuffer(string: "01")
        #expect(try reader.read(from: &buffer) == nil)
        buffer.writeString(":x,")
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
        #expect(buffer == ByteBuffer(string: "01:x,"))
    }

    @Test("netstring longer than maxLength: EBADMSG before the payload arrives")
    func netstringTooLong() throws {
        var reader = NetstringReader(maxLength: 10)
        var buffer = ByteBuffer(string: "11:")
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
        #expect(buffer == ByteBuffer(string: "11:"))
    }

    @Test("malformed JSON: non-fatal EBADMSG, the bad text is skipped, the read goes on")
    func jsonGarbage() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        fixture.onLoop { handle in handle.pushRead(.json()) { _, value in fixture.events.add(describeValue(value)) } }
        fixture.write(Array("[1,x]".utf8))
        #expect(fixture.events.wait(for: 1) == ["error EBADMSG fatal=false"])
        fixture.write(Array(" [2]".utf8))
        #expect(fixture.events.wait(for: 2) == ["error EBADMSG fatal=false", describeValue([2])])
    }

    @Test("malformed CBOR: non-fatal EBADMSG, the bytes stay, the error repeats")
    func cborGarbage() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        fixture.onLoop { handle in handle.pushRead(.cbor()) { _, value in fixture.events.add(describeValue(value)) } }
        fixture.write([0x1C])
        #expect(fixture.events.wait(for: 1) == ["error EBADMSG fatal=false"])
        fixture.onLoop { handle in #expect(handle.readBuffer == ByteBuffer(bytes: [0x1C])) }
        fixture.write([0x00])
        #expect(fixture.events.wait(for: 2) == ["error EBADMSG fatal=false", "error EBADMSG fatal=false"])
        // The user's way out: drop the garbage; the queued read then decodes what follows.
        fixture.onLoop { handle in handle.consumeAll() }
        fixture.write([0x81, 0x01])
        #expect(fixture.events.wait(for: 3).last == describeValue([1]))
    }

    @Test("malformed packstring prefix: EBADMSG")
    func packstringBad() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        fixture.onLoop { handle in
            handle.pushRead(.packstring("n!")) { _, data in fixture.events.add(describeBytes(data)) }
        }
        fixture.write([0xFF, 0xFF, 0x41])
        #expect(fixture.events.wait(for: 1) == ["error EBADMSG fatal=false"])
        var reader = PackstringReader(format: .known("w"))
        var buffer = ByteBuffer(bytes: [0x80, 0x01, 0x41])
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
    }

    @Test("codable frames that do not decode: EBADMSG, the frame is dropped, the next one decodes")
    func codableBad() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        fixture.onLoop { handle in
            for _ in 0..<3 {
                handle.pushRead(.codable(TypedPoint.self)) { _, point in fixture.events.add("\(point)") }
            }
        }
        // Not CBOR (reserved 1c), then CBOR of the wrong shape, then a good frame.
        var wrongShape = ByteBuffer()
        try CBORWriter(["x": "not a number"]).write(into: &wrongShape)
        var bytes: [UInt8] = [0x01, 0x1C, UInt8(wrongShape.readableBytes)] + Array(wrongShape.readableBytesView)
        bytes += try codableFrames([typedPoints[0]])
        fixture.write(bytes)
        #expect(
            fixture.events.wait(for: 3)
                == ["error EBADMSG fatal=false", "error EBADMSG fatal=false", "\(typedPoints[0])"])
    }

    // MARK: JSON specifics (Perl's incremental parser)

    @Test("json: a top-level number ends with the available bytes")
    func jsonNumberAtEnd() throws {
        var queue = DirectQueue([ReadStepper(JSONReader(), describeValue), ReadStepper(JSONReader(), describeValue)])
        try queue.feed(Array("4".utf8))
        try queue.feed(Array("2 ".utf8))
        #expect(queue.outputs == [describeValue(4), describeValue(2)])
        #expect(queue.buffer == ByteBuffer(string: " "))
    }

    @Test("json: a partial text waits inside the reader, not in the read buffer")
    func jsonPartialLeavesBuffer() throws {
        var reader = JSONReader()
        var buffer = ByteBuffer(string: #"  {"a":[1,"#)
        #expect(try reader.read(from: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
        buffer.writeString(#"2]}  [3]"#)
        #expect(try reader.read(from: &buffer) == ["a": [1, 2]])
        #expect(buffer == ByteBuffer(string: "  [3]"))
    }

    @Test("json: an unfinished bad text is dropped until its end, then EBADMSG")
    func jsonBadTextAcrossArrivals() throws {
        var reader = JSONReader()
        var buffer = ByteBuffer(string: "[1,x")
        #expect(try reader.read(from: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
        buffer.writeString(",\"]\"")  // a "]" inside a string does not end the text
        #expect(try reader.read(from: &buffer) == nil)
        buffer.writeString("]] [5]")
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
        #expect(buffer == ByteBuffer(string: "] [5]"))
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
        #expect(try reader.read(from: &buffer) == [5])
    }

    @Test("json: literals, scalars followed by other bytes, garbage up to whitespace")
    func jsonScalars() throws {
        var reader = JSONReader()
        var buffer = ByteBuffer(string: "true42 nul")
        #expect(try reader.read(from: &buffer) == true)
        #expect(try reader.read(from: &buffer) == 42)
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
        #expect(buffer.readableBytes == 0)
        buffer.writeString("xyz [1]")
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
        #expect(buffer == ByteBuffer(string: " [1]"))
        #expect(try reader.read(from: &buffer) == [1])
        buffer.writeString("inf ")
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
    }

    @Test("json: a number token JSON::XS's scanner passes but cannot parse")
    func jsonOddNumber() throws {
        // Perl's reader dies inside its callback on "1-2"; here the scanner's token is decoded on
        // its own and the outcome is a value or EBADMSG, never a hang or a lost byte.
        var reader = JSONReader()
        var buffer = ByteBuffer(string: "1-2 [3]")
        var outcomes: [String] = []
        for _ in 0..<4 {
            do throws(HandleError) {
                if let value = try reader.read(from: &buffer) { outcomes.append(describeValue(value)) }
            } catch {
                outcomes.append("\(error.code)")
            }
        }
        #expect(outcomes.last == describeValue([3]))
        #expect(buffer.readableBytes == 0)
    }

    @Test("cbor: Perl's byte-string map keys and a nested self-describe tag are accepted")
    func cborPerlEncoding() throws {
        var reader = CBORReader()
        // {"a" (as bytes): 1} as CBOR::XS writes hash keys, behind a self-describe tag.
        var buffer = ByteBuffer(bytes: Oracle.fromHex("d9d9f7a1416101" + "81d9d9f701"))
        let map = try #require(try reader.read(from: &buffer))
        #expect(map == .map([(key: .bytes(ByteBuffer(string: "a")), value: 1)]))
        #expect(try reader.read(from: &buffer) == [.tagged(55799, 1)])
    }

    @Test("cbor: garbage after a value, and garbage completing a partial item (checked against Perl)")
    func cborGarbageLikePerl() throws {
        // Perl: [1] is delivered, then EBADMSG with rbuf 1c01.
        var queue = DirectQueue([ReadStepper(CBORReader(), describeValue), ReadStepper(CBORReader(), describeValue)])
        #expect(throws: HandleError.badMessage()) { try queue.feed(Oracle.fromHex("81011c01")) }
        #expect(queue.outputs == [describeValue([1])])
        #expect(queue.buffer == ByteBuffer(bytes: Oracle.fromHex("1c01")))
        // Perl: 83 waits in rbuf; 01 02 1c then gives EBADMSG with rbuf 8301021c.
        var reader = CBORReader()
        var buffer = ByteBuffer(bytes: [0x83])
        #expect(try reader.read(from: &buffer) == nil)
        #expect(buffer.readableBytes == 1)
        buffer.writeBytes([0x01, 0x02, 0x1C])
        #expect(throws: HandleError.badMessage()) { try reader.read(from: &buffer) }
        #expect(buffer == ByteBuffer(bytes: Oracle.fromHex("8301021c")))
    }

    @Test("json reads as an async sequence until the peer closes")
    func jsonAsyncSequence() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let fixture = try TypedFixture(group: group)
        fixture.write(Array(#"[1] {"a":2} "three" [4]"#.utf8))
        fixture.closePeerWriting()
        var values: [Value] = []
        for try await value in fixture.handle.reads(.json()) { values.append(value) }
        #expect(values == [[1], ["a": 2], "three", [4]])
        fixture.close()
        try await group.shutdownGracefully()
    }

    @Test("json: a large text split in many pieces decodes once, with bounded work")
    func jsonLargeSplit() throws {
        var text = "["
        for index in 0..<2000 { text += "\(index),\"s\(index)\"," }
        text += "0]"
        let bytes = Array(text.utf8)
        var reader = JSONReader()
        var buffer = ByteBuffer()
        var result: Value?
        for start in stride(from: 0, to: bytes.count, by: 7) {
            buffer.writeBytes(bytes[start..<min(start + 7, bytes.count)])
            if let value = try reader.read(from: &buffer) { result = value }
            if result == nil { #expect(buffer.readableBytes == 0) }
        }
        #expect(result?.arrayValue?.count == 4001)
    }

    // MARK: Writers

    @Test("write types put the expected bytes on the wire")
    func writerBytes() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        let results = Collector()
        fixture.onLoop { handle in
            do {
                try handle.pushWrite(.netstring("hello"))
                try handle.pushWrite(.netstring(ByteBuffer()))
                try handle.pushWrite(.packstring("n", ByteBuffer(string: "ab")))
                try handle.pushWrite(.packstring(.known("w"), ByteBuffer(repeating: 0x79, count: 130)))
                try handle.pushWrite(.json(["a", 1, true, .null, "\u{e9}"]))
                try handle.pushWrite(.cbor(["a", 1, -1, .null, true, .bytes(ByteBuffer(bytes: [1, 2]))]))
                try handle.pushWrite(.codable(typedPoints[1]))
            } catch {
                results.add("\(error)")
            }
        }
        var expected = Array("5:hello,0:,".utf8) + [0, 2] + Array("ab".utf8)
        expected += [0x81, 0x02] + [UInt8](repeating: 0x79, count: 130)
        expected += Array(#"["a",1,true,null,"é"]"#.utf8)
        expected += Oracle.fromHex("866161" + "0120f6f5420102")
        expected += try codableFrames([typedPoints[1]])
        #expect(fixture.peerRead(count: expected.count) == expected)
        #expect(results.all.isEmpty)
    }

    static func failingWriter(_ name: String) -> any HandleWriter {
        switch name {
        case "json NaN": return JSONWriter(.float(.nan))
        case "json infinity": return JSONWriter(["a": .float(-.infinity)])
        case "json undefined": return JSONWriter([1, ["k": .undefined]])
        case "json tag": return JSONWriter(.tagged(100, 1))
        case "json simple": return JSONWriter(.simple(99))
        case "json non-string key": return JSONWriter(.map([(key: 1, value: 2)]))
        case "packstring too long for C":
            return PackstringWriter(format: "C", payload: ByteBuffer(repeating: 0, count: 256))
        case "packstring invalid format": return PackstringWriter(format: "Z", payload: ByteBuffer())
        default: return CodableWriter(Unencodable())
        }
    }

    @Test("writer errors are thrown at push time and queue nothing", arguments: [
        "json NaN", "json infinity", "json undefined", "json tag", "json simple", "json non-string key",
        "packstring too long for C", "packstring invalid format", "codable throwing",
    ])
    func writerErrors(_ name: String) throws {
        let writer = Self.failingWriter(name)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let fixture = try TypedFixture(group: group)
        defer { fixture.close() }
        let results = Collector()
        let box = Box(writer)
        fixture.onLoop { handle in
            do throws(HandleError) {
                try handle.pushWrite(box.value)
                results.add("no error")
            } catch {
                results.add("\(error.code) fatal=\(error.isFatal) \(error.message.isEmpty ? "no message" : "message")")
            }
            results.add("queued \(handle.writeBufferLength)")
            results.add(handle.isDestroyed ? "destroyed" : "alive")
        }
        #expect(results.all == ["EINVAL fatal=false message", "queued 0", "alive"], "\(name)")
    }

    @Test("the undefined path names where the value sits")
    func undefinedPath() {
        #expect(JSONWriter.undefinedPath([1, ["k": .undefined]]) == "$[1].k")
        #expect(JSONWriter.undefinedPath(["a": [.null, .undefined]]) == "$.a[1]")
        #expect(JSONWriter.undefinedPath([1, "x"]) == nil)
    }

    @Test("seed example: a JSON RPC with a newline after each text, read with json and with line")
    func seedJSONRPC() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (left, right) = try Bench.makePair(tcp: false)
        let sender = try await Handle.make(socket: left, group: group).get()
        let receiver = try await Handle.make(socket: right, group: group).get()
        try await sender.eventLoop.submit {
            for call in [["method", "arg1", "arg2"], ["other", "a\nb"]] as [Value] {
                try sender.pushWrite(.json(call))
                sender.pushWrite("\n")
            }
        }.get()
        // The json reader skips the newline as leading whitespace.
        #expect(try await receiver.read(.json()) == ["method", "arg1", "arg2"])
        // "Other languages could read single lines": the text holds no raw newline.
        let line = try await receiver.read(.line())
        #expect(line.string.isEmpty)
        let second = try await receiver.read(.line())
        var text = second.line
        var decoder = JSONStreamDecoder()
        #expect(try decoder.finish(from: &text) == ["other", "a\nb"])
        await sender.destroyOnLoop()
        await receiver.destroyOnLoop()
        try await group.shutdownGracefully()
    }

    @Test("seed example: a CBOR RPC")
    func seedCBORRPC() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (left, right) = try Bench.makePair(tcp: false)
        let sender = try await Handle.make(socket: left, group: group).get()
        let receiver = try await Handle.make(socket: right, group: group).get()
        try await sender.eventLoop.submit {
            try sender.pushWrite(.cbor(["method", "arg1", "arg2"]))
            try sender.pushWrite(.cbor(["reply", 42, .bytes(ByteBuffer(bytes: [0, 255]))]))
        }.get()
        var calls: [Value] = []
        for try await call in receiver.reads(.cbor()) {
            calls.append(call)
            if calls.count == 2 { break }
        }
        #expect(calls == [["method", "arg1", "arg2"], ["reply", 42, .bytes(ByteBuffer(bytes: [0, 255]))]])
        await sender.destroyOnLoop()
        await receiver.destroyOnLoop()
        try await group.shutdownGracefully()
    }

    // MARK: Codable round trip

    @Test("codable round trip of a struct over a socket pair, callback and async")
    func codableRoundTrip() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (left, right) = try Bench.makePair(tcp: false)
        let writer = try await Handle.make(socket: left, group: group).get()
        let reader = try await Handle.make(socket: right, group: group).get()
        try await writer.eventLoop.submit {
            for point in typedPoints { try writer.pushWrite(.codable(point)) }
        }.get()
        var received: [TypedPoint] = []
        for _ in typedPoints { received.append(try await reader.read(.codable(TypedPoint.self))) }
        #expect(received == typedPoints)
        // And back, through the callback API.
        let collected = Collector()
        let second = received[1]
        try await reader.eventLoop.submit {
            try reader.pushWrite(.codable(second))
            writer.pushRead(.codable(TypedPoint.self)) { _, point in collected.add("\(point)") }
        }.get()
        #expect(collected.wait(for: 1) == ["\(typedPoints[1])"])
        await writer.destroyOnLoop()
        await reader.destroyOnLoop()
        try await group.shutdownGracefully()
    }
}

/// A type whose encoding always fails.
struct Unencodable: Encodable {
    struct Failure: Error {}
    func encode(to encoder: any Encoder) throws { throw Failure() }
}

/// One queued read as a plain step over a buffer (the reader and how to describe its output).
final class ReadStepper: @unchecked Sendable {
    private let body: (inout ByteBuffer) throws(HandleError) -> String?

    init<R: HandleReader>(_ reader: R, _ text: @escaping (R.Output) -> String) {
        var reader = reader
        body = { (buffer: inout ByteBuffer) throws(HandleError) -> String? in
            try reader.read(from: &buffer).map(text)
        }
    }

    func step(_ buffer: inout ByteBuffer) throws(HandleError) -> String? { try body(&buffer) }
}

/// The read queue's serving loop without a handle: each `feed` is one arrival.
struct DirectQueue {
    var steps: [ReadStepper]
    var buffer = ByteBuffer()
    var outputs: [String] = []

    init(_ steps: [ReadStepper]) { self.steps = steps }

    mutating func feed(_ bytes: [UInt8]) throws {
        buffer.writeBytes(bytes)
        while let head = steps.first, let output = try head.step(&buffer) {
            outputs.append(output)
            steps.removeFirst()
        }
    }
}
