import NIOCore

/// Options for ``NIOCore/ByteBuffer/writeJSON(_:options:)``.
///
/// Perl: the settings of the `JSON::XS` object that AnyEvent::MP uses for sending (`encode_json`:
/// UTF-8 output, no pretty-printing, `max_depth` 512).
public struct JSONWriterOptions: Sendable, Equatable {
    /// How a ``Value/bytes(_:)`` string is turned into JSON characters.
    public enum ByteStrings: Sendable, Equatable {
        /// Every byte is one character U+0000...U+00FF, exactly as JSON::XS treats a Perl byte string
        /// (so `caf\xe9` becomes `"café"` and the bytes `e2 82 ac` become the three characters
        /// `â\u0082¬`). A Perl peer gets back a string equal (`eq`) to the one a Perl sender had.
        case latin1
        /// Bytes that form valid UTF-8 are written as that text; other byte strings fall back to
        /// ``latin1``. Use this when `.bytes` values hold UTF-8 text produced on the Swift side.
        case utf8OrLatin1
    }

    /// How byte strings are written (default ``ByteStrings/latin1``, the Perl behaviour).
    public var byteStrings: ByteStrings
    /// The deepest nesting of arrays and maps that is written (default 512, JSON::XS's `max_depth`).
    public var maxDepth: Int

    /// Creates options.
    /// - Parameters:
    ///   - byteStrings: How byte strings are written.
    ///   - maxDepth: The deepest nesting of arrays and maps that is written.
    public init(byteStrings: ByteStrings = .latin1, maxDepth: Int = 512) {
        self.byteStrings = byteStrings
        self.maxDepth = maxDepth
    }
}

extension ByteBuffer {
    /// Appends `value` as one JSON text: UTF-8, without any newline or other whitespace.
    ///
    /// Perl: `JSON::XS::encode_json` as used by AnyEvent::MP's `json` framing and by
    /// `AnyEvent::Handle::push_write (json => ...)`.
    ///
    /// - Integers (``Value/int(_:)``, ``Value/uint(_:)``, ``Value/bignum(negative:magnitude:)``) are
    ///   written as exact decimal digits.
    /// - Floats use Swift's shortest round-trip form, which keeps `.0` on integral values (`1.0`) so
    ///   that a Perl peer decodes a double, not an integer. (JSON::XS itself writes `%.15g`.)
    /// - Strings escape `"`, `\` and the control characters (`\b \f \n \r \t`, others as `\u00XX`);
    ///   `/` and non-ASCII characters are written raw as UTF-8, as JSON::XS does.
    /// - Byte strings follow ``JSONWriterOptions/byteStrings`` (Latin-1 by default, as in Perl).
    /// - ``Value/undefined`` is written as `null` (Perl's JSON::XS cannot encode
    ///   `Types::Serialiser::error` at all; `null` is the nearest JSON value).
    ///
    /// On error nothing is appended: the buffer is left as it was.
    ///
    /// - Parameters:
    ///   - value: The value to write.
    ///   - options: Writer options.
    /// - Returns: The number of bytes written.
    /// - Throws: ``JSONError`` with ``JSONError/Code/nonFiniteNumber`` for NaN and infinities,
    ///   ``JSONError/Code/unsupportedValue`` for tags and CBOR simple values,
    ///   ``JSONError/Code/invalidKey`` for a map key that is not a string, and
    ///   ``JSONError/Code/nestingTooDeep`` beyond ``JSONWriterOptions/maxDepth``.
    @discardableResult
    public mutating func writeJSON(_ value: Value, options: JSONWriterOptions = .init()) throws(JSONError) -> Int {
        let start = writerIndex
        do {
            try writeJSONValue(value, options: options, depth: 0, start: start)
        } catch {
            moveWriterIndex(to: start)
            throw error
        }
        return writerIndex - start
    }

