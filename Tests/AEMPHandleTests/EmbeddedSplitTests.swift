import NIOCore
import NIOEmbedded
import Testing

@testable import AEMPHandle

/// A canonical text for a line read: the line and its end-of-line, in hex.
func describeLine(_ line: LineReader.Output) -> String {
    describeBytes(line.line) + "|" + describeBytes(line.eol)
}

/// A canonical text for a regex read: the data and each group, in hex.
func describeMatch(_ match: HandleRegexMatch) -> String {
    ([describeBytes(match.data)] + match.groups.map { $0.map(describeBytes) ?? "nil" }).joined(separator: "|")
}

/// A canonical text for a TLS detection.
func describeDetection(_ detection: TLSDetection) -> String {
    "\(detection.isTLS) \(detection.major.map(String.init) ?? "-") \(detection.minor.map(String.init) ?? "-")"
}

/// The read types that ``typedCases`` leaves out: chunk, line (default, string and regex end of
/// line), regex, tls_detect.
let untypedCases: [TypedCase] = {
    /// Queues one read per maker; each reports through `report`.
    func sequence(
        _ makers: [@Sendable (Handle, @escaping @Sendable (String) -> Void) -> Void],
        _ steps: @escaping @Sendable () -> [ReadStepper]
    ) -> (push: @Sendable (Handle, @escaping @Sendable (String) -> Void) -> Void, steps: @Sendable () -> [ReadStepper]) {
        ({ handle, report in for make in makers { make(handle, report) } }, steps)
    }
    func read<R: HandleReader & Sendable>(
        _ make: @escaping @Sendable () -> R, _ text: @escaping @Sendable (R.Output) -> String
    ) -> @Sendable (Handle, @escaping @Sendable (String) -> Void) -> Void {
        { handle, report in handle.pushRead(make()) { _, output in report(text(output)) } }
    }
    func hex(_ text: String) -> String { Oracle.hex(Array(text.utf8)) }
    // Force-unwrapped on purpose: the patterns are constants of this test.
    let eolRegex = try! HandleRegex("\r?\n|;")
    let pair = try! HandleRegex("^([a-z]+)=([0-9]+)\n")
    let clientHello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]
    return [
        TypedCase(
            name: "chunk", input: Array("abcdefghij".utf8),
            expected: [hex("abc"), hex("defg"), hex("hij")],
            reads: sequence(
                [read({ ChunkReader(length: 3) }, describeBytes), read({ ChunkReader(length: 4) }, describeBytes),
                 read({ ChunkReader(length: 3) }, describeBytes)],
                { [ReadStepper(ChunkReader(length: 3), describeBytes), ReadStepper(ChunkReader(length: 4), describeBytes),
                   ReadStepper(ChunkReader(length: 3), describeBytes)] })),
        TypedCase(
            name: "line, default end of line", input: Array("one\r\ntwo\n\nthree\n".utf8),
            expected: [hex("one") + "|" + hex("\r\n"), hex("two") + "|" + hex("\n"), "|" + hex("\n"),
                       hex("three") + "|" + hex("\n")],
            reads: sequence(
                Array(repeating: read({ LineReader() }, describeLine), count: 4),
                { (0..<4).map { _ in ReadStepper(LineReader(), describeLine) } })),
        TypedCase(
            name: "line, string end of line", input: Array("a--bc----d--".utf8),
            expected: [hex("a") + "|" + hex("--"), hex("bc") + "|" + hex("--"), "|" + hex("--"),
                       hex("d") + "|" + hex("--")],
            reads: sequence(
                Array(repeating: read({ LineReader(eol: "--") }, describeLine), count: 4),
                { (0..<4).map { _ in ReadStepper(LineReader(eol: "--"), describeLine) } })),
        TypedCase(
            name: "line, regex end of line", input: Array("x;y\r\nz\n".utf8),
            expected: [hex("x") + "|" + hex(";"), hex("y") + "|" + hex("\r\n"), hex("z") + "|" + hex("\n")],
            reads: sequence(
                Array(repeating: read({ LineReader(eol: eolRegex) }, describeLine), count: 3),
                { (0..<3).map { _ in ReadStepper(LineReader(eol: eolRegex), describeLine) } })),
        TypedCase(
            name: "regex", input: Array("ab=12\ncd=3\n".utf8),
            expected: [[hex("ab=12\n"), hex("ab"), hex("12")].joined(separator: "|"),
                       [hex("cd=3\n"), hex("cd"), hex("3")].joined(separator: "|")],
            reads: sequence(
                Array(repeating: read({ RegexReader(accept: pair) }, describeMatch), count: 2),
                { (0..<2).map { _ in ReadStepper(RegexReader(accept: pair), describeMatch) } })),
        TypedCase(
            name: "tls_detect, TLS", input: clientHello,
            expected: ["true 3 1", Oracle.hex(clientHello)],
            reads: sequence(
                [read({ TLSDetectReader() }, describeDetection),
                 read({ ChunkReader(length: clientHello.count) }, describeBytes)],
                { [ReadStepper(TLSDetectReader(), describeDetection),
                   ReadStepper(ChunkReader(length: clientHello.count), describeBytes)] })),
        TypedCase(
            name: "tls_detect, plain text", input: Array("GET / HTTP/1.0\r\n".utf8),
            expected: ["false - -", hex("GET / HTTP/1.0") + "|" + hex("\r\n")],
            reads: sequence(
                [read({ TLSDetectReader() }, describeDetection), read({ LineReader() }, describeLine)],
                { [ReadStepper(TLSDetectReader(), describeDetection), ReadStepper(LineReader(), describeLine)] })),
    ]
}()

