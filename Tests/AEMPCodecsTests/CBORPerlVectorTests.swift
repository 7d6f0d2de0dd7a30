import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Testing

/// Replays vectors/cbor-perl.json: what CBOR::XS 1.86 emits, decodes and streams.
@Suite("CBOR against CBOR::XS vectors")
struct CBORPerlVectorTests {
    static func cases(_ kind: String) throws -> [[String: Any]] {
        try Fixtures.cases("vectors/cbor-perl.json", kind: kind)
    }

    @Test func vectorsArePresent() throws {
        #expect(try Self.cases("encode").count == 151)
        #expect(try Self.cases("decode").count == 152)
        #expect(try Self.cases("incr").count == 56)
    }

    // MARK: encode cases: we accept everything Perl emits and read what Perl meant

    @Test func decodesEverythingPerlEncodes() throws {
        var checked = 0
        for testCase in try Self.cases("encode") {
            guard let hex = testCase["hex"] as? String else { continue }  // Perl refused to encode
            let id = testCase["id"] as? String ?? "?"
            let decoded = try CBORDecoder().decode(Hex.bytes(hex))
            if (testCase["decoded_back"] as? [String: Any])?["bigfloat"] != nil {
                // Math::BigFloat travels as tag 4 (decimal fraction), which we keep as a tag.
                #expect(decoded.description == testCase["diag"] as? String, "\(id)")
                checked += 1
                continue
            }
            var expected = try PerlTyped.value(testCase["decoded_back"])
            if let diag = testCase["diag"] as? String, diag.hasPrefix("3(h'") {
                // CBOR::XS reads tag 3 as -n; RFC 8949 (and we) read it as -1-n.
                expected = Value(bignumNegative: true, magnitude: Hex.bytes(String(diag.dropFirst(4).dropLast(2))))
            }
            #expect(decoded == expected, "\(id): \(decoded) != \(expected)")
            checked += 1
        }
        #expect(checked == 150)
    }

    /// Decoding then re-encoding Perl's bytes gives Perl's bytes back, except that we write
    /// bignums that fit 64 bits as plain integers (RFC 8949 preferred serialization; CBOR::XS's
    /// Math::BigInt support uses tags 2/3 for everything outside ±2^31).
    @Test func reencodingPerlOutputIsIdentityExceptCanonicalBignums() throws {
        for testCase in try Self.cases("encode") {
            guard let hex = testCase["hex"] as? String else { continue }
            let id = testCase["id"] as? String ?? "?"
            let decoded = try CBORDecoder().decode(Hex.bytes(hex))
            let reencoded = Hex.string(CBOREncoder().encode(decoded))
            switch id {
            case "Math::BigInt 2^31": #expect(reencoded == "1a80000000")
            case "Math::BigInt 2^32": #expect(reencoded == "1b0000000100000000")
            case "Math::BigInt 2^63": #expect(reencoded == "1b8000000000000000")
            // Perl's broken negative bignums (see the vector notes) are still valid RFC bignums; the
            // one that fits 64 bits (3(h'0180000001') = -6442450946) becomes a plain integer.
            case "Math::BigInt -2^31-1": #expect(reencoded == "3b0000000180000001")
            default: #expect(reencoded == hex, "\(id)")
            }
        }
    }

    // MARK: decode cases

