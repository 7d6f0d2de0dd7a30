import NIOCore

/// The default limits shared by ``CBORDecoder`` and ``CBORStreamDecoder``.
public enum CBORLimits {
    /// Default maximum nesting of arrays, maps and tags: 512, the same as CBOR::XS's `max_depth`
    /// (512 nested arrays decode, 513 do not).
    public static let defaultMaxDepth = 512
    /// Default maximum size of one encoded item: 64 MiB. CBOR::XS has no such limit; AEMP
    /// messages are small, and bulk data travels over DataConn handles instead.
    public static let defaultMaxItemSize = 64 << 20
}

/// Reads the initial byte and argument of a data item.
struct CBORHead {
    /// The major type, 0...7.
    var major: UInt8
    /// The additional information, 0...31.
    var info: UInt8
    /// The argument (meaningless when `info` is 31 or the item is a float).
    var argument: UInt64
    /// The length of the head in bytes (1, 2, 3, 5 or 9).
    var length: Int

    var isIndefinite: Bool { info == 31 }

    /// Reads the head at `offset`; `nil` if `bytes` ends inside it.
    /// - Throws: ``CBORError/Code/reservedAdditionalInfo`` for additional information 28...30.
    @inline(__always)
    static func read(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(CBORError) -> CBORHead? {
        guard offset < bytes.count else { return nil }
        let initial = bytes[offset]
        let major = initial >> 5
        let info = initial & 0x1f
        switch info {
        case 0..<24:
            return CBORHead(major: major, info: info, argument: UInt64(info), length: 1)
        case 24:
            guard offset + 2 <= bytes.count else { return nil }
            return CBORHead(major: major, info: info, argument: UInt64(bytes[offset + 1]), length: 2)
        case 25:
            guard offset + 3 <= bytes.count else { return nil }
            let v = bytes.loadUnaligned(fromByteOffset: offset + 1, as: UInt16.self).bigEndian
            return CBORHead(major: major, info: info, argument: UInt64(v), length: 3)
        case 26:
            guard offset + 5 <= bytes.count else { return nil }
            let v = bytes.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self).bigEndian
            return CBORHead(major: major, info: info, argument: UInt64(v), length: 5)
        case 27:
            guard offset + 9 <= bytes.count else { return nil }
            let v = bytes.loadUnaligned(fromByteOffset: offset + 1, as: UInt64.self).bigEndian
            return CBORHead(major: major, info: info, argument: v, length: 9)
        case 31:
            return CBORHead(major: major, info: info, argument: 0, length: 1)
        default:
            throw CBORError(
                .reservedAdditionalInfo, offset: offset,
                message: "reserved additional information \(info) in initial byte 0x\(cborHexByte(initial))")
        }
    }
}

func cborHexByte(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
}

/// Builds a ``Value`` from the bytes of one item, validating everything (RFC 8949 well-formedness,
/// UTF-8 of text strings, the nesting limit). Byte strings become slices of the buffer that `bytes`
/// belongs to (no copy). That buffer is passed down as an argument rather than stored, which saves a
/// retain and a release of its storage per decoded item.
///
/// Recursion depth is bounded by `maxDepth`.
struct CBORParser {
    let bytes: UnsafeRawBufferPointer
    let maxDepth: Int
    var position = 0

    init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    private func truncated(_ offset: Int) -> CBORError {
        CBORError(.truncated, offset: offset, message: "unexpected end of CBOR data")
    }

    @inline(__always)
    private func head(at offset: Int) throws(CBORError) -> CBORHead {
        guard let head = try CBORHead.read(bytes, at: offset) else { throw truncated(bytes.count) }
        return head
    }

    /// The number of bytes left after `position`.
    private var remaining: Int { bytes.count - position }

