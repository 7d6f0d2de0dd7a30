import NIOCore

extension Value: ExpressibleByNilLiteral {
    /// `nil` is ``null``.
    public init(nilLiteral: ()) { self = .null }
}

extension Value: ExpressibleByBooleanLiteral {
    /// `true` / `false` are ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension Value: ExpressibleByIntegerLiteral {
    /// An integer literal is ``int(_:)``.
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension Value: ExpressibleByFloatLiteral {
    /// A float literal is ``float(_:)``.
    public init(floatLiteral value: Double) { self = .float(value) }
}

extension Value: ExpressibleByStringLiteral {
    /// A string literal is ``text(_:)`` (a CBOR text string; Perl receives a character string).
    public init(stringLiteral value: String) { self = .text(value) }
}

extension Value: ExpressibleByArrayLiteral {
    /// An array literal is ``array(_:)``.
    public init(arrayLiteral elements: Value...) { self = .array(elements) }
}

extension Value: ExpressibleByDictionaryLiteral {
    /// A dictionary literal is ``map(_:)``, keeping the written order (and any repeated key).
    public init(dictionaryLiteral elements: (Value, Value)...) {
        self = .map(elements.map { (key: $0.0, value: $0.1) })
    }
}

// MARK: - Normalizing initializers

extension Value {
    /// The canonical value of any integer: ``int(_:)`` when it fits `Int64`, ``uint(_:)`` when it
    /// fits `UInt64`, otherwise ``bignum(negative:magnitude:)``.
    /// - Parameter integer: the integer, of any width (`Int128`, `UInt128`, ...).
    public init(integer: some BinaryInteger) {
        if let small = Int64(exactly: integer) {
            self = .int(small)
        } else if let large = UInt64(exactly: integer) {
            self = .uint(large)
        } else if integer < 0 {
            // Tag 3 carries -1 - n, which is the bitwise complement of n in two's complement.
            self = .bignum(negative: true, magnitude: Value.bigEndianMagnitude(~integer))
        } else {
            self = .bignum(negative: false, magnitude: Value.bigEndianMagnitude(integer))
        }
    }

    /// The big-endian bytes of a non-negative integer, without leading zeros.
    private static func bigEndianMagnitude(_ value: some BinaryInteger) -> [UInt8] {
        var bytes: [UInt8] = []
        for word in value.words.reversed() {
            var shift = UInt.bitWidth
            while shift > 0 {
                shift -= 8
                bytes.append(UInt8(truncatingIfNeeded: word >> UInt(shift)))
            }
        }
        let firstNonZero = bytes.firstIndex(where: { $0 != 0 }) ?? bytes.endIndex
        return Array(bytes[firstNonZero...])
    }

    /// The canonical value of a bignum with RFC 8949 tag 2/3 semantics: leading zero bytes are
    /// dropped, and a result that fits 64 bits becomes ``int(_:)`` or ``uint(_:)``.
    /// - Parameters:
    ///   - bignumNegative: `true` for tag 3 (value `-1 - magnitude`), `false` for tag 2.
    ///   - magnitude: big-endian bytes of the magnitude.
    public init(bignumNegative negative: Bool, magnitude: some Sequence<UInt8>) {
        var significant: [UInt8] = []
        for byte in magnitude where !(significant.isEmpty && byte == 0) { significant.append(byte) }
        guard significant.count <= 8 else {
            self = .bignum(negative: negative, magnitude: significant)
            return
        }
        var m: UInt64 = 0
        for byte in significant { m = m << 8 | UInt64(byte) }
        if !negative {
            self = m <= UInt64(Int64.max) ? .int(Int64(m)) : .uint(m)
        } else if m <= UInt64(Int64.max) {
            self = .int(-1 - Int64(m))
        } else {
            self = .bignum(negative: true, magnitude: significant)
        }
    }

    /// The canonical value of a CBOR simple value: 20...23 are `false`, `true`, `null` and
    /// `undefined`; 24...31 have no well-formed encoding and give `nil`; others are ``simple(_:)``.
    /// - Parameter simple: the simple value number.
    public init?(simple: UInt8) {
        switch simple {
        case 20: self = .bool(false)
        case 21: self = .bool(true)
        case 22: self = .null
        case 23: self = .undefined
        case 24...31: return nil
        default: self = .simple(simple)
        }
    }

    /// A byte string holding `bytes` (Perl's ordinary string, as CBOR::XS sends it).
    /// - Parameter bytes: the bytes.
    public init(bytes: some Sequence<UInt8>) {
        self = .bytes(ByteBuffer(bytes: bytes))
    }

    /// A byte string holding the UTF-8 encoding of `string`: the way a Perl node sends strings.
    /// - Parameter string: the string.
    public init(byteString string: String) {
        self = .bytes(ByteBuffer(string: string))
    }

    /// A float from any binary floating-point value (converted to `Double`).
    /// - Parameter float: the value.
    public init(float: some BinaryFloatingPoint) {
        self = .float(Double(float))
    }
}