    /// Where we deliberately differ from CBOR::XS, what we produce instead (as diagnostic notation,
    /// or `error:<code>`), and why.
    static let deviations: [String: (ours: String, reason: String)] = [
        "-2^63-1": (
            "3(h'8000000000000000')", "CBOR::XS wraps integers below -2^63 around; we keep the value as a bignum"
        ),
        "-2^64": ("3(h'ffffffffffffffff')", "CBOR::XS wraps -2^64 to 0; we keep the value as a bignum"),
        "text with invalid UTF-8": ("error:invalidUTF8", "RFC 8949 §3.1: text strings must be valid UTF-8"),
        "text byte 0xff": ("error:invalidUTF8", "RFC 8949 §3.1: text strings must be valid UTF-8"),
        "text encoding a lone surrogate U+D800": ("error:invalidUTF8", "surrogates are not valid UTF-8 (RFC 3629)"),
        "text chunk inside indefinite byte string": (
            "error:invalidIndefiniteString", "RFC 8949 §3.2.3: chunks must have the string's major type"
        ),
        "byte chunk inside indefinite text": (
            "error:invalidIndefiniteString", "RFC 8949 §3.2.3: chunks must have the string's major type"
        ),
        "duplicate key a": (
            "{\"a\": 1, \"a\": 2}", "maps keep every pair in wire order; Value[\"a\"] gives the last, like Perl"
        ),
        "integer key": ("{1: 2}", "map keys keep their type; CBOR::XS stringifies them"),
        "negative integer key": ("{-1: 2}", "map keys keep their type; CBOR::XS stringifies them"),
        "true key": ("{true: 1}", "map keys keep their type; CBOR::XS stringifies them"),
        "null key": ("{null: 1}", "map keys keep their type; CBOR::XS stringifies them"),
        "float key 1.5": ("{1.5: 1}", "map keys keep their type; CBOR::XS stringifies them"),
        "array key": ("{[]: 1}", "map keys keep their type; CBOR::XS stringifies them"),
        "map key": ("{{}: 1}", "map keys keep their type; CBOR::XS stringifies them"),
        "bignum key": ("{1: 1}", "map keys keep their type (a canonical bignum 1 is the integer 1)"),
        "tag 0 date/time string": ("0(\"2013-03-21T20:04:00Z\")", "tags other than 2/3 are kept, not interpreted"),
        "tag 1 epoch integer": ("1(1363896240)", "tags other than 2/3 are kept, not interpreted"),
        "tag 1 epoch float": ("1(1363896240.5)", "tags other than 2/3 are kept, not interpreted"),
        "tag 3 bignum (RFC value -2^64-1)": (
            "3(h'010000000000000000')", "RFC 8949 §3.4.3: tag 3 is -1-n; CBOR::XS uses -n"
        ),
        "tag 2 empty": ("0", "RFC 8949: an empty magnitude is 0; Math::BigInt gives NaN"),
        "tag 3 h'00' (RFC value -1)": ("-1", "RFC 8949 §3.4.3: tag 3 is -1-n; CBOR::XS uses -n"),
        "tag 3 h'01' (RFC value -2)": ("-2", "RFC 8949 §3.4.3: tag 3 is -1-n; CBOR::XS uses -n"),
        "tag 4 decimal fraction [-2, 27315]": ("4([-2, 27315])", "tags other than 2/3 are kept, not interpreted"),
        "tag 5 bigfloat [-1, 3] = 1.5": ("5([-1, 3])", "tags other than 2/3 are kept, not interpreted"),
        "tag 30 rational 1/3": ("30([1, 3])", "tags other than 2/3 are kept, not interpreted"),
        "tag 55799 self-describe": ("55799([1, 2, 3])", "tags other than 2/3 are kept, not dropped"),
        "tag 55799 twice": ("55799(55799(1))", "tags other than 2/3 are kept, not dropped"),
        "tag 32 URI": ("32(\"http://www.example.com\")", "tags are kept; CBOR::XS needs the URI module"),
        "tag 21 expected base64url conversion": ("21(\"a\")", "tags other than 2/3 are kept, not dropped"),
        "tag 256 stringref namespace, 2 strings": ("256([\"abc\", \"a\"])", "stringref tags are kept, not resolved"),
        "tag 256: short string not in the table, so 25(0) is the 3-byte string": (
            "256([\"ab\", \"abc\", 25(0)])", "stringref tags are kept, not resolved"
        ),
        "tag 256 + tag 25 stringref 0": ("256([\"abc\", 25(0)])", "stringref tags are kept, not resolved"),
        "tag 28/29 shareable + sharedref": ("[28([1]), 29(0)]", "sharing tags are kept, not resolved"),
        "tag 26 perl object Foo (no THAW)": ("26([\"Foo\", []])", "tags are kept; Perl objects are not instantiated"),
        "simple(0)": ("simple(0)", "RFC 8949: unassigned simple values are well-formed; CBOR::XS rejects them"),
        "simple(16)": ("simple(16)", "RFC 8949: unassigned simple values are well-formed; CBOR::XS rejects them"),
        "simple(19)": ("simple(19)", "RFC 8949: unassigned simple values are well-formed; CBOR::XS rejects them"),
        "simple(32)": ("simple(32)", "RFC 8949: unassigned simple values are well-formed; CBOR::XS rejects them"),
        "simple(255)": ("simple(255)", "RFC 8949: unassigned simple values are well-formed; CBOR::XS rejects them"),
    ]

