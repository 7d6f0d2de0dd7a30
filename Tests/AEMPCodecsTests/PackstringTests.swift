import NIOCore
import Testing

@testable import AEMPCodecs

@Suite("Packstring framing (packstring.json)")
struct PackstringTests {
    @Test("prefix formats: accepted and rejected combinations, bytes of every representable length")
    func prefixes() throws {
        var checkedLengths = 0
        for c in try JSONTestKit.cases("packstring.json", kind: "prefix") {
            let format = (c["format"] as! String) + (c["modifier"] as! String)
            guard c["accepted"] as! Bool else {
                #expect(throws: FramingError(.invalidFormat, "")) { try PackFormat(format) }
                continue
            }
            let pack = try PackFormat(format)
            #expect(pack.prefixSize == c["prefix_size"] as? Int, "\(format)")
            #expect(pack.description == format)
            for entry in c["lengths"] as! [[String: Any]] {
                let length = entry["length"] as! Int
                var buffer = ByteBuffer()
                if entry["representable"] as! Bool {
                    try pack.writeLength(length, into: &buffer)
                    #expect(JSONTestKit.hex(buffer.readableBytesView) == entry["prefix_hex"] as! String, "\(format) \(length)")
                    let read = try #require(try pack.readLength(from: buffer))
                    #expect(read.length == length && read.prefixSize == buffer.readableBytes)
                    checkedLengths += 1
                } else {
                    // Perl wraps (or croaks for c/C inside AnyEvent); we refuse every such length.
                    #expect(throws: FramingError(.lengthNotRepresentable, "")) { try pack.writeLength(length, into: &buffer) }
                    #expect(buffer.readableBytes == 0)
                }
            }
        }
        #expect(checkedLengths > 300)
    }

