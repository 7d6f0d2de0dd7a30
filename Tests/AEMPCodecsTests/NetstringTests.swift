import NIOCore
import Testing

@testable import AEMPCodecs

@Suite("Netstring framing (netstring.json)")
struct NetstringTests {
    @Test("push_write cases produce the same bytes")
    func writes() throws {
        var checked = 0
        for c in try JSONTestKit.cases("netstring.json", kind: "write") {
            let bytes: [UInt8]
            if let hex = c["input_hex"] as? String {
                bytes = JSONTestKit.bytes(hex: hex)
            } else if let text = c["input"] as? String {
                // Perl sends characters up to U+00FF as Latin-1 bytes and croaks on wider ones; our
                // API takes bytes, so a wide character has no counterpart.
                guard text.unicodeScalars.allSatisfy({ $0.value < 256 }) else {
                    #expect(c["croak"] != nil)
                    continue
                }
                bytes = text.unicodeScalars.map { UInt8($0.value) }
            } else if let number = c["input"] as? Double {
                bytes = Array((number == number.rounded() ? String(Int(number)) : String(number)).utf8)
            } else {
                // `undef` (Perl writes the invalid ":,"): no Swift counterpart.
                #expect(c["wire_hex"] as? String == "3a2c")
                continue
            }
            var wire = ByteBuffer()
            let written = wire.writeNetstring(bytes: bytes)
            #expect(JSONTestKit.hex(wire.readableBytesView) == c["wire_hex"] as! String)
            #expect(written == wire.readableBytes)
            var viaBuffer = ByteBuffer()
            viaBuffer.writeNetstring(ByteBuffer(bytes: bytes))
            #expect(viaBuffer == wire)
            var decoder = NetstringDecoder()
            #expect(try decoder.next(from: &wire) == ByteBuffer(bytes: bytes))
            checked += 1
        }
        #expect(checked >= 15)
    }

    /// Read cases where we deliberately differ, by description.
    static let readDeviations: [String: String] = [
        "huge length 20 digits": "above maxLength (64 MiB default) is an error at once (Perl waits forever)",
        "length 2^32": "above maxLength (64 MiB default) is an error at once (Perl waits)",
    ]

    @Test("push_read cases replayed chunk by chunk")
    func reads() throws {
        var deviations: [String] = []
        for c in try JSONTestKit.cases("netstring.json", kind: "read") {
            let description = c["description"] as! String
            let result = c["result"] as! [String: Any]
            let events = result["events"] as! [[String: Any]]
            // Reads before Perl's first EBADMSG, and whether Perl reported one.
            var perlReads: [String] = []
            var perlBadMessage = false
            for event in events {
                if event["event"] as? String == "read" && !perlBadMessage { perlReads.append(event["data_hex"] as! String) }
                if event["errno"] as? String == "EBADMSG" { perlBadMessage = true }
            }
            var decoder = NetstringDecoder()
            var buffer = ByteBuffer()
            var reads: [String] = []
            var failed: FramingError?
            do {
                for chunk in c["chunks_hex"] as! [String] {
                    buffer.writeBytes(JSONTestKit.bytes(hex: chunk))
                    while let payload = try decoder.next(from: &buffer) { reads.append(JSONTestKit.hex(payload.readableBytesView)) }
                }
                while let payload = try decoder.finish(from: &buffer) { reads.append(JSONTestKit.hex(payload.readableBytesView)) }
            } catch {
                failed = error
            }
            let ourBadMessage = failed != nil && failed?.code != .truncated
            if reads != perlReads || ourBadMessage != perlBadMessage { deviations.append(description) }
        }
        #expect(Set(deviations) == Set(Self.readDeviations.keys), "deviations: \(deviations.sorted())")
    }

    @Test("strict errors", arguments: [
        ("05:hello,", FramingError.Code.invalidLength), ("00:,", .invalidLength), (":,", .invalidLength),
        ("x:abc,", .invalidLength), ("-1:,", .invalidLength), (" 5:hello,", .invalidLength), ("5 :hello,", .invalidLength),
        ("1e1:0123456789,", .invalidLength), ("5:hello;", .missingTerminator), ("5:hello3:abc,", .missingTerminator),
        ("11:hello", .tooLarge), ("99999999999999999999999:", .tooLarge),
    ] as [(String, FramingError.Code)])
    func strictErrors(input: String, code: FramingError.Code) {
        var decoder = NetstringDecoder(maxLength: 10)
        var buffer = ByteBuffer(string: input)
        let error = #expect(throws: FramingError.self) { try decoder.next(from: &buffer) }
        #expect(error?.code == code)
        #expect(buffer.readableBytes == input.utf8.count)
    }

    @Test("limits, partial input and end of stream")
    func partial() throws {
        var decoder = NetstringDecoder(maxLength: .max)
        var huge = ByteBuffer(string: "9223372036854775807")
        #expect(try decoder.next(from: &huge) == nil)
        var overflow = ByteBuffer(string: "9223372036854775808")
        #expect(throws: FramingError(.tooLarge, "")) { try decoder.next(from: &overflow) }
        var exact = NetstringDecoder(maxLength: 5)
        var ok = ByteBuffer(string: "5:hello,")
        #expect(try exact.next(from: &ok) == ByteBuffer(string: "hello"))
        var zero = NetstringDecoder(maxLength: 0)
        var z = ByteBuffer(string: "0:,")
        #expect(try zero.next(from: &z) == ByteBuffer())
        var one = ByteBuffer(string: "1:x,")
        #expect(throws: FramingError(.tooLarge, "")) { try zero.next(from: &one) }

        var d = NetstringDecoder()
        var buffer = ByteBuffer(string: "5:hel")
        #expect(try d.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 5)
        #expect(throws: FramingError(.truncated, "")) { try d.finish(from: &buffer) }
        var empty = ByteBuffer()
        #expect(try d.finish(from: &empty) == nil)
    }

    @Test("every split point of several netstrings, and the NIO processor")
    func splits() throws {
        var stream = ByteBuffer()
        let payloads = ["", "a", "hello world", String(repeating: "z", count: 120)].map { ByteBuffer(string: $0) }
        for p in payloads { stream.writeNetstring(p) }
        let bytes = Array(stream.readableBytesView)
        for split in 0...bytes.count {
            var decoder = NetstringDecoder()
            var buffer = ByteBuffer(bytes: bytes[..<split])
            var got: [ByteBuffer] = []
            while let p = try decoder.next(from: &buffer) { got.append(p) }
            buffer.writeBytes(bytes[split...])
            while let p = try decoder.next(from: &buffer) { got.append(p) }
            #expect(got == payloads, "split \(split)")
        }
        let processor = NIOSingleStepByteToMessageProcessor(NetstringDecoder())
        var got: [ByteBuffer] = []
        for byte in bytes { try processor.process(buffer: ByteBuffer(bytes: [byte])) { got.append($0) } }
        try processor.finishProcessing(seenEOF: true) { got.append($0) }
        #expect(got == payloads)
        let truncated = NIOSingleStepByteToMessageProcessor(NetstringDecoder())
        try truncated.process(buffer: ByteBuffer(string: "3:ab")) { _ in }
        #expect(throws: FramingError(.truncated, "")) { try truncated.finishProcessing(seenEOF: true) { _ in } }
    }
}