    private mutating func writeJSONValue(
        _ value: Value, options: JSONWriterOptions, depth: Int, start: Int
    ) throws(JSONError) {
        switch value {
        case .null, .undefined:
            writeStaticString("null")
        case .bool(let b):
            writeStaticString(b ? "true" : "false")
        case .int(let i):
            writeJSONDecimal(i.magnitude, negative: i < 0)
        case .uint(let u):
            writeJSONDecimal(u, negative: false)
        case .bignum(let negative, let magnitude):
            writeJSONBignum(negative: negative, magnitude: magnitude)
        case .float(let d):
            guard d.isFinite else {
                throw JSONError(.nonFiniteNumber, offset: writerIndex - start, "JSON cannot carry the float \(d)")
            }
            writeString(d.description)
        case .text(let s):
            writeJSONText(s)
        case .bytes(let b):
            writeJSONByteString(b, options: options)
        case .array(let elements):
            guard depth < options.maxDepth else {
                throw JSONError(.nestingTooDeep, offset: writerIndex - start,
                                "arrays and maps nested deeper than \(options.maxDepth)")
            }
            writeInteger(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { writeInteger(UInt8(ascii: ",")) }
                first = false
                try writeJSONValue(element, options: options, depth: depth + 1, start: start)
            }
            writeInteger(UInt8(ascii: "]"))
        case .map(let pairs):
            guard depth < options.maxDepth else {
                throw JSONError(.nestingTooDeep, offset: writerIndex - start,
                                "arrays and maps nested deeper than \(options.maxDepth)")
            }
            writeInteger(UInt8(ascii: "{"))
            var first = true
            for pair in pairs {
                if !first { writeInteger(UInt8(ascii: ",")) }
                first = false
                switch pair.key {
                case .text(let s): writeJSONText(s)
                case .bytes(let b): writeJSONByteString(b, options: options)
                default:
                    throw JSONError(.invalidKey, offset: writerIndex - start,
                                    "JSON map keys must be strings, not \(pair.key)")
                }
                writeInteger(UInt8(ascii: ":"))
                try writeJSONValue(pair.value, options: options, depth: depth + 1, start: start)
            }
            writeInteger(UInt8(ascii: "}"))
        case .tagged(let tag, _):
            throw JSONError(.unsupportedValue, offset: writerIndex - start, "JSON cannot carry CBOR tag \(tag)")
        case .simple(let s):
            throw JSONError(.unsupportedValue, offset: writerIndex - start, "JSON cannot carry CBOR simple value \(s)")
        }
    }

