import AEMPCodecs
import NIOCore
import Testing

/// RFC 8949 Appendix A: every example decodes to its value; the examples whose encoding is the one
/// we write (no half floats, no indefinite lengths, NaN as float64) also encode byte for byte.
@Suite("CBOR RFC 8949 Appendix A")
struct CBORRFCVectorTests {
    struct Vector: CustomTestStringConvertible, Sendable {
        var hex: String
        var value: Value
        /// Whether our encoder writes exactly `hex` for `value`.
        var encodes: Bool
        var testDescription: String { hex }
    }

    static let oneTo25: [Value] = (1...25).map { .int(Int64($0)) }

    static let vectors: [Vector] = [
        Vector(hex: "00", value: 0, encodes: true),
        Vector(hex: "01", value: 1, encodes: true),
        Vector(hex: "0a", value: 10, encodes: true),
        Vector(hex: "17", value: 23, encodes: true),
        Vector(hex: "1818", value: 24, encodes: true),
        Vector(hex: "1819", value: 25, encodes: true),
        Vector(hex: "1864", value: 100, encodes: true),
        Vector(hex: "1903e8", value: 1000, encodes: true),
        Vector(hex: "1a000f4240", value: 1_000_000, encodes: true),
        Vector(hex: "1b000000e8d4a51000", value: 1_000_000_000_000, encodes: true),
        Vector(hex: "1bffffffffffffffff", value: .uint(18_446_744_073_709_551_615), encodes: true),
        Vector(
            hex: "c249010000000000000000", value: .bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]),
            encodes: true),
        Vector(
            hex: "3bffffffffffffffff", value: .bignum(negative: true, magnitude: [UInt8](repeating: 0xff, count: 8)),
            encodes: true),
        Vector(
            hex: "c349010000000000000000", value: .bignum(negative: true, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]),
            encodes: true),
        Vector(hex: "20", value: -1, encodes: true),
        Vector(hex: "29", value: -10, encodes: true),
        Vector(hex: "3863", value: -100, encodes: true),
        Vector(hex: "3903e7", value: -1000, encodes: true),
        Vector(hex: "f90000", value: 0.0, encodes: false),
        Vector(hex: "f98000", value: -0.0, encodes: false),
        Vector(hex: "f93c00", value: 1.0, encodes: false),
        Vector(hex: "fb3ff199999999999a", value: 1.1, encodes: true),
        Vector(hex: "f93e00", value: 1.5, encodes: false),
        Vector(hex: "f97bff", value: 65504.0, encodes: false),
        Vector(hex: "fa47c35000", value: 100000.0, encodes: true),
        Vector(hex: "fa7f7fffff", value: 3.4028234663852886e+38, encodes: true),
        Vector(hex: "fb7e37e43c8800759c", value: 1.0e+300, encodes: true),
        Vector(hex: "f90001", value: 5.960464477539063e-8, encodes: false),
        Vector(hex: "f90400", value: 0.00006103515625, encodes: false),
        Vector(hex: "f9c400", value: -4.0, encodes: false),
        Vector(hex: "fbc010666666666666", value: -4.1, encodes: true),
        Vector(hex: "f97c00", value: .float(.infinity), encodes: false),
        Vector(hex: "f97e00", value: .float(.nan), encodes: false),
        Vector(hex: "f9fc00", value: .float(-.infinity), encodes: false),
        Vector(hex: "fa7f800000", value: .float(.infinity), encodes: true),
        Vector(hex: "fa7fc00000", value: .float(.nan), encodes: false),
        Vector(hex: "faff800000", value: .float(-.infinity), encodes: true),
        Vector(hex: "fb7ff0000000000000", value: .float(.infinity), encodes: false),
        Vector(hex: "fb7ff8000000000000", value: .float(.nan), encodes: true),
        Vector(hex: "fbfff0000000000000", value: .float(-.infinity), encodes: false),
        Vector(hex: "f4", value: false, encodes: true),
        Vector(hex: "f5", value: true, encodes: true),
        Vector(hex: "f6", value: nil, encodes: true),
        Vector(hex: "f7", value: .undefined, encodes: true),
        Vector(hex: "f0", value: .simple(16), encodes: true),
        Vector(hex: "f8ff", value: .simple(255), encodes: true),
        Vector(
            hex: "c074323031332d30332d32315432303a30343a30305a", value: .tagged(0, "2013-03-21T20:04:00Z"),
            encodes: true),
        Vector(hex: "c11a514b67b0", value: .tagged(1, 1_363_896_240), encodes: true),
        Vector(hex: "c1fb41d452d9ec200000", value: .tagged(1, 1_363_896_240.5), encodes: true),
        Vector(hex: "d74401020304", value: .tagged(23, Value(bytes: [1, 2, 3, 4])), encodes: true),
        Vector(
            hex: "d818456449455446", value: .tagged(24, Value(bytes: [0x64, 0x49, 0x45, 0x54, 0x46])), encodes: true),
        Vector(
            hex: "d82076687474703a2f2f7777772e6578616d706c652e636f6d", value: .tagged(32, "http://www.example.com"),
            encodes: true),
        Vector(hex: "40", value: Value(bytes: []), encodes: true),
        Vector(hex: "4401020304", value: Value(bytes: [1, 2, 3, 4]), encodes: true),
        Vector(hex: "60", value: "", encodes: true),
        Vector(hex: "6161", value: "a", encodes: true),
        Vector(hex: "6449455446", value: "IETF", encodes: true),
        Vector(hex: "62225c", value: "\"\\", encodes: true),
        Vector(hex: "62c3bc", value: "\u{00fc}", encodes: true),
        Vector(hex: "63e6b0b4", value: "\u{6c34}", encodes: true),
        Vector(hex: "64f0908591", value: "\u{10151}", encodes: true),
        Vector(hex: "80", value: [], encodes: true),
        Vector(hex: "83010203", value: [1, 2, 3], encodes: true),
        Vector(hex: "8301820203820405", value: [1, [2, 3], [4, 5]], encodes: true),
        Vector(
            hex: "98190102030405060708090a0b0c0d0e0f101112131415161718181819", value: .array(oneTo25), encodes: true),
        Vector(hex: "a0", value: [:], encodes: true),
        Vector(hex: "a201020304", value: [1: 2, 3: 4], encodes: true),
        Vector(hex: "a26161016162820203", value: ["a": 1, "b": [2, 3]], encodes: true),
        Vector(hex: "826161a161626163", value: ["a", ["b": "c"]], encodes: true),
        Vector(
            hex: "a56161614161626142616361436164614461656145",
            value: ["a": "A", "b": "B", "c": "C", "d": "D", "e": "E"], encodes: true),
        Vector(hex: "5f42010243030405ff", value: Value(bytes: [1, 2, 3, 4, 5]), encodes: false),
        Vector(hex: "7f657374726561646d696e67ff", value: "streaming", encodes: false),
        Vector(hex: "9fff", value: [], encodes: false),
        Vector(hex: "9f018202039f0405ffff", value: [1, [2, 3], [4, 5]], encodes: false),
        Vector(hex: "9f01820203820405ff", value: [1, [2, 3], [4, 5]], encodes: false),
        Vector(hex: "83018202039f0405ff", value: [1, [2, 3], [4, 5]], encodes: false),
        Vector(hex: "83019f0203ff820405", value: [1, [2, 3], [4, 5]], encodes: false),
        Vector(
            hex: "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", value: .array(oneTo25), encodes: false),
        Vector(hex: "bf61610161629f0203ffff", value: ["a": 1, "b": [2, 3]], encodes: false),
        Vector(hex: "826161bf61626163ff", value: ["a", ["b": "c"]], encodes: false),
        Vector(hex: "bf6346756ef563416d7421ff", value: ["Fun": true, "Amt": -2], encodes: false),
    ]

    @Test(arguments: vectors)
    func decodes(_ vector: Vector) throws {
        #expect(try CBORDecoder().decode(Hex.bytes(vector.hex)) == vector.value)
    }

    @Test(arguments: vectors.filter(\.encodes))
    func encodes(_ vector: Vector) {
        #expect(Hex.string(CBOREncoder().encode(vector.value)) == vector.hex)
    }

    @Test(arguments: vectors)
    func streamDecoderAgrees(_ vector: Vector) throws {
        var decoder = CBORStreamDecoder()
        var buffer = Hex.buffer(vector.hex)
        #expect(try decoder.next(from: &buffer) == vector.value)
        #expect(buffer.readableBytes == 0)
    }

    @Test func halfFloatsWidenExactly() throws {
        // Every half-precision bit pattern decodes to the same number as Swift's Float16 (where
        // available) and never fails; NaN payloads keep their sign and bits.
        for bits in 0...0xffff as ClosedRange<Int> {
            let value = try CBORDecoder().decode([0xf9, UInt8(bits >> 8), UInt8(bits & 0xff)])
            guard case .float(let d) = value else {
                Issue.record("half \(bits) gave \(value)")
                return
            }
            let exponent = (bits >> 10) & 0x1f
            if exponent == 31 && bits & 0x3ff != 0 {
                #expect(d.isNaN)
                #expect(d.bitPattern >> 63 == UInt64(bits >> 15))
                #expect((d.bitPattern >> 42) & 0x3ff == UInt64(bits & 0x3ff))
            } else {
                let mantissa = Double(bits & 0x3ff)
                let magnitude =
                    exponent == 0
                    ? mantissa * 0x1p-24
                    : (1 + mantissa / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
                let expected = exponent == 31 ? Double.infinity : magnitude
                #expect(d.magnitude == expected, "half \(bits)")
                #expect((d.sign == .minus) == (bits >> 15 == 1))
            }
        }
    }
}