    /// Parses one item starting at `position` and moves past it.
    /// - Parameters:
    ///   - depth: the nesting level of the item.
    ///   - buffer: the buffer `bytes` belongs to (starting at its reader index), for slicing byte strings.
    mutating func parseItem(depth: Int, in buffer: ByteBuffer) throws(CBORError) -> Value {
        let start = position
        let head = try head(at: start)
        position += head.length
        switch head.major {
        case 0:
            if head.isIndefinite { throw indefiniteNotAllowed(head, at: start) }
            return head.argument <= UInt64(Int64.max) ? .int(Int64(head.argument)) : .uint(head.argument)
        case 1:
            if head.isIndefinite { throw indefiniteNotAllowed(head, at: start) }
            if head.argument <= UInt64(Int64.max) { return .int(-1 - Int64(head.argument)) }
            return .bignum(negative: true, magnitude: cborBigEndianBytes(head.argument))
        case 2:
            if head.isIndefinite { return .bytes(try indefiniteBytes(start: start, in: buffer)) }
            return .bytes(try byteSlice(length: head.argument, start: start, in: buffer))
        case 3:
            if head.isIndefinite { return .text(try indefiniteText(start: start)) }
            let length = try checkedLength(head.argument, start: start)
            let text = try validatedText(offset: position, length: length)
            position += length
            return .text(text)
        case 4:
            guard depth < maxDepth else { throw tooDeep(start) }
            if head.isIndefinite {
                var elements: [Value] = []
                while true {
                    guard position < bytes.count else { throw truncated(bytes.count) }
                    if bytes[position] == 0xff {
                        position += 1
                        return .array(elements)
                    }
                    elements.append(try parseItem(depth: depth + 1, in: buffer))
                }
            }
            // Every element takes at least one byte, so a count beyond the input is truncation.
            guard head.argument <= UInt64(remaining) else { throw truncated(bytes.count) }
            let count = Int(head.argument)
            var elements: [Value] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try parseItem(depth: depth + 1, in: buffer)) }
            return .array(elements)
        case 5:
            guard depth < maxDepth else { throw tooDeep(start) }
            var pairs: [(key: Value, value: Value)] = []
            if head.isIndefinite {
                while true {
                    guard position < bytes.count else { throw truncated(bytes.count) }
                    if bytes[position] == 0xff {
                        position += 1
                        return .map(pairs)
                    }
                    let key = try parseItem(depth: depth + 1, in: buffer)
                    guard position < bytes.count else { throw truncated(bytes.count) }
                    if bytes[position] == 0xff {
                        throw CBORError(
                            .unexpectedBreak, offset: position, message: "break after a map key without its value")
                    }
                    let value = try parseItem(depth: depth + 1, in: buffer)
                    pairs.append((key, value))
                }
            }
            guard head.argument <= UInt64(remaining / 2) else { throw truncated(bytes.count) }
            let count = Int(head.argument)
            pairs.reserveCapacity(count)
            for _ in 0..<count {
                let key = try parseItem(depth: depth + 1, in: buffer)
                let value = try parseItem(depth: depth + 1, in: buffer)
                pairs.append((key, value))
            }
            return .map(pairs)
        case 6:
            if head.isIndefinite { throw indefiniteNotAllowed(head, at: start) }
            guard depth < maxDepth else { throw tooDeep(start) }
            let content = try parseItem(depth: depth + 1, in: buffer)
            if head.argument == 2 || head.argument == 3, case .bytes(let magnitude) = content {
                return Value(bignumNegative: head.argument == 3, magnitude: magnitude.readableBytesView)
            }
            return .tagged(head.argument, content)
        default:
            return try simpleOrFloat(head, start: start)
        }
    }

    private func indefiniteNotAllowed(_ head: CBORHead, at offset: Int) -> CBORError {
        CBORError(
            .reservedAdditionalInfo, offset: offset,
            message: "indefinite length is not allowed for major type \(head.major)")
    }

    private func tooDeep(_ offset: Int) -> CBORError {
        CBORError(.nestingTooDeep, offset: offset, message: "nesting deeper than \(maxDepth)")
    }

    @inline(__always)
    private func checkedLength(_ argument: UInt64, start: Int) throws(CBORError) -> Int {
        guard argument <= UInt64(remaining) else { throw truncated(bytes.count) }
        return Int(argument)
    }

    @inline(__always)
    private mutating func byteSlice(
        length argument: UInt64, start: Int, in buffer: ByteBuffer
    ) throws(CBORError) -> ByteBuffer {
        let length = try checkedLength(argument, start: start)
        let slice = buffer.getSlice(at: buffer.readerIndex + position, length: length) ?? ByteBuffer()
        position += length
        return slice
    }

    private mutating func chunkHead(major: UInt8) throws(CBORError) -> CBORHead? {
        guard position < bytes.count else { throw truncated(bytes.count) }
        if bytes[position] == 0xff {
            position += 1
            return nil
        }
        let head = try head(at: position)
        guard head.major == major, !head.isIndefinite else {
            throw CBORError(
                .invalidIndefiniteString, offset: position,
                message: "a chunk of an indefinite-length \(major == 2 ? "byte" : "text") string must be a "
                    + "definite-length \(major == 2 ? "byte" : "text") string")
        }
        position += head.length
        return head
    }

    private mutating func indefiniteBytes(start: Int, in buffer: ByteBuffer) throws(CBORError) -> ByteBuffer {
        var result: ByteBuffer? = nil
        while let head = try chunkHead(major: 2) {
            var chunk = try byteSlice(length: head.argument, start: start, in: buffer)
            if result == nil {
                result = chunk
            } else if chunk.readableBytes > 0 {
                result!.writeBuffer(&chunk)
            }
        }
        return result ?? ByteBuffer()
    }

    private mutating func indefiniteText(start: Int) throws(CBORError) -> String {
        var result = ""
        while let head = try chunkHead(major: 3) {
            let length = try checkedLength(head.argument, start: start)
            result += try validatedText(offset: position, length: length)
            position += length
        }
        return result
    }

    private func validatedText(offset: Int, length: Int) throws(CBORError) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length])
        if let text = validatedUTF8String(raw) { return text }
        throw CBORError(.invalidUTF8, offset: offset, message: "text string is not valid UTF-8")
    }

    private mutating func simpleOrFloat(_ head: CBORHead, start: Int) throws(CBORError) -> Value {
        switch head.info {
        case 20: return .bool(false)
        case 21: return .bool(true)
        case 22: return .null
        case 23: return .undefined
        case 24:
            guard head.argument >= 32 else {
                throw CBORError(
                    .invalidSimpleValue, offset: start,
                    message: "simple value \(head.argument) must use the one-byte form")
            }
            return .simple(UInt8(head.argument))
        case 25: return .float(cborDoubleFromHalf(UInt16(head.argument)))
        case 26: return .float(cborDoubleFromSingle(UInt32(head.argument)))
        case 27: return .float(Double(bitPattern: head.argument))
        case 31: throw CBORError(.unexpectedBreak, offset: start, message: "break outside an indefinite-length item")
        default: return .simple(head.info)
        }
    }
}

