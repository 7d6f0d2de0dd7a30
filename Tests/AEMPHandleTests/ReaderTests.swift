import NIOCore
import Testing

@testable import AEMPHandle

/// Readers fed byte by byte at every split point, without sockets.
@Suite("Handle readers")
struct ReaderTests {
    /// Feeds `input` split at `split`: the reader must wait on the first part and decode after the rest.
    static func feed<R: HandleReader>(_ reader: R, _ input: [UInt8], split: Int) throws -> (R.Output?, ByteBuffer) {
        var reader = reader
        var buffer = ByteBuffer(bytes: input[0..<split])
        if let early = try reader.read(from: &buffer) {
            var rest = ByteBuffer(bytes: input[split...])
            buffer.writeBuffer(&rest)
            return (early, buffer)
        }
        var rest = ByteBuffer(bytes: input[split...])
        buffer.writeBuffer(&rest)
        return (try reader.read(from: &buffer), buffer)
    }

    @Test("chunk at every split point")
    func chunk() throws {
        let input = Array("0123456789".utf8)
        for split in 0...input.count {
            let (output, rest) = try Self.feed(ChunkReader(length: 7), input, split: split)
            #expect(output == ByteBuffer(string: "0123456"))
            #expect(rest == ByteBuffer(string: "789"))
        }
    }

    @Test("default line at every split point", arguments: [
        ("abc\r\nrest", "abc", "\r\n"), ("abc\nrest", "abc", "\n"), ("a\r\r\nrest", "a\r", "\r\n"),
        ("\nrest", "", "\n"), ("\u{0}\u{ff}\nrest", "\u{0}\u{ff}", "\n"),
    ])
    func defaultLine(_ input: String, _ line: String, _ eol: String) throws {
        let bytes = Array(input.utf8)
        for split in 0...bytes.count {
            let (output, rest) = try Self.feed(LineReader(), bytes, split: split)
            #expect(output?.line == ByteBuffer(string: line))
            #expect(output?.eol == ByteBuffer(string: eol))
            #expect(rest == ByteBuffer(string: "rest"))
        }
    }

    @Test("string end of line at every split point")
    func literalLine() throws {
        let bytes = Array("key;;value;;rest".utf8)
        for split in 0...bytes.count {
            let (output, rest) = try Self.feed(LineReader(eol: ";;"), bytes, split: split)
            #expect(output?.string == "key")
            #expect(rest == ByteBuffer(string: "value;;rest"))
        }
    }

    @Test("regex end of line takes the earliest match")
    func regexLine() throws {
        var reader = LineReader(eol: try HandleRegex("\\r|\\r\\n"))
        var buffer = ByteBuffer(string: "ab\r\ncd")
        let line = try #require(try reader.read(from: &buffer))
        #expect(line.string == "ab")
        #expect(line.eol == ByteBuffer(string: "\r"))
        #expect(buffer == ByteBuffer(string: "\ncd"))
    }

    @Test("line search resumes where it stopped and restarts when told")
    func lineScanState() throws {
        var reader = LineReader()
        var buffer = ByteBuffer(string: "abc")
        #expect(try reader.read(from: &buffer) == nil)
        buffer.moveReaderIndex(forwardBy: 1)
        reader.restartScan()
        buffer.writeString("\n")
        #expect(try reader.read(from: &buffer)?.string == "bc")
    }

    @Test("regex reader: accept, reject, skip (the seed's HTTP header example)")
    func regexReader() throws {
        let header = Array("GET / HTTP/1.0\r\nHost: x\r\n\r\nbody".utf8)
        for split in 0...header.count {
            let reader = RegexReader(
                accept: try HandleRegex("\\r\\n\\r\\n"), skip: try HandleRegex("^.*[^\\r\\n]"))
            let (output, rest) = try Self.feed(reader, header, split: split)
            #expect(output?.data == ByteBuffer(string: "GET / HTTP/1.0\r\nHost: x\r\n\r\n"))
            #expect(rest == ByteBuffer(string: "body"))
        }
        var rejecting = RegexReader(accept: try HandleRegex("^[0-9]+\\s"), reject: try HandleRegex("[^0-9]"))
        var bad = ByteBuffer(string: "12a")
        #expect(throws: HandleError.badMessage()) { try rejecting.read(from: &bad) }
        var good = ByteBuffer(string: "123 ")
        let match = try #require(try rejecting.read(from: &good))
        #expect(match.data == ByteBuffer(string: "123 "))
    }

    @Test("regex groups and bad patterns")
    func regexGroups() throws {
        var reader = RegexReader(accept: try HandleRegex("(\\d+)-(x)?(\\w+)"))
        var buffer = ByteBuffer(string: "id 12-ab!")
        let match = try #require(try reader.read(from: &buffer))
        #expect(match.groups == [ByteBuffer(string: "12"), nil, ByteBuffer(string: "ab")])
        #expect(throws: HandleError.self) { try HandleRegex("(unclosed") }
        #expect(try HandleRegex("a.b").description == "qr/a.b/")
    }

    @Test("tls_detect decisions", arguments: [
        ("16030100", true), ("1603", nil), ("", nil), ("1605", false), ("16030150", false),
        ("802e01030100", true), ("802e0103", nil), ("802e02", false), ("47455420", false),
    ] as [(String, Bool?)])
    func tlsDetect(_ hex: String, _ verdict: Bool?) throws {
        var reader = TLSDetectReader()
        var buffer = ByteBuffer(bytes: Oracle.fromHex(hex))
        let result = try reader.read(from: &buffer)
        #expect(result?.isTLS == verdict)
        #expect(buffer.readableBytes == hex.count / 2)
    }

    @Test("closure readers and writers")
    func closures() throws {
        var reader = ClosureReader<UInt8> { (buffer: inout ByteBuffer) throws(HandleError) -> UInt8? in
            buffer.readInteger(as: UInt8.self)
        }
        var buffer = ByteBuffer(bytes: [7])
        #expect(try reader.read(from: &buffer) == 7)
        #expect(try reader.read(from: &buffer) == nil)
        let writer = ClosureWriter { (buffer: inout ByteBuffer) throws(HandleError) in buffer.writeString("hi") }
        var out = ByteBuffer()
        try writer.write(into: &out)
        #expect(out == ByteBuffer(string: "hi"))
    }

    @Test("error codes and messages")
    func errors() {
        let error = HandleError(.brokenPipe, fatal: true)
        #expect(error.message == "Broken pipe")
        #expect(error.code.name == "EPIPE")
        #expect(HandleError.Code.none.name == nil)
        #expect(HandleError.Code.noSpace.systemMessage == "No space left on device")
        #expect(HandleError.Code(errno: 9999).name == "E9999")
        #expect(HandleError(.none, message: "Unexpected end-of-file").description == "Unexpected end-of-file")
        #expect(error.description.contains("EPIPE"))
        #expect(HandleError.Code.timedOut.description == "ETIMEDOUT")
    }
}
