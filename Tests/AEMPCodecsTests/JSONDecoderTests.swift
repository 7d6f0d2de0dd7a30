import AEMPTestSupport
import NIOCore
import Testing

@testable import AEMPCodecs

extension JSONTestKit {
    /// A random Value that JSON can carry, as our decoder yields it back (text strings, canonical
    /// integers, finite floats, string keys without duplicates).
    static func randomValue(_ rng: inout SeededRandom, depth: Int = 0) -> Value {
        let pick = Int.random(in: 0..<(depth >= 4 ? 7 : 9), using: &rng)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2:
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: return .int(Int64.random(in: -1000...1000, using: &rng))
            case 1: return .int(Int64(bitPattern: rng.next()))
            case 2: return .uint(UInt64.random(in: UInt64(Int64.max) + 1 ... .max, using: &rng))
            default:
                var magnitude = (0..<Int.random(in: 9...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                magnitude[0] = UInt8.random(in: 1...255, using: &rng)
                return .bignum(negative: Bool.random(using: &rng), magnitude: magnitude)
            }
        case 3:
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                var d: Double
                repeat { d = Double(bitPattern: rng.next()) } while !d.isFinite
                return .float(d)
            case 1: return .float(Double(Int.random(in: -100_000...100_000, using: &rng)) / 100)
            case 2: return .float(Double.random(in: -1e6...1e6, using: &rng))
            default: return .float(Double(Int.random(in: -5...5, using: &rng)))
            }
        case 4, 5: return .text(randomString(&rng))
        case 6: return .text(String(repeating: "x", count: Int.random(in: 0...40, using: &rng)))
        case 7:
            return .array((0..<Int.random(in: 0...5, using: &rng)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var keys = Set<String>()
            var pairs: [(key: Value, value: Value)] = []
            for _ in 0..<Int.random(in: 0...5, using: &rng) {
                let key = randomString(&rng)
                if keys.insert(key).inserted { pairs.append((key: .text(key), value: randomValue(&rng, depth: depth + 1))) }
            }
            return .map(pairs)
        }
    }

    static func randomString(_ rng: inout SeededRandom) -> String {
        let pool: [Unicode.Scalar] = [
            "a", "b", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "ÿ", "€",
            "\u{2028}", "😀", "𝄞", "中", "\u{FFFD}", "\u{10FFFF}",
        ]
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...12, using: &rng) { s.append(pool[Int.random(in: 0..<pool.count, using: &rng)]) }
        return String(s)
    }
}

@Suite("JSON stream decoder")
struct JSONDecoderTests {
    private func decode(_ text: String, _ options: JSONStreamDecoder.Options = .init(allowScalars: true)) throws(JSONError) -> [Value] {
        try JSONTestKit.decodeAll(Array(text.utf8), options: options)
    }