/// Every read type: the typed ones and the others.
let allReadCases = typedCases + untypedCases

/// Every read type at every split point of its input, through a handle on an `EmbeddedChannel`.
@Suite("Every read type at every split point, in memory")
struct EmbeddedSplitTests {
    /// Feeds `parts` as separate arrivals and returns the values the reads reported.
    static func run(_ typed: TypedCase, parts: [ArraySlice<UInt8>]) throws -> (outputs: [String], left: Int, log: [String]) {
        let fixture = try EmbeddedFixture()
        defer { fixture.finish() }
        let outputs = EventBox()
        typed.push(fixture.handle) { outputs.add($0) }
        for part in parts where !part.isEmpty { fixture.feed(part) }
        return (outputs.items, fixture.handle.readBuffer.readableBytes, fixture.log)
    }

    @Test("two arrivals split at every byte", arguments: allReadCases)
    func everySplit(_ typed: TypedCase) throws {
        for split in 0...typed.input.count {
            let got = try Self.run(typed, parts: [typed.input[..<split], typed.input[split...]])
            #expect(got.outputs == typed.expected, "\(typed.name) split at \(split)")
            #expect(got.left == 0, "\(typed.name) split at \(split): bytes left")
            #expect(got.log.isEmpty, "\(typed.name) split at \(split)")
        }
    }

    @Test("one byte per arrival", arguments: allReadCases)
    func byteByByte(_ typed: TypedCase) throws {
        let got = try Self.run(typed, parts: typed.input.indices.map { typed.input[$0...$0] })
        #expect(got.outputs == typed.expected)
        #expect(got.left == 0)
        #expect(got.log.isEmpty)
    }

    @Test("bytes arriving at an empty read buffer are adopted, not copied (also a piece of a larger arrival)")
    func arrivalsAreAdopted() throws {
        let addresses = EventBox()
        let fixture = try EmbeddedFixture { options in
            options.readSize = 4096
            options.maxReadSize = 4096
            options.onRead = { handle in
                handle.withReadBuffer { buffer in
                    addresses.add(buffer.withUnsafeReadableBytes { "\(UInt(bitPattern: $0.baseAddress))" })
                    buffer.moveReaderIndex(to: buffer.writerIndex)
                }
            }
        }
        defer { fixture.finish() }
        for size in [1000, 10_000] {
            let arriving = ByteBuffer(repeating: 7, count: size)
            let base = arriving.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            _ = try fixture.channel.writeInbound(arriving)
            fixture.tick()
            // The first read of each arrival starts at the arriving buffer's own bytes.
            #expect(addresses.items.contains("\(base)"), "size \(size)")
        }
    }

    @Test("chunks spanning arrivals: every byte in order, and the read buffer stays small")
    // Every other chunk is kept, so the read buffer's storage is sometimes shared with a chunk (the
    // leftover is then copied to new storage) and sometimes its own (appended in place).
    func chunksAcrossArrivals() throws {
        let fixture = try EmbeddedFixture { options in
            options.readSize = 1000
            options.maxReadSize = 1000
        }
        defer { fixture.finish() }
        let chunks = EventBox()
        let capacity = EventBox()
        final class Reader: @unchecked Sendable {
            var next: ((Handle) -> Void)?
            var kept: [(index: Int, chunk: ByteBuffer)] = []
        }
        let reader = Reader()
        reader.next = { handle in
            handle.pushRead(.chunk(1500)) { handle, chunk in
                let ok = chunk.readableBytesView.enumerated().allSatisfy { offset, byte in
                    byte == UInt8((chunks.items.count * 1500 + offset) % 251)
                }
                chunks.add(ok ? "ok" : "bad")
                if chunks.items.count % 2 == 0 { reader.kept.append((chunks.items.count - 1, chunk)) }
                capacity.add("\(handle.readBuffer.capacity)")
                reader.next?(handle)
            }
        }
        reader.next?(fixture.handle)
        let arrivals = 300
        for arrival in 0..<arrivals {
            fixture.feed((0..<1000).map { UInt8((arrival * 1000 + $0) % 251) })
        }
        reader.next = nil
        #expect(chunks.items.count == arrivals * 1000 / 1500)
        #expect(chunks.items.allSatisfy { $0 == "ok" })
        #expect(capacity.items.compactMap(Int.init).max() ?? 0 <= 8 * 1000)
        // Kept chunks were not changed by the appends that followed them.
        #expect(!reader.kept.isEmpty)
        #expect(reader.kept.allSatisfy { index, chunk in
            chunk.readableBytesView.enumerated().allSatisfy { $1 == UInt8((index * 1500 + $0) % 251) }
        })
    }
}