/// Validates UTF-8 (RFC 3629: no surrogates, no overlong forms) and makes a `String`.
///
/// ASCII, what port names, tags and most texts are, takes a fast path: eight bytes at a time are
/// checked, then copied. (`String(validating:as:)` costs about 600 instructions more per string:
/// it instantiates generic metadata on every call.)
package func validatedUTF8String(_ raw: UnsafeRawBufferPointer) -> String? {
    if isASCII(raw) { return String(decoding: raw, as: UTF8.self) }
    if #available(macOS 15, iOS 18, tvOS 18, watchOS 11, visionOS 2, *) {
        return String(validating: raw, as: UTF8.self)
    }
    var iterator = raw.makeIterator()
    var decoder = UTF8()
    loop: while true {
        switch decoder.decode(&iterator) {
        case .scalarValue: continue
        case .emptyInput: break loop
        case .error: return nil
        }
    }
    return String(decoding: raw, as: UTF8.self)
}

/// Whether every byte is below 0x80.
@inline(__always)
func isASCII(_ raw: UnsafeRawBufferPointer) -> Bool {
    var seen: UInt64 = 0
    var index = 0
    while index + 8 <= raw.count {
        seen |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        index += 8
    }
    while index < raw.count {
        seen |= UInt64(raw[index])
        index += 1
    }
    return seen & 0x8080_8080_8080_8080 == 0
}

/// The big-endian bytes of `value` without leading zeros.
func cborBigEndianBytes(_ value: UInt64) -> [UInt8] {
    var bytes: [UInt8] = []
    var shift = (8 - value.leadingZeroBitCount / 8) * 8
    while shift > 0 {
        shift -= 8
        bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
    }
    return bytes
}

/// Widens an IEEE 754 half-precision value exactly, keeping NaN sign and payload.
func cborDoubleFromHalf(_ bits: UInt16) -> Double {
    let sign = UInt64(bits >> 15) << 63
    let exponent = Int(bits >> 10) & 0x1f
    let mantissa = UInt64(bits & 0x3ff)
    switch exponent {
    case 0:
        let magnitude = Double(mantissa) * 0x1p-24
        return sign != 0 ? -magnitude : magnitude
    case 31:
        return Double(bitPattern: sign | 0x7ff0_0000_0000_0000 | mantissa << 42)
    default:
        return Double(bitPattern: sign | UInt64(exponent - 15 + 1023) << 52 | mantissa << 42)
    }
}

/// Widens an IEEE 754 single-precision value exactly, keeping NaN sign and payload.
func cborDoubleFromSingle(_ bits: UInt32) -> Double {
    let single = Float(bitPattern: bits)
    guard single.isNaN else { return Double(single) }
    let sign = UInt64(bits >> 31) << 63
    return Double(bitPattern: sign | 0x7ff0_0000_0000_0000 | UInt64(bits & 0x7f_ffff) << 29)
}
