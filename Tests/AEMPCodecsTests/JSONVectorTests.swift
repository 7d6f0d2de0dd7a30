import AEMPTestSupport
import Foundation
import NIOCore
import Testing

@testable import AEMPCodecs

/// Helpers shared by the JSON, netstring and packstring tests (namespaced to avoid clashes).
enum JSONTestKit {
    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8? = nil
        for c in hex.utf8 {
            let nibble: UInt8 = switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: c - UInt8(ascii: "A") + 10
            }
            if let h = high { result.append(h << 4 | nibble); high = nil } else { high = nibble }
        }
        return result
    }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

    /// A Perl byte string's characters (Latin-1) as a Swift string.
    static func latin1(_ bytes: [UInt8]) -> String {
        String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) }))
    }

    /// Converts the vectors' typed form to the Value our decoder yields (strings are always text).
    /// Returns nil for forms we cannot represent (`text_invalid_utf8_hex`, errors).
    static func value(typed: Any) -> Value? {
        if typed is NSNull { return .null }
        if let array = typed as? [Any] {
            var out: [Value] = []
            for element in array {
                guard let v = value(typed: element) else { return nil }
                out.append(v)
            }
            return .array(out)
        }
        guard let dict = typed as? [String: Any] else { return nil }
        if let i = dict["int"] as? String {
            if let v = Int64(i) { return .int(v) }
            if let v = UInt64(i) { return .uint(v) }
            return nil
        }
        if let f = dict["f64"] as? String { return .float(Double(bitPattern: UInt64(f, radix: 16)!)) }
        if let t = dict["text"] as? String { return .text(t) }
        if let b = dict["bytes"] as? String { return .text(latin1(bytes(hex: b))) }
        if let b = dict["bool"] as? Bool { return .bool(b) }
        if let pairs = dict["map"] as? [[Any]] {
            var out: [(key: Value, value: Value)] = []
            for pair in pairs {
                guard let k = value(typed: pair[0]), let v = value(typed: pair[1]) else { return nil }
                out.append((key: k, value: v))
            }
            return .map(out)
        }
        return nil
    }

    /// Structural equality that also distinguishes `-0.0` from `0.0` (NaNs equal each other).
    static func identical(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.float(let x), .float(let y)):
            return (x.isNaN && y.isNaN) || x.bitPattern == y.bitPattern
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { identical($0, $1) }
        case (.map(let x), .map(let y)):
            guard x.count == y.count else { return false }
            var unmatched = y
            for pair in x {
                guard let index = unmatched.firstIndex(where: { identical($0.key, pair.key) && identical($0.value, pair.value) })
                else { return false }
                unmatched.remove(at: index)
            }
            return true
        default:
            return a == b
        }
    }

    /// Decodes every text of a complete input (stream ended).
    static func decodeAll(_ bytes: [UInt8], options: JSONStreamDecoder.Options = .init(allowScalars: true)) throws(JSONError) -> [Value] {
        var decoder = JSONStreamDecoder(options: options)
        var buffer = ByteBuffer(bytes: bytes)
        var values: [Value] = []
        while let v = try decoder.finish(from: &buffer) {
            values.append(v)
            if values.count > 10_000 { break }
        }
        return values
    }

    static func encode(_ value: Value, options: JSONWriterOptions = .init()) throws(JSONError) -> [UInt8] {
        var buffer = ByteBuffer()
        try buffer.writeJSON(value, options: options)
        return Array(buffer.readableBytesView)
    }

    static func cases(_ file: String, kind: String) throws -> [[String: Any]] {
        try Fixtures.cases("vectors/\(file)", kind: kind)
    }

    static func inputBytes(_ c: [String: Any], text: String, hex: String) -> [UInt8]? {
        if let h = c[hex] as? String { return bytes(hex: h) }
        if let t = c[text] as? String { return Array(t.utf8) }
        return nil
    }
}

@Suite("JSON vectors from Perl (json-perl.json)")
struct JSONVectorTests {
    /// Encode cases whose decoded value differs from Perl's `decoded_back`, with the reason.
    static let encodeDeviations: [String: String] = [
        "int -9223372036854775808": "JSON::XS decodes IV_MIN to a string; we keep the integer",
        "0.1+0.2": "JSON::XS's strtod reads its own 0.3 as 0.30000000000000004; ours is correctly rounded",
        "5e-324": "JSON::XS's strtod flushes 4.94065645841247e-324 to 0; ours is correctly rounded",
        "1/3": "JSON::XS's strtod is not correctly rounded (…550 vs …54f)",
    ]