    @Test("more format strings", arguments: [
        ("l!<", 8, false), ("L>!", 8, true), ("s!>", 2, true), ("N!", 4, true), ("v!", 2, false), ("J>", 8, true),
    ] as [(String, Int, Bool)])
    func combinedModifiers(format: String, size: Int, bigEndian: Bool) throws {
        let pack = try PackFormat(format)
        #expect(pack.prefixSize == size)
        if case .fixed(_, _, let big) = pack.encoding { #expect(big == bigEndian) }
    }

    @Test("invalid format strings", arguments: ["", "x", "a", "nn", "s<>", "s!!", "N<", "w!", "C>", "q!", "S/", "n2", "é"])
    func invalidFormats(format: String) {
        let error = #expect(throws: FramingError.self) { try PackFormat(format) }
        #expect(error?.code == .invalidFormat)
        #expect(error.map { !$0.message.isEmpty } ?? false)
    }

    @Test("maximum lengths")
    func maxLengths() throws {
        #expect(try PackFormat("c").maxLength == 127)
        #expect(try PackFormat("C").maxLength == 255)
        #expect(try PackFormat("n!").maxLength == 32767)
        #expect(try PackFormat("N").maxLength == 4_294_967_295)
        #expect(try PackFormat("l").maxLength == 2_147_483_647)
        #expect(try PackFormat("Q").maxLength == Int.max)
        #expect(try PackFormat("q").maxLength == Int.max)
        #expect(try PackFormat("w").maxLength == Int.max)
        var buffer = ByteBuffer()
        #expect(throws: FramingError(.lengthNotRepresentable, "")) { try PackFormat("w").writeLength(-1, into: &buffer) }
        try PackFormat("Q>").writeLength(.max, into: &buffer)
        #expect(JSONTestKit.hex(buffer.readableBytesView) == "7fffffffffffffff")
    }

    @Test("BER: pack \"w\" of every non-negative integer case")
    func berPack() throws {
        var checked = 0
        for c in try JSONTestKit.cases("packstring.json", kind: "ber") {
            // Only integer inputs map to our UInt64 API (Perl also packs floats, numeric strings and
            // negative numbers, which croak).
            guard let input = c["input"] as? String, input.allSatisfy(\.isNumber), let value = UInt64(input) else { continue }
            var buffer = ByteBuffer()
            BER.write(value, into: &buffer)
            #expect(JSONTestKit.hex(buffer.readableBytesView) == c["hex"] as! String, "\(input)")
            let read = try #require(try BER.read(from: buffer))
            #expect(read.value == value && read.size == buffer.readableBytes)
            checked += 1
        }
        #expect(checked >= 35)
    }

    @Test("BER: unpack \"w\" cases (non-strict as Perl, strict for lengths)")
    func berUnpack() throws {
        for c in try JSONTestKit.cases("packstring.json", kind: "ber_unpack") {
            let bytes = JSONTestKit.bytes(hex: c["hex"] as! String)
            let buffer = ByteBuffer(bytes: bytes)
            if let error = c["error"] as? String {
                #expect(error.contains("Unterminated"))
                #expect(try BER.read(from: buffer, strict: false) == nil)
                continue
            }
            let perl = (c["result"] as! [String])[0]
            guard let expected = UInt64(perl) else {
                // Beyond 64 bits: Perl returns a big decimal string; we refuse.
                #expect(throws: FramingError(.tooLarge, "")) { try BER.read(from: buffer, strict: false) }
                continue
            }
            let read = try #require(try BER.read(from: buffer, strict: false))
            #expect(read.value == expected && read.size == bytes.count)
            if bytes.first == 0x80 {
                #expect(throws: FramingError(.nonMinimalBER, "")) { try BER.read(from: buffer) }
            }
        }
    }

    private static func payload(_ length: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(length)
        for i in 0..<length { buffer.writeInteger(UInt8(i % 251)) }
        return buffer
    }

    @Test("push_write cases: same bytes where Perl is right, an error where Perl croaks or wraps")
    func handleWrite() throws {
        for c in try JSONTestKit.cases("packstring.json", kind: "handle_write") {
            let format = c["format"] as! String
            let length = c["payload_length"] as! Int
            let payload = Self.payload(length)
            guard let pack = try? PackFormat(format) else {
                #expect(c["croak"] != nil, "\(format) rejected but Perl accepts it")
                continue
            }
            var wire = ByteBuffer()
            let readBack = c["read_back"] as? [String: Any]
            let events = readBack?["events"] as? [[String: Any]] ?? []
            let perlWrapped = events.contains { $0["data_matches_payload"] as? Bool == false }
            if c["croak"] != nil || perlWrapped {
                #expect(throws: FramingError(.lengthNotRepresentable, "")) { try wire.writePackstring(payload, format: pack) }
                #expect(wire.readableBytes == 0)
                continue
            }
            try wire.writePackstring(payload, format: pack)
            #expect(wire.readableBytes == c["wire_length"] as! Int)
            let hex = JSONTestKit.hex(wire.readableBytesView)
            if let full = c["wire_hex"] as? String {
                #expect(hex == full, "\(format) \(length)")
            } else {
                #expect(hex.hasPrefix(c["wire_head_hex"] as! String), "\(format) \(length)")
            }
            var decoder = PackstringDecoder(format: pack)
            #expect(try decoder.next(from: &wire) == payload)
            #expect(try decoder.finish(from: &wire) == nil)
        }
    }

    @Test("push_write of character strings, as Latin-1 bytes")
    func handleWriteChars() throws {
        for c in try JSONTestKit.cases("packstring.json", kind: "handle_write_chars") where c["croak"] == nil {
            let scalars = (c["data"] as! String).unicodeScalars
            let bytes = scalars.map { UInt8($0.value) }
            var wire = ByteBuffer()
            try wire.writePackstring(ByteBuffer(bytes: bytes), format: PackFormat(c["format"] as! String))
            #expect(JSONTestKit.hex(wire.readableBytesView) == c["wire_hex"] as! String)
        }
    }

    /// handle_read cases where we deliberately differ, by description.
    static let readDeviations: [String: String] = [
        "non-minimal BER 0x80 0x00 = 0": "rejected (Perl reads 0 and then a second bogus frame)",
        "signed prefix -1": "negative length is an error (Perl loops forever)",
        "signed 16-bit prefix -2": "negative length is an error (Perl loops forever)",
        "huge declared length": "above maxLength (64 MiB default) is an error at once (Perl waits)",
    ]

    @Test("push_read cases replayed chunk by chunk")
    func handleRead() throws {
        var deviations: [String] = []
        for c in try JSONTestKit.cases("packstring.json", kind: "handle_read") {
            let description = c["description"] as! String
            let result = c["result"] as! [String: Any]
            let events = result["events"] as! [[String: Any]]
            // `data_hex` holds at most the first 64 bytes of a read; `length` is the full length.
            let perlReads = events.filter { $0["event"] as? String == "read" }.map { ($0["length"] as! Int, $0["data_hex"] as! String) }
            let perlLooped = events.contains { $0["event"] as? String == "harness_stopped_rearming" }
            var decoder = PackstringDecoder(format: try PackFormat(c["format"] as! String))
            var buffer = ByteBuffer()
            var reads: [ByteBuffer] = []
            var failed: FramingError?
            do {
                for chunk in c["chunks_hex"] as! [String] {
                    buffer.writeBytes(JSONTestKit.bytes(hex: chunk))
                    while let payload = try decoder.next(from: &buffer) { reads.append(payload) }
                }
                while let payload = try decoder.finish(from: &buffer) { reads.append(payload) }
            } catch {
                failed = error
            }
            // Perl's EPIPE at EOF means "bytes were left over"; ours is `truncated`.
            let leftover = result["rbuf_left_hex"].map { !($0 as? String ?? "").isEmpty } ?? (failed?.code == .truncated)
            let sameReads = reads.count == perlReads.count && zip(reads, perlReads).allSatisfy { ours, perl in
                ours.readableBytes == perl.0 && JSONTestKit.hex(ours.readableBytesView).hasPrefix(perl.1)
            }
            let agrees = sameReads && !perlLooped && (failed == nil || (failed?.code == .truncated && leftover))
            if !agrees { deviations.append(description) }
        }
        #expect(Set(deviations) == Set(Self.readDeviations.keys), "deviations: \(deviations.sorted())")
    }

    @Test("reader errors and limits")
    func readerErrors() throws {
        var signed = PackstringDecoder(format: try PackFormat("c"))
        var buffer = ByteBuffer(bytes: [0xFF, 0x61])
        #expect(throws: FramingError(.negativeLength, "")) { try signed.next(from: &buffer) }
        #expect(buffer.readableBytes == 2)
        var q = PackstringDecoder(format: try PackFormat("q"))
        var qb = ByteBuffer(bytes: [0, 0, 0, 0, 0, 0, 0, 0x80])
        #expect(throws: FramingError(.negativeLength, "")) { try q.next(from: &qb) }
        var big = PackstringDecoder(format: try PackFormat("Q>"), maxLength: .max)
        var bb = ByteBuffer(bytes: [0xFF, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: FramingError(.tooLarge, "")) { try big.next(from: &bb) }
        var limited = PackstringDecoder(format: try PackFormat("n"), maxLength: 3)
        var lb = ByteBuffer(bytes: [0, 4])
        #expect(throws: FramingError(.tooLarge, "")) { try limited.next(from: &lb) }
        var lb2 = ByteBuffer(bytes: [0, 3, 1, 2])
        #expect(try limited.next(from: &lb2) == nil)
        #expect(lb2.readableBytes == 4)
        #expect(throws: FramingError(.truncated, "")) { try limited.finish(from: &lb2) }
        var ber = PackstringDecoder(format: try PackFormat("w"), maxLength: .max)
        var berBuffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: FramingError(.tooLarge, "")) { try ber.next(from: &berBuffer) }
        var huge = ByteBuffer(bytes: [0x81, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: FramingError(.tooLarge, "")) { try ber.next(from: &huge) }
        #expect(FramingError(.truncated, offset: 2, "m").description == "framing truncated at offset 2: m")
    }

    @Test("every split point of several frames, and the NIO processor")
    func splits() throws {
        for format in ["w", "N", "v", "Q<", "C"] {
            let pack = try PackFormat(format)
            var stream = ByteBuffer()
            let payloads = [0, 1, 200, 5].map { Self.payload($0) }
            for p in payloads { try stream.writePackstring(p, format: pack) }
            let bytes = Array(stream.readableBytesView)
            for split in 0...bytes.count {
                var decoder = PackstringDecoder(format: pack)
                var buffer = ByteBuffer(bytes: bytes[..<split])
                var got: [ByteBuffer] = []
                while let p = try decoder.next(from: &buffer) { got.append(p) }
                buffer.writeBytes(bytes[split...])
                while let p = try decoder.next(from: &buffer) { got.append(p) }
                #expect(got == payloads, "\(format) split \(split)")
            }
            let processor = NIOSingleStepByteToMessageProcessor(PackstringDecoder(format: pack))
            var got: [ByteBuffer] = []
            for byte in bytes { try processor.process(buffer: ByteBuffer(bytes: [byte])) { got.append($0) } }
            try processor.finishProcessing(seenEOF: true) { got.append($0) }
            #expect(got == payloads)
        }
    }
}
