import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore

/// Hex helpers for the tests.
enum Hex {
    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hex.count / 2)
        var iterator = hex.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            default: c - UInt8(ascii: "A") + 10
            }
        }
        while let hi = iterator.next(), let lo = iterator.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
        return out
    }

    static func buffer(_ hex: String) -> ByteBuffer { ByteBuffer(bytes: bytes(hex)) }

    static func string(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func string(_ buffer: ByteBuffer) -> String { string(buffer.readableBytesView) }
}

/// What a typed-form entry of the Perl vectors (vectors/README.md) means as a ``Value``.
enum PerlTyped {
    struct Unmappable: Error, CustomStringConvertible {
        var description: String
    }

    /// Maps the typed form to the ``Value`` Perl meant. Throws for forms that only exist in Perl
    /// (objects, stringified references, invalid UTF-8 text, BigInt NaN).
    static func value(_ json: Any?) throws -> Value {
        guard let json, !(json is NSNull) else { return .null }
        if let array = json as? [Any] { return .array(try array.map(value)) }
        guard let object = json as? [String: Any] else { throw Unmappable(description: "\(json)") }
        if let int = object["int"] as? String { return try integer(int) }
        if let f64 = object["f64"] as? String { return .float(Double(bitPattern: UInt64(f64, radix: 16)!)) }
        if let text = object["text"] as? String { return .text(text) }
        if let bytes = object["bytes"] as? String { return .bytes(Hex.buffer(bytes)) }
        if let b = object["bool"] as? Bool { return .bool(b) }
        if object["cbor_undefined"] != nil { return .undefined }
        if let pairs = object["map"] as? [[Any]] {
            return .map(try pairs.map { (key: try value($0[0]), value: try value($0[1])) })
        }
        if object.keys.contains("ref") { return .tagged(22098, try value(object["ref"])) }
        if let tag = object["tag"] as? String { return .tagged(UInt64(tag)!, try value(object["value"])) }
        if let big = object["bigint"] as? String, big != "NaN" { return try integer(big) }
        throw Unmappable(description: "\(object)")
    }

    /// A decimal integer of any size as a canonical ``Value``.
    static func integer(_ text: String) throws -> Value {
        if let i = Int64(text) { return .int(i) }
        if let u = UInt64(text) { return .uint(u) }
        let negative = text.hasPrefix("-")
        var magnitude: [UInt8] = [0]  // big-endian
        for c in text.drop(while: { $0 == "-" }) {
            guard let digit = c.wholeNumberValue else { throw Unmappable(description: text) }
            var carry = digit
            for i in magnitude.indices.reversed() {
                let v = Int(magnitude[i]) * 10 + carry
                magnitude[i] = UInt8(v & 0xff)
                carry = v >> 8
            }
            while carry > 0 {
                magnitude.insert(UInt8(carry & 0xff), at: 0)
                carry >>= 8
            }
        }
        if negative {  // tag 3 carries |n| - 1
            var i = magnitude.count - 1
            while magnitude[i] == 0 {
                magnitude[i] = 0xff
                i -= 1
            }
            magnitude[i] -= 1
        }
        return Value(bignumNegative: negative, magnitude: magnitude)
    }
}


/// Random values for property tests and cross-checks.
struct RandomValues {
    struct Options {
        /// Allow simple values, undefined and arbitrary tags (not for Perl, which rejects or
        /// interprets them).
        var exotic = true
        /// Allow non-string map keys.
        var anyKeys = true
        /// Allow bignums below -2^63 (Perl decodes those wrongly).
        var negativeBignums = true
    }

    var generator: SeededRandom
    var options = Options()

    init(seed: UInt64, options: Options = Options()) {
        generator = SeededRandom(seed: seed)
        self.options = options
    }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }

    mutating func value(depth: Int = 0) -> Value {
        let kinds = depth >= 4 ? 10 : 13
        switch int(0...(kinds - 1)) {
        case 0: return .null
        case 1: return options.exotic ? .undefined : .bool(false)
        case 2: return .bool(int(0...1) == 1)
        case 3:
            switch int(0...3) {
            case 0: return .int(Int64(int(-30...30)))
            case 1: return .int(Int64.random(in: Int64.min...Int64.max, using: &generator))
            case 2: return .uint(UInt64.random(in: UInt64(Int64.max) + 1...UInt64.max, using: &generator))
            default: return .int(Int64(int(-70000...70000)))
            }
        case 4:
            let negative = options.negativeBignums && int(0...1) == 1
            var magnitude: [UInt8] = [UInt8(int(1...255))]
            for _ in 0..<int(8...20) { magnitude.append(UInt8(int(0...255))) }
            return .bignum(negative: negative, magnitude: magnitude)
        case 5:
            switch int(0...4) {
            case 0: return .float(Double(Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator))))
            case 1: return .float([0.0, -0.0, .infinity, -.infinity, .nan, 1.5, 2.5, 1.1][int(0...7)])
            default: return .float(Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator)))
            }
        case 6: return .text(text())
        case 7:
            var bytes = ByteBuffer()
            for _ in 0..<int(0...40) { bytes.writeInteger(UInt8(int(0...255))) }
            return .bytes(bytes)
        case 8:
            if options.exotic {
                let n = int(0...255)
                return Value(simple: UInt8(n)) ?? .simple(UInt8(n < 32 ? 16 : n))
            }
            return .text("x\(int(0...9))")
        case 9: return .int(Int64(int(0...23)))
        case 10: return .array((0..<int(0...5)).map { _ in value(depth: depth + 1) })
        case 11:
            var pairs: [(key: Value, value: Value)] = []
            var seen = Set<String>()
            for _ in 0..<int(0...5) {
                let key: Value = options.anyKeys && int(0...3) == 0 ? value(depth: depth + 1) : stringKey()
                let identity = key.stringValue ?? key.description
                guard seen.insert(identity).inserted else { continue }
                pairs.append((key, value(depth: depth + 1)))
            }
            return .map(pairs)
        default:
            let tag = options.exotic ? UInt64(int(1000...20000)) : 22098
            return .tagged(tag, value(depth: depth + 1))
        }
    }

    mutating func stringKey() -> Value {
        let name = "k\(int(0...999))"
        return int(0...1) == 0 ? .text(name) : Value(byteString: name)
    }

    mutating func text() -> String {
        let alphabet: [Unicode.Scalar] = [
            "a", "Z", "0", " ", "\"", "\\", "\u{0}", "\u{7f}", "é", "ß", "€", "水", "😀", "\u{10FFFF}",
        ]
        var scalars = String.UnicodeScalarView()
        for _ in 0..<int(0...30) { scalars.append(alphabet[int(0...alphabet.count - 1)]) }
        return String(scalars)
    }
}