    @Test("every JSON text Perl emits decodes to the value Perl meant")
    func encodeCases() throws {
        var deviations: [String] = []
        var checked = 0
        for c in try JSONTestKit.cases("json-perl.json", kind: "encode") {
            let id = c["id"] as! String
            guard let input = JSONTestKit.inputBytes(c, text: "json", hex: "json_hex") else {
                #expect(c["error"] != nil, "\(id): no json and no error")
                continue
            }
            let values = try JSONTestKit.decodeAll(input)
            try #require(values.count == 1, "\(id): \(values)")
            let ours = values[0]
            checked += 1
            let back = c["decoded_back"]!
            if let dict = back as? [String: Any], dict["error"] != nil {
                // inf / -inf / nan / -nan: JSON::XS cannot read its own output; we yield the float.
                let json = c["json"] as! String
                let expected: Double = json.hasSuffix("inf") ? (json.hasPrefix("-") ? -.infinity : .infinity) : .nan
                #expect(JSONTestKit.identical(ours, .float(expected)) || (expected.isNaN && ours == .float(.nan)), "\(id)")
                continue
            }
            let perl = try #require(JSONTestKit.value(typed: back), "\(id)")
            if !JSONTestKit.identical(ours, perl) {
                deviations.append(id)
                if case .float(let d) = ours {
                    // Ours must be the correctly rounded value of the text.
                    #expect(d.bitPattern == Double(String(decoding: input, as: UTF8.self))!.bitPattern, "\(id)")
                }
            }
        }
        #expect(checked > 100)
        #expect(Set(deviations) == Set(Self.encodeDeviations.keys), "deviations: \(deviations.sorted())")
    }

    /// Decode cases where we deliberately differ from JSON::XS, keyed by input (hex when not ASCII).
    static let decodeDeviations: [String: String] = [
        "18446744073709551616": "integers beyond UInt64 become .bignum (Perl: string)",
        "-9223372036854775808": "IV_MIN stays an integer (Perl: string)",
        "-9223372036854775809": "integers below Int64.min become .bignum (Perl: string)",
        "123456789012345678901234567890": "big integers become .bignum (Perl: string)",
        "0.333333333333333": "correctly rounded (Perl's strtod is not)",
        "4.94065645841247e-324": "correctly rounded (Perl flushes to 0)",
        "5e-324": "correctly rounded (Perl flushes to 0)",
        "2.2250738585072014e-308": "correctly rounded (Perl's strtod is off)",
        "inf": "JSON::XS's own output for infinity is accepted",
        "-nan": "JSON::XS's own output for NaN is accepted",
        "22eda08022": "UTF-8-encoded surrogate: a Swift String cannot hold it (Perl accepts)",
        "[1][2]": "a stream decoder reads back-to-back texts (Perl's single-text decode rejects them)",
        "{\"a\":1,\"a\":2}": "duplicate keys are kept as sent, in wire order (a Perl hash keeps the last)",
    ]

    @Test("decode cases agree with JSON::XS except the documented deviations")
    func decodeCases() throws {
        var deviations: [String] = []
        for c in try JSONTestKit.cases("json-perl.json", kind: "decode") {
            let input = try #require(JSONTestKit.inputBytes(c, text: "input", hex: "input_hex"))
            let key = c["input_hex"] as? String ?? (c["input"] as! String)
            var ours: Result<[Value], JSONError>
            do { ours = .success(try JSONTestKit.decodeAll(input)) } catch { ours = .failure(error) }
            var agrees: Bool
            if c["error"] != nil {
                if case .failure = ours { agrees = true } else { agrees = false }
                // The empty input is "no text" for a stream decoder, which Perl calls an error.
                if input.isEmpty, case .success(let v) = ours, v.isEmpty { agrees = true }
            } else {
                var perl = JSONTestKit.value(typed: c["perl"]!)
                if c["perl"] as? String == "(nested arrays)" {
                    var nested = Value.array([])
                    for _ in 1..<input.filter({ $0 == UInt8(ascii: "[") }).count { nested = .array([nested]) }
                    perl = nested
                }
                if case .success(let values) = ours, values.count == 1, let perl, JSONTestKit.identical(values[0], perl) {
                    agrees = true
                } else {
                    agrees = false
                }
            }
            if !agrees { deviations.append(key) }
        }
        #expect(Set(deviations) == Set(Self.decodeDeviations.keys), "deviations: \(deviations.sorted())")
    }

