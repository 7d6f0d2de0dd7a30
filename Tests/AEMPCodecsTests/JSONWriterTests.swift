import NIOCore
import Testing

@testable import AEMPCodecs

@Suite("JSON writer")
struct JSONWriterTests {
    private func json(_ value: Value, _ options: JSONWriterOptions = .init()) throws -> String {
        String(decoding: try JSONTestKit.encode(value, options: options), as: UTF8.self)
    }

    @Test("scalars", arguments: [
        (Value.null, "null"), (.undefined, "null"), (.bool(true), "true"), (.bool(false), "false"),
        (.int(0), "0"), (.int(-1), "-1"), (.int(.max), "9223372036854775807"), (.int(.min), "-9223372036854775808"),
        (.uint(.max), "18446744073709551615"), (.uint(9_223_372_036_854_775_808), "9223372036854775808"),
        (.float(1.0), "1.0"), (.float(-0.0), "-0.0"), (.float(0.1), "0.1"), (.float(1e16), "1e+16"),
        (.float(1e-7), "1e-07"), (.float(.leastNonzeroMagnitude), "5e-324"), (.float(1.7976931348623157e308), "1.7976931348623157e+308"),
        (.text(""), "\"\""), (.text("a/b"), "\"a/b\""), (.text("é€😀"), "\"é€😀\""),
        (.text("\"\\\u{08}\u{0C}\n\r\t\u{01}\u{1F}\u{7F}"), "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\u{7F}\""),
        (.text("a\u{0}b"), "\"a\\u0000b\""),
    ] as [(Value, String)])
    func scalars(value: Value, expected: String) throws {
        #expect(try json(value) == expected)
    }

    @Test("bignums are written as exact digits")
    func bignums() throws {
        #expect(try json(.bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0])) == "18446744073709551616")
        #expect(try json(.bignum(negative: true, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0])) == "-18446744073709551617")
        #expect(try json(.bignum(negative: true, magnitude: [0x80, 0, 0, 0, 0, 0, 0, 0])) == "-9223372036854775809")
        #expect(try json(.bignum(negative: false, magnitude: [])) == "0")
        #expect(try json(.bignum(negative: true, magnitude: [])) == "-1")
        // 10^30
        let magnitude: [UInt8] = [0x0c, 0x9f, 0x2c, 0x9c, 0xd0, 0x46, 0x74, 0xed, 0xea, 0x40, 0x00, 0x00, 0x00]
        #expect(try json(.bignum(negative: false, magnitude: magnitude)) == "1000000000000000000000000000000")
        #expect(try JSONTestKit.decodeAll(Array("1000000000000000000000000000000".utf8)) == [.bignum(negative: false, magnitude: magnitude)])
    }

    @Test("byte strings are Latin-1 by default, like JSON::XS")
    func byteStrings() throws {
        let bytes = Value.bytes(ByteBuffer(bytes: [0x63, 0x61, 0x66, 0xE9, 0xFF, 0x00, 0x22]))
        #expect(try JSONTestKit.encode(bytes) == Array("\"caf\u{E9}\u{FF}\\u0000\\\"\"".utf8))
        let utf8 = Value.bytes(ByteBuffer(bytes: [0xE2, 0x82, 0xAC]))
        #expect(try JSONTestKit.encode(utf8) == [0x22, 0xC3, 0xA2, 0xC2, 0x82, 0xC2, 0xAC, 0x22])
        let options = JSONWriterOptions(byteStrings: .utf8OrLatin1)
        #expect(try JSONTestKit.encode(utf8, options: options) == [0x22, 0xE2, 0x82, 0xAC, 0x22])
        #expect(try JSONTestKit.encode(bytes, options: options) == Array("\"caf\u{E9}\u{FF}\\u0000\\\"\"".utf8))
        #expect(try json(.map([(key: .bytes(ByteBuffer(bytes: [0xE9])), value: .int(1))])) == "{\"\u{E9}\":1}")
    }

    @Test("containers, without whitespace or newlines")
    func containers() throws {
        let value = Value.array([
            .text("port"), .text("tag"), .int(1), .float(2.5),
            .map([(key: .text("a"), value: .text("b"))]), .array([.int(1), .text("two"), .null]), .array([]), .map([]),
        ])
        #expect(try json(value) == #"["port","tag",1,2.5,{"a":"b"},[1,"two",null],[],{}]"#)
    }

    @Test("values JSON cannot carry are errors and leave the buffer unchanged", arguments: [
        (Value.float(.nan), JSONError.Code.nonFiniteNumber), (.float(.infinity), .nonFiniteNumber),
        (.float(-.infinity), .nonFiniteNumber), (.tagged(1, .int(0)), .unsupportedValue), (.simple(16), .unsupportedValue),
        (.array([.int(1), .float(.nan)]), .nonFiniteNumber),
        (.map([(key: .int(1), value: .null)]), .invalidKey), (.map([(key: .null, value: .null)]), .invalidKey),
        (.map([(key: .text("k"), value: .tagged(0, .text("x")))]), .unsupportedValue),
    ] as [(Value, JSONError.Code)])
    func unsupported(value: Value, code: JSONError.Code) throws {
        var buffer = ByteBuffer(string: "prefix")
        let error = try #require(throws: JSONError.self) { try buffer.writeJSON(value) }
        #expect(error.code == code)
        #expect(!error.message.isEmpty && error.description.contains(code.rawValue))
        #expect(buffer == ByteBuffer(string: "prefix"))
    }

    @Test("nesting limit")
    func depth() throws {
        var value = Value.array([])
        for _ in 0..<511 { value = .array([value]) }
        #expect(try JSONTestKit.encode(value).count == 1024)
        let deeper = Value.array([value])
        #expect(throws: JSONError(.nestingTooDeep, offset: 0, "")) { try JSONTestKit.encode(deeper) }
        #expect(throws: JSONError(.nestingTooDeep, offset: 0, "")) {
            try JSONTestKit.encode(.map([(key: .text("a"), value: .array([]))]), options: .init(maxDepth: 1))
        }
        #expect(try JSONTestKit.encode(.map([(key: .text("a"), value: .int(1))]), options: .init(maxDepth: 1)).count == 7)
    }

    @Test("writeJSON returns the number of bytes written")
    func count() throws {
        var buffer = ByteBuffer(string: "xy")
        let written = try buffer.writeJSON(.array([.int(1)]))
        #expect(written == 3 && buffer.readableBytes == 5)
    }
}
