import AEMPCodecs
import NIOCore
import Testing

@Suite("CBOR stream decoder")
struct CBORStreamDecoderTests {
    /// Three AEMP-like messages, one with indefinite-length items, back to back.
    static let messages: [Value] = [
        [Value(byteString: "portname"), Value(byteString: "tag"), 1, 2.5, [Value(byteString: "a"): "b"]],
        ["kil", "node#port", .tagged(22098, nil), .bignum(negative: true, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0])],
        [Value(bytes: [UInt8](repeating: 7, count: 300)), "€", -1, .undefined, .simple(99)],
    ]

    static let indefiniteStream: [UInt8] = Hex.bytes(
        "9f018202039f0405ffff" + "7f657374726561646d696e67ff" + "bf6346756ef563416d7421ff")

    static var stream: ByteBuffer {
        var buffer = ByteBuffer()
        for message in messages { buffer.writeCBOR(message) }
        return buffer
    }

    /// Drains every complete item from `buffer`.
    static func drain(_ decoder: inout CBORStreamDecoder, _ buffer: inout ByteBuffer) throws -> [Value] {
        var values: [Value] = []
        for _ in 0..<10_000 {
            guard let value = try decoder.next(from: &buffer) else { break }
            values.append(value)
        }
        return values
    }

    @Test func wholeStreamAtOnce() throws {
        var decoder = CBORStreamDecoder()
        var buffer = Self.stream
        #expect(try Self.drain(&decoder, &buffer) == Self.messages)
        #expect(buffer.readableBytes == 0)
        #expect(try decoder.next(from: &buffer) == nil)
    }

    @Test func everyTwoWaySplit() throws {
        let bytes = Array(Self.stream.readableBytesView)
        for split in 0...bytes.count {
            var decoder = CBORStreamDecoder()
            var buffer = ByteBuffer(bytes: bytes[..<split])
            var values = try Self.drain(&decoder, &buffer)
            let leftBefore = buffer.readableBytes
            buffer.writeBytes(bytes[split...])
            values += try Self.drain(&decoder, &buffer)
            #expect(values == Self.messages, "split at \(split)")
            #expect(buffer.readableBytes == 0)
            #expect(leftBefore <= split)
        }
    }

    @Test(arguments: [1, 2, 3, 7, 64])
    func chunked(size: Int) throws {
        for (bytes, expected) in [
            (Array(Self.stream.readableBytesView), Self.messages),
            (Self.indefiniteStream, [[1, [2, 3], [4, 5]], "streaming", ["Fun": true, "Amt": -2]] as [Value]),
        ] {
            var decoder = CBORStreamDecoder()
            var buffer = ByteBuffer()
            var values: [Value] = []
            var offset = 0
            while offset < bytes.count {
                let end = min(offset + size, bytes.count)
                buffer.writeBytes(bytes[offset..<end])
                offset = end
                let readerIndexBefore = buffer.readerIndex
                let got = try Self.drain(&decoder, &buffer)
                if got.isEmpty { #expect(buffer.readerIndex == readerIndexBefore, "nil leaves the buffer untouched") }
                values += got
                // Like ByteToMessageHandler, compact sometimes: offsets are relative to the reader index.
                if offset % 3 == 0 { buffer.discardReadBytes() }
            }
            #expect(values == expected)
        }
    }

    @Test func everySplitOfEveryPairOfRandomValues() throws {
        var random = RandomValues(seed: 7)
        for _ in 0..<40 {
            let first = random.value()
            let second = random.value()
            var encoded = ByteBuffer()
            encoded.writeCBOR(first)
            encoded.writeCBOR(second)
            let bytes = Array(encoded.readableBytesView)
            for split in stride(from: 0, through: bytes.count, by: max(1, bytes.count / 40)) {
                var decoder = CBORStreamDecoder()
                var buffer = ByteBuffer(bytes: bytes[..<split])
                var values = try Self.drain(&decoder, &buffer)
                buffer.writeBytes(bytes[split...])
                values += try Self.drain(&decoder, &buffer)
                #expect(values == [first, second], "split at \(split) of \(bytes.count)")
            }
        }
    }

    @Test func largeStringArrivingInPieces() throws {
        let payload = [UInt8](repeating: 0xab, count: 1 << 20)
        let message: Value = ["bulk", .bytes(ByteBuffer(bytes: payload))]
        let bytes = Array(CBOREncoder().encode(message).readableBytesView)
        var decoder = CBORStreamDecoder()
        var buffer = ByteBuffer()
        var results: [Value] = []
        for start in stride(from: 0, to: bytes.count, by: 4096) {
            buffer.writeBytes(bytes[start..<min(start + 4096, bytes.count)])
            results += try Self.drain(&decoder, &buffer)
        }
        #expect(results == [message])
    }

    @Test func nioProcessorDeliversTheSameValues() throws {
        let processor = NIOSingleStepByteToMessageProcessor(CBORStreamDecoder())
        var values: [Value] = []
        let bytes = Array(Self.stream.readableBytesView)
        for start in stride(from: 0, to: bytes.count, by: 5) {
            try processor.process(buffer: ByteBuffer(bytes: bytes[start..<min(start + 5, bytes.count)])) {
                values.append($0)
            }
        }
        try processor.finishProcessing(seenEOF: true) { values.append($0) }
        #expect(values == Self.messages)
    }

    // MARK: errors and limits

    @Test func errorLeavesTheBadItemInTheBuffer() throws {
        var decoder = CBORStreamDecoder()
        var buffer = Hex.buffer("8101" + "ff" + "01")
        #expect(try decoder.next(from: &buffer) == [1])
        let before = buffer.readerIndex
        #expect(throws: CBORError(.unexpectedBreak)) { try decoder.next(from: &buffer) }
        #expect(buffer.readerIndex == before)
        // Asking again gives the same error, never a value from the broken stream.
        #expect(throws: CBORError(.unexpectedBreak)) { try decoder.next(from: &buffer) }
    }

    static let malformed: [(hex: String, code: CBORError.Code, offset: Int)] = [
        ("1c", .reservedAdditionalInfo, 0),
        ("9f1f", .reservedAdditionalInfo, 1),
        ("df", .reservedAdditionalInfo, 0),
        ("ff", .unexpectedBreak, 0),
        ("8201ff", .unexpectedBreak, 2),
        ("bf01ff", .unexpectedBreak, 2),
        ("5f6161ff", .invalidIndefiniteString, 1),
        ("7f4161ff", .invalidIndefiniteString, 1),
        ("5f5f4101ffff", .invalidIndefiniteString, 1),
        ("5f01ff", .invalidIndefiniteString, 1),
        ("f818", .invalidSimpleValue, 0),
        ("8162c328", .invalidUTF8, 2),
        ("7f62c328ff", .invalidUTF8, 2),
        ("7f61e261826161ff", .invalidUTF8, 2),  // a code point split across chunks
    ]

    @Test func malformedInputIsATypedErrorWithOffset() throws {
        for entry in Self.malformed {
            var decoder = CBORStreamDecoder()
            var buffer = Hex.buffer(entry.hex)
            do {
                let value = try decoder.next(from: &buffer)
                Issue.record("\(entry.hex): expected \(entry.code), got \(String(describing: value))")
            } catch {
                #expect(error.code == entry.code, "\(entry.hex)")
                #expect(error.offset == entry.offset, "\(entry.hex): \(error)")
                #expect(buffer.readerIndex == 0)
            }
            // The one-shot decoder agrees.
            #expect(throws: CBORError(entry.code), "\(entry.hex)") { try CBORDecoder().decode(Hex.bytes(entry.hex)) }
        }
    }

    @Test func nestingLimit() throws {
        var deep = ByteBuffer(bytes: [UInt8](repeating: 0x81, count: 512) + [0])
        var decoder = CBORStreamDecoder()
        #expect(try decoder.next(from: &deep) != nil)

        var tooDeep = ByteBuffer(bytes: [UInt8](repeating: 0x81, count: 513) + [0])
        #expect(throws: CBORError(.nestingTooDeep)) { try decoder.next(from: &tooDeep) }
        // Noticed as soon as the 513th level arrives, before the item is complete.
        var partial = ByteBuffer(bytes: [UInt8](repeating: 0x9f, count: 513))
        #expect(throws: CBORError(.nestingTooDeep)) { try decoder.next(from: &partial) }
        // Tags count as nesting too.
        var tags = ByteBuffer(bytes: [UInt8](repeating: 0xc6, count: 600) + [0])
        #expect(throws: CBORError(.nestingTooDeep)) { try decoder.next(from: &tags) }
        #expect(throws: CBORError(.nestingTooDeep)) { try CBORDecoder().decode(tags) }
        // A custom limit.
        var small = CBORStreamDecoder(maxDepth: 2)
        var three = Hex.buffer("81818100")
        #expect(throws: CBORError(.nestingTooDeep)) { try small.next(from: &three) }
        #expect(throws: CBORError(.nestingTooDeep)) { try CBORDecoder(maxDepth: 2).decode(Hex.bytes("81818100")) }
        #expect(try CBORDecoder(maxDepth: 2).decode(Hex.bytes("818100")) == [[0]])
    }

    @Test func hugeDeclaredLengthsFailEarlyWithoutAllocating() throws {
        for hex in [
            "5bffffffffffffffff", "7bffffffffffffffff", "9bffffffffffffffff", "bbffffffffffffffff", "5a04000001",
        ] {
            var decoder = CBORStreamDecoder()
            var buffer = Hex.buffer(hex)
            #expect(throws: CBORError(.itemTooLarge), "\(hex)") { try decoder.next(from: &buffer) }
            #expect(throws: CBORError(.truncated), "\(hex)") { try CBORDecoder().decode(Hex.bytes(hex)) }
        }
        // Below the limit, a declared length only means "wait for more".
        var decoder = CBORStreamDecoder()
        var buffer = Hex.buffer("5a00ffffff00")
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 6)
    }

    @Test func itemSizeLimit() throws {
        var decoder = CBORStreamDecoder(maxItemSize: 16)
        var fits = CBOREncoder().encode(Value(bytes: [UInt8](repeating: 1, count: 15)))  // 16 bytes
        #expect(try decoder.next(from: &fits) != nil)
        var tooBig = CBOREncoder().encode(Value(bytes: [UInt8](repeating: 1, count: 16)))
        #expect(throws: CBORError(.itemTooLarge)) { try decoder.next(from: &tooBig) }
        // An array whose elements add up past the limit, noticed while it is still arriving.
        var growing = ByteBuffer(bytes: [0x9f] + [UInt8](repeating: 0x01, count: 20))
        #expect(throws: CBORError(.itemTooLarge)) { try decoder.next(from: &growing) }
        var declaredCount = Hex.buffer("9a00010000")
        #expect(throws: CBORError(.itemTooLarge)) { try decoder.next(from: &declaredCount) }
    }

    @Test func extremeLimitsDoNotOverflow() throws {
        var unlimited = CBORStreamDecoder(maxItemSize: .max)
        var huge = Hex.buffer("5bffffffffffffffff")
        #expect(throws: CBORError(.itemTooLarge)) { try unlimited.next(from: &huge) }
        var almost = Hex.buffer("5b7ffffffffffffff0")
        #expect(try unlimited.next(from: &almost) == nil, "waits; nothing is allocated for the declared length")
        var negative = CBORStreamDecoder(maxItemSize: -5)
        var one = Hex.buffer("01")
        #expect(throws: CBORError(.itemTooLarge)) { try negative.next(from: &one) }
        var noDepth = CBORStreamDecoder(maxDepth: 0)
        var array = Hex.buffer("80")
        #expect(throws: CBORError(.nestingTooDeep)) { try noDepth.next(from: &array) }
        var scalar = Hex.buffer("01")
        #expect(try noDepth.next(from: &scalar) == 1)
    }

    @Test func decodersAreSendable() {
        func requireSendable(_: some Sendable) {}
        requireSendable(CBORStreamDecoder())
        requireSendable(CBORDecoder())
        requireSendable(CBOREncoder())
        requireSendable(CBORError(.truncated))
    }

    @Test func decodeLastAndEmptyBuffers() throws {
        var decoder = CBORStreamDecoder()
        var empty = ByteBuffer()
        #expect(try decoder.next(from: &empty) == nil)
        var partial = Hex.buffer("8301")
        #expect(try decoder.decodeLast(buffer: &partial, seenEOF: true) == nil)
        #expect(partial.readableBytes == 2)
        var whole = Hex.buffer("01")
        #expect(try decoder.decode(buffer: &whole) == 1)
    }

    @Test func decoderSurvivesABufferThatShrank() throws {
        // Misuse: progress saved for one buffer, then a shorter one is passed. No crash, a fresh scan.
        var decoder = CBORStreamDecoder()
        var long = Hex.buffer("8301020304")
        _ = try decoder.next(from: &long)  // [1, 2, 3] then "04" left
        var partial = Hex.buffer("83010203")
        partial.moveWriterIndex(to: 3)
        #expect(try decoder.next(from: &partial) == nil)
        var other = Hex.buffer("01")
        #expect(try decoder.next(from: &other) == 1)
    }
}