    @Test("values", arguments: [
        ("[]", Value.array([])), ("{}", .map([])), (" [ 1 , -2 ] ", .array([.int(1), .int(-2)])),
        ("[true,false,null]", .array([.bool(true), .bool(false), .null])),
        (#"{"a":{"b":[1.5]}}"#, .map([(key: .text("a"), value: .map([(key: .text("b"), value: .array([.float(1.5)]))]))])),
        (#"["\u00e9\ud83d\ude00\/\b\f\n\r\t\"\\"]"#, .array([.text("é😀/\u{08}\u{0C}\n\r\t\"\\")])),
        ("[9223372036854775807,9223372036854775808,18446744073709551615,-0]",
         .array([.int(.max), .uint(9_223_372_036_854_775_808), .uint(.max), .int(0)])),
        ("[1e2,1E-2,-0.0,1.5e+3,0.1,123456789.123456789]",
         .array([.float(100), .float(0.01), .float(-0.0), .float(1500), .float(0.1), .float(123456789.123456789)])),
        ("[1e400,-1e400,1e-400]", .array([.float(.infinity), .float(-.infinity), .float(0)])),
    ] as [(String, Value)])
    func values(text: String, expected: Value) throws {
        let values = try decode(text)
        #expect(values.count == 1)
        #expect(JSONTestKit.identical(values[0], expected), "\(values)")
    }

    @Test("malformed input gives a clear error", arguments: [
        ("[1,]", JSONError.Code.unexpectedCharacter), ("[1 2]", .unexpectedCharacter), (#"{"a":1,}"#, .unexpectedCharacter),
        ("{a:1}", .unexpectedCharacter), (#"{"a" 1}"#, .unexpectedCharacter), ("[}", .unexpectedCharacter),
        ("{]", .unexpectedCharacter), ("[1}", .unexpectedCharacter), ("]", .unexpectedCharacter), ("x", .unexpectedCharacter),
        ("[tru e]", .unexpectedCharacter), ("[nul]", .unexpectedCharacter), ("[truex]", .unexpectedCharacter),
        ("[01]", .invalidNumber), ("[1.]", .invalidNumber), ("[-]", .invalidNumber), ("[1e]", .invalidNumber),
        ("[1e+]", .invalidNumber), ("[-a]", .invalidNumber), ("[.5]", .unexpectedCharacter), ("[+1]", .unexpectedCharacter),
        (#"["\x"]"#, .invalidEscape), (#"["\u12G4"]"#, .invalidEscape),
        (#"["\ud800"]"#, .unpairedSurrogate), (#"["\ud800\n"]"#, .unpairedSurrogate), (#"["\ud800\u0041"]"#, .unpairedSurrogate),
        (#"["\udc00"]"#, .unpairedSurrogate), ("[\"a\tb\"]", .controlCharacter), ("[\"a\nb\"]", .controlCharacter),
        ("[\"abc", .truncated), ("[1,", .truncated), ("{\"a\":", .truncated), ("[tr", .truncated), ("-", .truncated),
    ] as [(String, JSONError.Code)])
    func malformed(text: String, code: JSONError.Code) {
        let error = #expect(throws: JSONError.self) { try decode(text) }
        #expect(error?.code == code, "\(String(describing: error))")
        #expect(error.map { !$0.message.isEmpty } ?? false)
    }

    @Test("invalid UTF-8 in strings is an error, split or not")
    func invalidUTF8() throws {
        for bytes in [[0x22, 0xFF, 0x22], [0x5B, 0x22, 0xC3, 0x22, 0x5D], [0x5B, 0x22, 0x61, 0x5C, 0x6E, 0xE2, 0x82, 0x22, 0x5D]] as [[UInt8]] {
            #expect(throws: JSONError(.invalidUTF8, offset: 0, "")) { try JSONTestKit.decodeAll(bytes) }
            var decoder = JSONStreamDecoder(options: .init(allowScalars: true))
            var buffer = ByteBuffer()
            var failed = false
            for byte in bytes {
                buffer.writeInteger(byte)
                do { _ = try decoder.next(from: &buffer) } catch { failed = error.code == .invalidUTF8; break }
            }
            #expect(failed)
        }
    }

    @Test("error offsets point at the offending byte")
    func offsets() {
        let error = #expect(throws: JSONError.self) { try decode("  [1,2,x]") }
        #expect(error?.offset == 7)
    }

    @Test("top-level scalars need the option")
    func scalarsOption() throws {
        for text in ["1", "\"a\"", "true", "null", "-1", "inf"] {
            #expect(throws: JSONError(.unexpectedCharacter, offset: 0, "")) { try decode(text, .init()) }
        }
        #expect(try decode("1 2 \"a\" true null [3]") == [.int(1), .int(2), .text("a"), .bool(true), .null, .array([.int(3)])])
        #expect(try decode("1", .init(allowScalars: true)) == [.int(1)])
    }

    @Test("non-finite words need the option")
    func nonFiniteOption() throws {
        let strict = JSONStreamDecoder.Options(allowScalars: true, allowNonFiniteNumbers: false)
        for text in ["[inf]", "[-inf]", "[nan]", "[-nan]", "inf"] {
            #expect(throws: JSONError.self) { try decode(text, strict) }
        }
        #expect(try decode("[-inf,inf,nan]") == [.array([.float(-.infinity), .float(.infinity), .float(.nan)])])
        let negativeNaN = try decode("-nan")
        if case .float(let d) = negativeNaN.first { #expect(d.isNaN && d.sign == .minus) } else { Issue.record("\(negativeNaN)") }
        #expect(throws: JSONError(.unexpectedCharacter, offset: 0, "")) { try decode("[-infinity]") }
        #expect(throws: JSONError(.unexpectedCharacter, offset: 0, "")) { try decode("[Infinity]") }
    }

    @Test("depth limit")
    func depthLimit() throws {
        let ok = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(try decode(ok).count == 1)
        let deep = "[" + ok + "]"
        #expect(throws: JSONError(.nestingTooDeep, offset: 0, "")) { try decode(deep) }
        #expect(throws: JSONError(.nestingTooDeep, offset: 0, "")) { try decode(#"{"a":[{}]}"#, .init(maxDepth: 2)) }
        #expect(try decode(#"{"a":[1]}"#, .init(maxDepth: 2)).count == 1)
    }

    @Test("size limits, complete or partial")
    func sizeLimits() throws {
        let options = JSONStreamDecoder.Options(maxTextSize: 10)
        #expect(try decode("   [1,2,3,4]", options).count == 1)
        #expect(throws: JSONError(.textTooLarge, offset: 0, "")) { try decode("[1,2,3,4,5]", options) }
        var decoder = JSONStreamDecoder(options: options)
        var buffer = ByteBuffer(string: "[\"abcdefghijkl")
        #expect(throws: JSONError(.textTooLarge, offset: 0, "")) { try decoder.next(from: &buffer) }
        #expect(throws: JSONError(.textTooLarge, offset: 0, "")) {
            try decode("[" + String(repeating: "1", count: 30) + "]", .init(maxNumberLength: 20))
        }
        #expect(try decode("[" + String(repeating: "1", count: 20) + "]", .init(maxNumberLength: 20)).count == 1)
    }

    @Test("a partial text leaves the reader index unmoved; whitespace between texts is consumed")
    func readerIndex() throws {
        var decoder = JSONStreamDecoder()
        var buffer = ByteBuffer(string: " \n\t\r[1,")
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 3)
        buffer.writeString("2]  ")
        #expect(try decoder.next(from: &buffer) == .array([.int(1), .int(2)]))
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 0)
        #expect(try decoder.finish(from: &buffer) == nil)
    }

    @Test("a top-level number completes at a delimiter or at the end of the stream")
    func topLevelNumbers() throws {
        var decoder = JSONStreamDecoder(options: .init(allowScalars: true))
        var buffer = ByteBuffer(string: "12")
        #expect(try decoder.next(from: &buffer) == nil)
        buffer.writeString("3.5")
        #expect(try decoder.next(from: &buffer) == nil)
        #expect(try decoder.finish(from: &buffer) == .float(123.5))
        buffer.writeString("7[")
        #expect(try decoder.next(from: &buffer) == .int(7))
        #expect(throws: JSONError(.truncated, offset: 0, "")) { try decoder.finish(from: &buffer) }
        var d2 = JSONStreamDecoder(options: .init(allowScalars: true))
        var b2 = ByteBuffer(string: "1.")
        #expect(throws: JSONError(.truncated, offset: 0, "")) { try d2.finish(from: &b2) }
    }

    @Test("every split point of multi-text input gives the same values")
    func splits() throws {
        var rng = SeededRandom(seed: 42)
        for round in 0..<6 {
            let values = (0..<3).map { _ in Value.array([JSONTestKit.randomValue(&rng, depth: 1), JSONTestKit.randomValue(&rng, depth: 1)]) }
            var stream: [UInt8] = []
            for (i, v) in values.enumerated() {
                stream += try JSONTestKit.encode(v)
                if i % 2 == round % 2 { stream += Array(" \n".utf8) }
            }
            for split in 0...stream.count {
                var decoder = JSONStreamDecoder()
                var buffer = ByteBuffer(bytes: stream[..<split])
                var got: [Value] = []
                while let v = try decoder.next(from: &buffer) { got.append(v) }
                buffer.writeBytes(stream[split...])
                while let v = try decoder.next(from: &buffer) { got.append(v) }
                #expect(try decoder.finish(from: &buffer) == nil)
                #expect(got.count == values.count && zip(got, values).allSatisfy { JSONTestKit.identical($0, $1) },
                        "split \(split) of \(String(decoding: stream, as: UTF8.self))")
            }
            // One byte at a time.
            var decoder = JSONStreamDecoder()
            var buffer = ByteBuffer()
            var got: [Value] = []
            for byte in stream {
                buffer.writeInteger(byte)
                while let v = try decoder.next(from: &buffer) { got.append(v) }
            }
            #expect(got.count == values.count && zip(got, values).allSatisfy { JSONTestKit.identical($0, $1) })
        }
    }

    @Test("random values round-trip through the writer and the decoder")
    func roundTrip() throws {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<500 {
            let value = JSONTestKit.randomValue(&rng)
            let bytes = try JSONTestKit.encode(value)
            #expect(!bytes.contains(0x0A))
            let back = try JSONTestKit.decodeAll(bytes)
            #expect(back.count == 1 && JSONTestKit.identical(back[0], value), "\(String(decoding: bytes, as: UTF8.self))")
        }
    }

    @Test("mutated inputs: chunking never changes the outcome (the fuzz property, seeded)")
    func mutatedInputs() throws {
        func run(_ input: [UInt8], chunk: Int) -> (values: [Value], failed: JSONError.Code?) {
            var decoder = JSONStreamDecoder(options: .init(allowScalars: true, maxDepth: 16, maxTextSize: 1 << 16))
            var buffer = ByteBuffer()
            var values: [Value] = []
            var offset = 0
            do {
                while offset < input.count {
                    let end = min(input.count, offset + chunk)
                    buffer.writeBytes(input[offset..<end])
                    offset = end
                    while let v = try decoder.next(from: &buffer) { values.append(v) }
                }
                while let v = try decoder.finish(from: &buffer) { values.append(v) }
            } catch {
                return (values, error.code)
            }
            return (values, nil)
        }
        var rng = SeededRandom(seed: 99)
        let alphabet = Array(#"[]{}",:0123456789-+.eE ntrufalsi\u"\"#.utf8) + [0x00, 0x09, 0xFF, 0xC3, 0xA9, 0x0A]
        for _ in 0..<300 {
            var input = try JSONTestKit.encode(.array([JSONTestKit.randomValue(&rng), JSONTestKit.randomValue(&rng)]))
            input += try JSONTestKit.encode(JSONTestKit.randomValue(&rng, depth: 3))
            for _ in 0..<Int.random(in: 0...3, using: &rng) where !input.isEmpty {
                let at = Int.random(in: 0..<input.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: input[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
                case 1: input.remove(at: at)
                default: input.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)], at: at)
                }
            }
            let whole = run(input, chunk: input.count)
            for chunk in [1, 2, 5] {
                let chunked = run(input, chunk: chunk)
                #expect(chunked.failed == whole.failed && chunked.values.count == whole.values.count
                        && zip(chunked.values, whole.values).allSatisfy { JSONTestKit.identical($0, $1) },
                        "\(String(decoding: input, as: UTF8.self)) chunk \(chunk)")
            }
        }
    }

    @Test("a large text fed in small pieces is decoded (state kept between calls)")
    func largeTextInPieces() throws {
        let big = Value.array((0..<4000).map { i in i % 2 == 0 ? .text("item \(i) é€") : .float(Double(i) + 0.25) })
        let bytes = try JSONTestKit.encode(big)
        var decoder = JSONStreamDecoder()
        var buffer = ByteBuffer()
        var result: Value?
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + 7)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            if let v = try decoder.next(from: &buffer) { result = v }
        }
        #expect(result == big)
    }