    @Test func decodeCasesMatchPerlOrDocumentedDeviation() throws {
        var matched = 0
        var deviated = 0
        for testCase in try Self.cases("decode") {
            let description = testCase["description"] as? String ?? "?"
            let hex = testCase["hex"] as? String ?? ""
            let result: Result<Value, CBORError> = Result { () throws(CBORError) in
                try CBORDecoder().decode(Hex.bytes(hex))
            }
            let ours: String
            switch result {
            case .success(let value): ours = value.description
            case .failure(let error): ours = "error:\(error.code)"
            }
            if let deviation = Self.deviations[description] {
                #expect(ours == deviation.ours, "\(description): \(deviation.reason)")
                deviated += 1
                continue
            }
            if testCase["error"] != nil {
                #expect(ours.hasPrefix("error:"), "\(description): Perl rejects it, we gave \(ours)")
            } else if testCase["perl"] as? String == "(nested arrays)" {
                let depth = Int(description.prefix(while: { $0.isNumber }))!
                var expected: Value = 0
                for _ in 0..<depth { expected = [expected] }
                #expect(result == .success(expected), "\(description)")
            } else {
                let expected = try PerlTyped.value(testCase["perl"])
                #expect(result == .success(expected), "\(description): \(ours) != \(expected)")
            }
            matched += 1
        }
        #expect(matched + deviated == 152)
        #expect(deviated == Self.deviations.count)
    }

    @Test func specificErrorCodesForPerlErrorCases() throws {
        let expectations: [String: CBORError.Code] = [
            "nested indefinite byte string": .invalidIndefiniteString,
            "truncated byte string": .truncated,
            "negative int key then extra byte": .trailingBytes,
            "indefinite map with a key but no value": .unexpectedBreak,
            "map missing value": .truncated,
            "simple(24) two-byte form (invalid < 32)": .invalidSimpleValue,
            "reserved ai 28": .reservedAdditionalInfo,
            "lone break": .unexpectedBreak,
            "empty input": .truncated,
            "reserved ai 28 in uint": .reservedAdditionalInfo,
            "indefinite uint": .reservedAdditionalInfo,
            "indefinite nint": .reservedAdditionalInfo,
            "indefinite tag": .reservedAdditionalInfo,
            "truncated array": .truncated,
            "array missing element": .truncated,
            "trailing garbage": .trailingBytes,
            "truncated uint16": .truncated,
            "byte string with 2^64-1 declared length": .truncated,
            "array with 2^64-1 declared length": .truncated,
            "513 nested arrays": .nestingTooDeep,
            "tag 256 namespace with bad second item": .truncated,
        ]
        var seen = 0
        for testCase in try Self.cases("decode") {
            guard let description = testCase["description"] as? String, let code = expectations[description] else {
                continue
            }
            seen += 1
            #expect(throws: CBORError(code), "\(description)") {
                try CBORDecoder().decode(Hex.bytes(testCase["hex"] as? String ?? ""))
            }
        }
        #expect(seen == expectations.count)
    }

    // MARK: incr cases: the stream decoder yields the same values per chunk

    @Test func streamDecoderReplaysIncrementalCases() throws {
        for testCase in try Self.cases("incr") {
            let description = testCase["description"] as? String ?? "?"
            var decoder = CBORStreamDecoder()
            var buffer = ByteBuffer()
            var failed = false
            for call in testCase["calls"] as? [[String: Any]] ?? [] {
                var fed = Hex.buffer(call["fed_hex"] as? String ?? "")
                buffer.writeBuffer(&fed)
                var values: [Value] = []
                var error: CBORError?
                while true {
                    do throws(CBORError) {
                        guard let value = try decoder.next(from: &buffer) else { break }
                        values.append(value)
                    } catch let caught {
                        error = caught
                        break
                    }
                }
                let perlValues = try (call["values"] as? [Any] ?? []).map(PerlTyped.value)
                if call["error"] != nil {
                    // CBOR::XS loses the messages that preceded the error in the same call; we have
                    // delivered them already, then report the error.
                    #expect(error != nil, "\(description)")
                    if description == "message then garbage byte 0xff" {
                        #expect(perlValues.isEmpty)
                        #expect(values.count == 1, "\(description): the complete message is delivered")
                    } else {
                        #expect(values == perlValues, "\(description)")
                    }
                    #expect(buffer.readableBytes == call["buffer_left"] as? Int, "\(description)")
                    failed = true
                    break
                }
                #expect(error == nil, "\(description): \(String(describing: error))")
                #expect(values == perlValues, "\(description)")
                #expect(buffer.readableBytes == call["buffer_left"] as? Int, "\(description)")
            }
            _ = failed
        }
    }
}