    /// Writes `magnitude` in decimal, with a leading `-` when `negative`.
    mutating func writeJSONDecimal(_ magnitude: UInt64, negative: Bool) {
        // Digits from the right into 24 bytes on the stack (20 digits and a sign at most), then one write.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            var index = raw.count
            var n = magnitude
            repeat {
                index -= 1
                raw[index] = UInt8(truncatingIfNeeded: n % 10) &+ UInt8(ascii: "0")
                n /= 10
            } while n > 0
            if negative {
                index -= 1
                raw[index] = UInt8(ascii: "-")
            }
            writeBytes(UnsafeRawBufferPointer(rebasing: raw[index...]))
        }
    }

    private mutating func writeJSONBignum(negative: Bool, magnitude: [UInt8]) {
        // The value is `magnitude` or `-1 - magnitude`: print `magnitude + 1` after the minus sign.
        var limbs = JSONBigDecimal.limbs(fromBigEndian: magnitude)
        if negative { JSONBigDecimal.increment(&limbs) }
        if negative { writeInteger(UInt8(ascii: "-")) }
        JSONBigDecimal.writeDecimal(limbs, into: &self)
    }

    /// Writes a text string as a JSON string.
    mutating func writeJSONText(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in writeJSONStringBody(utf8, latin1: false) }
    }

    private mutating func writeJSONByteString(_ bytes: ByteBuffer, options: JSONWriterOptions) {
        bytes.withUnsafeReadableBytes { raw in
            let utf8 = raw.bindMemory(to: UInt8.self)
            let asText: Bool
            switch options.byteStrings {
            case .latin1: asText = false
            case .utf8OrLatin1: asText = validatedUTF8String(raw) != nil
            }
            writeJSONStringBody(utf8, latin1: !asText)
        }
    }

    /// Whether `input` has no byte that JSON requires escaped: no control character, `"` or `\`,
    /// nor (for Latin-1 input) a byte from 0x80. Eight bytes at a time (``jsonWordNeedsEscape(_:)``).
    @inline(__always)
    static func needsNoEscape(_ input: UnsafeBufferPointer<UInt8>, latin1: Bool) -> Bool {
        let raw = UnsafeRawBufferPointer(input)
        var index = 0
        while index + 8 <= raw.count {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            if jsonWordNeedsEscape(word) || (latin1 && word & 0x8080_8080_8080_8080 != 0) { return false }
            index += 8
        }
        while index < raw.count {
            let byte = raw[index]
            if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || (latin1 && byte >= 0x80) {
                return false
            }
            index += 1
        }
        return true
    }

    /// Writes `"..."` for UTF-8 (or, when `latin1`, Latin-1) input, escaping what JSON requires.
    private mutating func writeJSONStringBody(_ input: UnsafeBufferPointer<UInt8>, latin1: Bool) {
        // Most strings need no escape: then the quotes and the bytes go out in one write.
        if Self.needsNoEscape(input, latin1: latin1) {
            writeWithUnsafeMutableBytes(minimumWritableBytes: input.count + 2) { raw in
                raw[0] = UInt8(ascii: "\"")
                if let source = input.baseAddress { (raw.baseAddress! + 1).copyMemory(from: source, byteCount: input.count) }
                raw[input.count + 1] = UInt8(ascii: "\"")
                return input.count + 2
            }
            return
        }
        reserveCapacity(minimumWritableBytes: input.count + 2)
        writeInteger(UInt8(ascii: "\""))
        var runStart = 0
        var index = 0
        while index < input.count {
            let byte = input[index]
            let needsWork = byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
                || (latin1 && byte >= 0x80)
            if !needsWork {
                index += 1
                continue
            }
            if runStart < index {
                writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: input[runStart..<index])))
            }
            switch byte {
            case UInt8(ascii: "\""): writeStaticString("\\\"")
            case UInt8(ascii: "\\"): writeStaticString("\\\\")
            case 0x08: writeStaticString("\\b")
            case 0x0C: writeStaticString("\\f")
            case 0x0A: writeStaticString("\\n")
            case 0x0D: writeStaticString("\\r")
            case 0x09: writeStaticString("\\t")
            case 0x80...:
                writeMultipleIntegers(0xC0 | (byte >> 6), 0x80 | (byte & 0x3F))
            default:
                let hex: StaticString = "0123456789abcdef"
                let digits = hex.utf8Start
                writeMultipleIntegers(
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                    digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]
                )
            }
            index += 1
            runStart = index
        }
        if runStart < input.count {
            writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: input[runStart..<input.count])))
        }
        writeInteger(UInt8(ascii: "\""))
    }
}

/// Arbitrary-precision helpers for decimal text of bignums (little-endian base-2^32 limbs).
enum JSONBigDecimal {
    /// Limbs (least significant first) of a big-endian magnitude.
    static func limbs(fromBigEndian bytes: [UInt8]) -> [UInt32] {
        var limbs: [UInt32] = []
        limbs.reserveCapacity(bytes.count / 4 + 1)
        var index = bytes.count
        while index > 0 {
            var limb: UInt32 = 0
            let low = max(0, index - 4)
            for i in low..<index { limb = limb << 8 | UInt32(bytes[i]) }
            limbs.append(limb)
            index = low
        }
        trim(&limbs)
        return limbs
    }