    @Test("works as a NIOSingleStepByteToMessageDecoder")
    func nioProcessor() throws {
        let processor = NIOSingleStepByteToMessageProcessor(JSONStreamDecoder(options: .init(allowScalars: true)))
        var got: [Value] = []
        try processor.process(buffer: ByteBuffer(string: "[1][\"a")) { got.append($0) }
        try processor.process(buffer: ByteBuffer(string: "\"] 4")) { got.append($0) }
        #expect(got == [.array([.int(1)]), .array([.text("a")])])
        try processor.finishProcessing(seenEOF: true) { got.append($0) }
        #expect(got.last == .int(4))

        let truncated = NIOSingleStepByteToMessageProcessor(JSONStreamDecoder())
        try truncated.process(buffer: ByteBuffer(string: "[1")) { _ in }
        #expect(throws: JSONError(.truncated, offset: 0, "")) { try truncated.finishProcessing(seenEOF: true) { _ in } }
        let notEOF = NIOSingleStepByteToMessageProcessor(JSONStreamDecoder())
        try notEOF.process(buffer: ByteBuffer(string: "[1")) { _ in }
        try notEOF.finishProcessing(seenEOF: false) { _ in Issue.record("no value expected") }
    }

    @Test("a decoder given a shorter buffer than it scanned starts over")
    func bufferReplaced() throws {
        var decoder = JSONStreamDecoder()
        var buffer = ByteBuffer(string: "[1,2,3")
        #expect(try decoder.next(from: &buffer) == nil)
        var other = ByteBuffer(string: "[9]")
        #expect(try decoder.next(from: &other) == .array([.int(9)]))
    }

    @Test("JSONError equality is on the code; description names it")
    func errorEquality() {
        let a = JSONError(.truncated, offset: 1, "x")
        #expect(a == JSONError(.truncated, offset: 9, "y"))
        #expect(a != JSONError(.invalidUTF8, offset: 1, "x"))
        #expect(a.description == "JSON truncated at offset 1: x")
    }
}
