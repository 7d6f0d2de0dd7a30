import NIOCore

extension ByteBuffer {
    /// Appends the CBOR encoding (RFC 8949) of `value` and returns the number of bytes written.
    ///
    /// The encoding is what a Perl peer expects and what CBOR::XS itself produces:
    /// - integers use the shortest head; `.uint` is major type 0; ``Value/bignum(negative:magnitude:)``
    ///   uses tags 2/3 (RFC semantics: tag 3 carries `-1 - n`), or a plain integer when the magnitude
    ///   fits 64 bits;
    /// - a `.float` is written as float32 (`fa`) when that is exact, otherwise as float64 (`fb`);
    ///   NaN is always float64 with its payload and sign, as CBOR::XS does; half floats are never
    ///   written. A `.float` stays a float even when integral (`1.0` → `fa 3f800000`): it is Perl that
    ///   turns integral doubles in `[0, 2^32)` into integers when it encodes, not us;
    /// - arrays and maps have definite lengths; map pairs keep their order;
    /// - `.simple(n)` is one byte for `n < 24` and two bytes (`f8 n`) otherwise. `n` in 24...31 has no
    ///   well-formed encoding; build simple values with ``Value/init(simple:)`` to avoid them.
    ///
    /// Perl: `CBOR::XS::encode_cbor`.
    /// - Parameter value: the value to encode.
    /// - Returns: the number of bytes written.
    @discardableResult
    public mutating func writeCBOR(_ value: Value) -> Int {
        let start = writerIndex
        writeCBORItem(value)
        return writerIndex - start
    }

    private mutating func writeCBORItem(_ value: Value) {
        switch value {
        case .null: writeInteger(0xf6 as UInt8)
        case .undefined: writeInteger(0xf7 as UInt8)
        case .bool(let b): writeInteger(b ? 0xf5 : 0xf4 as UInt8)
        case .int(let i):
            if i >= 0 {
                writeCBORHead(major: 0, argument: UInt64(i))
            } else {
                writeCBORHead(major: 1, argument: ~UInt64(bitPattern: i))
            }
        case .uint(let u): writeCBORHead(major: 0, argument: u)
        case .bignum(let negative, let magnitude):
            writeCBORBignum(negative: negative, magnitude: magnitude)
        case .float(let d): writeCBORFloat(d)
        case .text(let s):
            var s = s
            s.withUTF8 { utf8 in
                writeCBORHead(major: 3, argument: UInt64(utf8.count))
                writeBytes(UnsafeRawBufferPointer(utf8))
            }
        case .bytes(let b):
            writeCBORHead(major: 2, argument: UInt64(b.readableBytes))
            writeImmutableBuffer(b)
        case .array(let elements):
            writeCBORHead(major: 4, argument: UInt64(elements.count))
            for element in elements { writeCBORItem(element) }
        case .map(let pairs):
            writeCBORHead(major: 5, argument: UInt64(pairs.count))
            for pair in pairs {
                writeCBORItem(pair.key)
                writeCBORItem(pair.value)
            }
        case .tagged(let tag, let inner):
            writeCBORHead(major: 6, argument: tag)
            writeCBORItem(inner)
        case .simple(let n):
            if n < 24 {
                writeInteger(0xe0 | n)
            } else {
                writeInteger(0xf8 as UInt8)
                writeInteger(n)
            }
        }
    }

    /// Writes an initial byte and argument in the shortest form (RFC 8949 §3).
    @usableFromInline
    mutating func writeCBORHead(major: UInt8, argument: UInt64) {
        let mt = major << 5
        switch argument {
        case 0..<24:
            writeInteger(mt | UInt8(argument))
        case 24...0xff:
            writeInteger(UInt16(mt | 24) << 8 | UInt16(argument))
        case 0x100...0xffff:
            writeInteger(mt | 25)
            writeInteger(UInt16(argument))
        case 0x1_0000...0xffff_ffff:
            writeInteger(mt | 26)
            writeInteger(UInt32(argument))
        default:
            writeInteger(mt | 27)
            writeInteger(argument)
        }
    }

    private mutating func writeCBORFloat(_ d: Double) {
        if d.isNaN {
            writeInteger(0xfb as UInt8)
            writeInteger(d.bitPattern)
            return
        }
        let single = Float(d)
        if Double(single) == d {  // exact (infinities included; -0.0 keeps its sign as a float32)
            writeInteger(0xfa as UInt8)
            writeInteger(single.bitPattern)
        } else {
            writeInteger(0xfb as UInt8)
            writeInteger(d.bitPattern)
        }
    }

    private mutating func writeCBORBignum(negative: Bool, magnitude: [UInt8]) {
        let firstNonZero = magnitude.firstIndex(where: { $0 != 0 }) ?? magnitude.endIndex
        let significant = magnitude[firstNonZero...]
        if significant.count <= 8 {
            var m: UInt64 = 0
            for byte in significant { m = m << 8 | UInt64(byte) }
            writeCBORHead(major: negative ? 1 : 0, argument: m)
            return
        }
        writeInteger(negative ? 0xc3 : 0xc2 as UInt8)
        writeCBORHead(major: 2, argument: UInt64(significant.count))
        writeBytes(significant)
    }
}

/// Encodes values as CBOR into fresh buffers; a convenience over ``NIOCore/ByteBuffer/writeCBOR(_:)``.
///
/// Perl: `CBOR::XS::encode_cbor` (default options, as AnyEvent::MP uses it).
public struct CBOREncoder: Sendable {
    /// Creates an encoder. There are no options: the encoding is always the one described at
    /// ``NIOCore/ByteBuffer/writeCBOR(_:)``.
    public init() {}

    /// Encodes `value` into a new buffer.
    /// - Parameter value: the value to encode.
    /// - Returns: a buffer holding exactly one CBOR item.
    public func encode(_ value: Value) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeCBOR(value)
        return buffer
    }

    /// Encodes `value` and returns the bytes as an array.
    /// - Parameter value: the value to encode.
    /// - Returns: the CBOR bytes.
    public func encodeToBytes(_ value: Value) -> [UInt8] {
        let buffer = encode(value)
        return Array(buffer.readableBytesView)
    }
}
