import AEMPCodecs
import NIOCore
import Testing

@Suite("Value literals, accessors and description")
struct ValueTests {
    @Test func literals() {
        let n: Value = nil
        let b: Value = true
        let i: Value = -5
        let d: Value = 1.5
        let s: Value = "hi"
        let a: Value = [1, "x"]
        let m: Value = ["k": 1, 2: "v"]
        #expect(n == .null)
        #expect(b == .bool(true))
        #expect(i == .int(-5))
        #expect(d == .float(1.5))
        #expect(s == .text("hi"))
        #expect(a == .array([.int(1), .text("x")]))
        #expect(m == .map([(.text("k"), .int(1)), (.int(2), .text("v"))]))
        #expect(m.mapValue?.first?.key == "k", "written order is kept")
    }

    @Test func integerNormalization() {
        #expect(Value(integer: 5 as UInt8) == .int(5))
        #expect(Value(integer: -5 as Int16) == .int(-5))
        #expect(Value(integer: UInt64(Int64.max)) == .int(.max))
        #expect(Value(integer: UInt64(Int64.max) + 1) == .uint(UInt64(Int64.max) + 1))
        #expect(Value(integer: UInt64.max) == .uint(.max))
        #expect(Value(integer: Int64.min) == .int(.min))
        if #available(macOS 15, *) {
            #expect(
                Value(integer: Int128(UInt64.max) + 1)
                    == .bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]))
            // -2^64 - 1 is tag 3 with magnitude 2^64.
            #expect(
                Value(integer: -Int128(UInt64.max) - 2)
                    == .bignum(negative: true, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]))
            // -2^63 - 1 is below Int64 but its tag-3 magnitude fits 64 bits.
            #expect(
                Value(integer: Int128(Int64.min) - 1)
                    == .bignum(negative: true, magnitude: [0x80, 0, 0, 0, 0, 0, 0, 0]))
            #expect(
                Value(integer: UInt128.max) == .bignum(negative: false, magnitude: [UInt8](repeating: 0xff, count: 16)))
        }
    }

    @Test func bignumNormalization() {
        #expect(Value(bignumNegative: false, magnitude: []) == 0)
        #expect(Value(bignumNegative: false, magnitude: [0, 0, 1]) == 1)
        #expect(Value(bignumNegative: true, magnitude: [0]) == -1)
        #expect(Value(bignumNegative: true, magnitude: [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) == .int(.min))
        #expect(
            Value(bignumNegative: false, magnitude: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) == .uint(.max))
        #expect(
            Value(bignumNegative: true, magnitude: [0x80, 0, 0, 0, 0, 0, 0, 0])
                == .bignum(negative: true, magnitude: [0x80, 0, 0, 0, 0, 0, 0, 0]))
        #expect(
            Value(bignumNegative: false, magnitude: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
                == .bignum(negative: false, magnitude: [1, 2, 3, 4, 5, 6, 7, 8, 9]))
    }

    @Test func simpleNormalization() {
        #expect(Value(simple: 20) == false)
        #expect(Value(simple: 21) == true)
        #expect(Value(simple: 22) == nil as Value)
        #expect(Value(simple: 23) == .undefined)
        #expect(Value(simple: 24) == nil)
        #expect(Value(simple: 31) == nil)
        #expect(Value(simple: 16) == .simple(16))
        #expect(Value(simple: 32) == .simple(32))
        #expect(Value(float: Float(0.5)) == 0.5)
        #expect(Value(byteString: "é") == .bytes(ByteBuffer(bytes: [0xc3, 0xa9])))
    }

    @Test func stringValueReadsTextAndPerlByteStrings() {
        #expect(Value.text("é").stringValue == "é")
        #expect(Value(bytes: Array("port".utf8)).stringValue == "port")
        #expect(Value(bytes: [0xe2, 0x82, 0xac]).stringValue == "€", "valid UTF-8 bytes read as UTF-8")
        #expect(Value(bytes: [0x68, 0xe9]).stringValue == "hé", "other bytes read as Latin-1, as Perl does")
        #expect(Value(bytes: []).stringValue == "")
        #expect(Value.int(1).stringValue == nil)
        #expect(Value.text("ab").bytesValue == ByteBuffer(string: "ab"))
        #expect(Value(bytes: [1]).bytesValue == ByteBuffer(bytes: [1]))
        #expect(Value.null.bytesValue == nil)
    }

    @Test func numbersConvertWhenExact() {
        #expect(Value.int(-3).int64Value == -3)
        #expect(Value.float(3.0).int64Value == 3)
        #expect(Value.float(3.5).int64Value == nil)
        #expect(Value.float(.nan).int64Value == nil)
        #expect(Value.float(1e19).int64Value == nil)
        #expect(Value.uint(.max).int64Value == nil)
        #expect(Value.text("3").int64Value == nil, "strings are not parsed")
        #expect(Value.uint(.max).uint64Value == .max)
        #expect(Value.int(-1).uint64Value == nil)
        #expect(Value.int(7).uint64Value == 7)
        #expect(Value.float(1e19).uint64Value == 10_000_000_000_000_000_000)
        #expect(Value.int(7).intValue == 7)
        #expect(Value.uint(UInt64(Int64.max) + 1).intValue == nil)
        #expect(Value.int(3).doubleValue == 3.0)
        #expect(Value.int(Int64.max).doubleValue == nil, "2^63-1 is not exact as a Double")
        #expect(Value.uint(1 << 63).doubleValue == 9_223_372_036_854_775_808.0)
        #expect(Value.float(2.5).doubleValue == 2.5)
        #expect(Value.bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]).doubleValue == nil)
        #expect(Value.null.doubleValue == nil)
    }

    @Test func perlBooleans() {
        #expect(Value.bool(true).boolValue == true)
        #expect(Value.bool(false).boolValue == false)
        #expect(Value(bytes: [0x31]).boolValue == true, "Perl's true: the byte string \"1\"")
        #expect(Value(bytes: []).boolValue == false, "Perl's false: the empty byte string")
        #expect(Value(bytes: [0x30]).boolValue == false)
        #expect(Value.text("1").boolValue == true)
        #expect(Value.text("").boolValue == false)
        #expect(Value.text("0").boolValue == false)
        #expect(Value.int(1).boolValue == true)
        #expect(Value.int(0).boolValue == false)
        #expect(Value.int(2).boolValue == nil)
        #expect(Value.text("yes").boolValue == nil)
        #expect(Value(bytes: [0x32]).boolValue == nil)
        #expect(Value(bytes: [0x31, 0x31]).boolValue == nil)
        #expect(Value.null.boolValue == nil)
    }

    @Test func containersAndSubscripts() {
        let message: Value = [
            Value(byteString: "port"), ["a": 1, Value(byteString: "b"): 2, Value(bytes: [0x68, 0xe9]): 3],
        ]
        #expect(message.arrayValue?.count == 2)
        #expect(message[0]?.stringValue == "port")
        #expect(message[2] == nil)
        #expect(message[-1] == nil)
        #expect(Value.int(1)[0] == nil)
        #expect(message.mapValue == nil)
        let map = message[1]!
        #expect(map["a"] == 1)
        #expect(map["b"] == 2, "byte-string keys match")
        #expect(map["hé"] == 3, "Latin-1 byte keys match their characters")
        #expect(map["c"] == nil)
        #expect(map[key: .bytes(ByteBuffer(string: "b"))] == 2)
        #expect(map[key: "b"] == nil, "typed lookup compares exactly")
        #expect(Value.int(1)["a"] == nil)
        #expect(Value.int(1)[key: 1] == nil)
        let duplicates = Value.map([("a", 1), ("a", 2)])
        #expect(duplicates["a"] == 2, "the last of repeated keys wins, as in a Perl hash")
        #expect(duplicates[key: "a"] == 2)
        #expect(map.mapValue?.count == 3)
        #expect(Value.int(1).arrayValue == nil)
        #expect(Value.null.isNull)
        #expect(!Value.undefined.isNull)
        let intKeys: Value = [1: "one"]
        #expect(intKeys["1"] == nil)
    }

    @Test func diagnosticDescription() {
        let cases: [(Value, String)] = [
            (nil, "null"), (.undefined, "undefined"), (true, "true"), (false, "false"),
            (1, "1"), (-10, "-10"), (.uint(.max), "18446744073709551615"),
            (1.5, "1.5"), (1.0, "1.0"), (-0.0, "-0.0"), (1e300, "1e+300"),
            (.float(.nan), "NaN"), (.float(.infinity), "Infinity"), (.float(-.infinity), "-Infinity"),
            ("text", "\"text\""), ("a\"b\\c\n\t\r\u{1}", "\"a\\\"b\\\\c\\n\\t\\r\\u0001\""), ("€", "\"€\""),
            (Value(bytes: [0x68, 0x69]), "h'6869'"), (Value(bytes: []), "h''"),
            ([1, 2], "[1, 2]"), ([], "[]"), (["k": "v"], "{\"k\": \"v\"}"), ([:], "{}"),
            (.tagged(24, Value(bytes: [1])), "24(h'01')"), (.simple(16), "simple(16)"),
            (.bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]), "2(h'010000000000000000')"),
            (.bignum(negative: true, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]), "3(h'010000000000000000')"),
        ]
        for (value, text) in cases {
            #expect(value.description == text)
            #expect(value.debugDescription == text)
        }
    }

    @Test func errorDescriptionAndEquality() {
        let error = CBORError(.truncated, offset: 3, message: "unexpected end")
        #expect(error.description == "CBOR truncated at offset 3: unexpected end")
        #expect(error == CBORError(.truncated))
        #expect(error != CBORError(.invalidUTF8))
        #expect(Set([error, CBORError(.truncated, offset: 9)]).count == 1)
        #expect(CBORError(.itemTooLarge).message == "itemTooLarge")
        let codes: [CBORError.Code] = [
            .truncated, .reservedAdditionalInfo, .unexpectedBreak, .invalidIndefiniteString, .invalidSimpleValue,
            .invalidUTF8, .nestingTooDeep, .itemTooLarge, .trailingBytes,
        ]
        #expect(Set(codes.map(\.description)).count == codes.count)
    }
}