    /// Big-endian bytes without leading zeros (empty for zero).
    static func bigEndianBytes(_ limbs: [UInt32]) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(limbs.count * 4)
        for limb in limbs.reversed() {
            bytes.append(UInt8(truncatingIfNeeded: limb >> 24))
            bytes.append(UInt8(truncatingIfNeeded: limb >> 16))
            bytes.append(UInt8(truncatingIfNeeded: limb >> 8))
            bytes.append(UInt8(truncatingIfNeeded: limb))
        }
        if let first = bytes.firstIndex(where: { $0 != 0 }) {
            bytes.removeFirst(first)
        } else {
            bytes.removeAll()
        }
        return bytes
    }

    static func trim(_ limbs: inout [UInt32]) {
        while let last = limbs.last, last == 0 { limbs.removeLast() }
    }

    static func increment(_ limbs: inout [UInt32]) {
        for i in limbs.indices {
            let (sum, overflow) = limbs[i].addingReportingOverflow(1)
            limbs[i] = sum
            if !overflow { return }
        }
        limbs.append(1)
    }

    static func decrement(_ limbs: inout [UInt32]) {
        for i in limbs.indices {
            let (difference, borrow) = limbs[i].subtractingReportingOverflow(1)
            limbs[i] = difference
            if !borrow { break }
        }
        trim(&limbs)
    }

    /// `limbs = limbs * multiplier + addend`.
    static func multiplyAdd(_ limbs: inout [UInt32], _ multiplier: UInt32, _ addend: UInt32) {
        var carry = UInt64(addend)
        for i in limbs.indices {
            let product = UInt64(limbs[i]) * UInt64(multiplier) + carry
            limbs[i] = UInt32(truncatingIfNeeded: product)
            carry = product >> 32
        }
        if carry != 0 { limbs.append(UInt32(carry)) }
    }

    /// Writes the decimal digits of `limbs` (at least `0`).
    static func writeDecimal(_ limbs: [UInt32], into buffer: inout ByteBuffer) {
        var limbs = limbs
        trim(&limbs)
        if limbs.isEmpty {
            buffer.writeInteger(UInt8(ascii: "0"))
            return
        }
        // Repeated division by 10^9 yields 9-digit groups, least significant first.
        var groups: [UInt32] = []
        while !limbs.isEmpty {
            var remainder: UInt64 = 0
            for i in stride(from: limbs.count - 1, through: 0, by: -1) {
                let current = remainder << 32 | UInt64(limbs[i])
                limbs[i] = UInt32(current / 1_000_000_000)
                remainder = current % 1_000_000_000
            }
            groups.append(UInt32(remainder))
            trim(&limbs)
        }
        buffer.writeJSONDecimal(UInt64(groups[groups.count - 1]), negative: false)
        for group in groups.dropLast().reversed() {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0)
            var n = group
            withUnsafeMutableBytes(of: &digits) { raw in
                for i in stride(from: 8, through: 0, by: -1) {
                    raw[i] = UInt8(ascii: "0") + UInt8(n % 10)
                    n /= 10
                }
                buffer.writeBytes(UnsafeRawBufferPointer(raw))
            }
        }
    }
}

/// Whether any of the eight bytes of `word` is a control character, `"` or `\`: the bytes JSON
/// strings must escape. The word tests of "Bit Twiddling Hacks": a byte below 0x20, and a zero
/// byte after XOR with the byte looked for (both exact as tests for "any byte").
@inline(__always)
func jsonWordNeedsEscape(_ word: UInt64) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let quotes = word ^ 0x2222_2222_2222_2222
    let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
    let control = (word &- 0x20 &* ones) & ~word
    let quote = (quotes &- ones) & ~quotes
    let backslash = (backslashes &- ones) & ~backslashes
    return (control | quote | backslash) & 0x8080_8080_8080_8080 != 0
}