    @Test("decode deviations yield what we document")
    func decodeDeviationValues() throws {
        #expect(try JSONTestKit.decodeAll(Array("18446744073709551616".utf8)) == [.bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0])])
        #expect(try JSONTestKit.decodeAll(Array("-9223372036854775808".utf8)) == [.int(.min)])
        #expect(try JSONTestKit.decodeAll(Array("-9223372036854775809".utf8)) == [.bignum(negative: true, magnitude: [0x80, 0, 0, 0, 0, 0, 0, 0])])
        #expect(try JSONTestKit.decodeAll(Array("5e-324".utf8)) == [.float(Double(bitPattern: 1))])
        #expect(try JSONTestKit.decodeAll(Array("[inf,-inf,-nan,nan]".utf8)) == [.array([.float(.infinity), .float(-.infinity), .float(.nan), .float(.nan)])])
        #expect(throws: JSONError(.invalidUTF8, offset: 0, "")) { try JSONTestKit.decodeAll(JSONTestKit.bytes(hex: "22eda08022")) }
        #expect(try JSONTestKit.decodeAll(Array("[1][2]".utf8)) == [.array([.int(1)]), .array([.int(2)])])
        let duplicate = try JSONTestKit.decodeAll(Array(#"{"a":1,"a":2}"#.utf8))
        #expect(duplicate == [.map([(key: .text("a"), value: .int(1)), (key: .text("a"), value: .int(2))])])
    }

    /// Incremental cases where we deliberately differ, by description.
    static let incrDeviations: [String: String] = [
        "top-level number split between digits": "a top-level number at a chunk end waits for more digits (we yield 12, Perl 1 and 2)",
        "text then garbage in the same call": "texts complete before the error are delivered, then the error",
    ]

    @Test("incremental cases: same values per chunk sequence")
    func incrCases() throws {
        var deviations: [String] = []
        for c in try JSONTestKit.cases("json-perl.json", kind: "incr") {
            let description = c["description"] as! String
            let calls = c["calls"] as! [[String: Any]]
            var decoder = JSONStreamDecoder(options: .init(allowScalars: true))
            var buffer = ByteBuffer()
            var agrees = true
            var perlError = false
            var ourError = false
            for call in calls {
                let chunk = try #require(JSONTestKit.inputBytes(call, text: "fed", hex: "fed_hex"))
                buffer.writeBytes(chunk)
                var values: [Value] = []
                do {
                    while let v = try decoder.next(from: &buffer) { values.append(v) }
                } catch {
                    ourError = true
                }
                let perlValues = (call["values"] as! [Any]).map { JSONTestKit.value(typed: $0) }
                if call["error"] != nil { perlError = true }
                if values.count != perlValues.count
                    || !zip(values, perlValues).allSatisfy({ p in p.1.map { JSONTestKit.identical(p.0, $0) } ?? false }) {
                    agrees = false
                }
                if ourError || perlError { break }
            }
            if !ourError {
                // The stream ends after the last chunk.
                do {
                    while let v = try decoder.finish(from: &buffer) { _ = v; agrees = agrees && perlError }
                } catch {
                    ourError = true
                }
            }
            if ourError != perlError { agrees = false }
            if !agrees { deviations.append(description) }
        }
        #expect(Set(deviations) == Set(Self.incrDeviations.keys), "deviations: \(deviations.sorted())")
    }

    @Test("incremental deviations yield what we document")
    func incrDeviationValues() throws {
        var decoder = JSONStreamDecoder(options: .init(allowScalars: true))
        var buffer = ByteBuffer(string: "1")
        #expect(try decoder.next(from: &buffer) == nil)
        buffer.writeString("2 ")
        #expect(try decoder.next(from: &buffer) == .int(12))
        #expect(try decoder.finish(from: &buffer) == nil)

        var d2 = JSONStreamDecoder()
        var b2 = ByteBuffer(string: "[1][2]]")
        #expect(try d2.next(from: &b2) == .array([.int(1)]))
        #expect(try d2.next(from: &b2) == .array([.int(2)]))
        #expect(throws: JSONError(.unexpectedCharacter, offset: 0, "")) { try d2.next(from: &b2) }
    }
}
