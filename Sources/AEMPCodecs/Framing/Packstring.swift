import NIOCore

/// A Perl `pack` integer format used as a packstring length prefix: one of `c C s S l L q Q i I n N
/// v V j J w`, optionally with the `!`, `<` and `>` modifiers.
///
/// Perl: the `$format` of `AnyEvent::Handle`'s `packstring` read and write types. Sizes and byte
/// orders are Perl's on x86_64 Linux (the reference platform): `c`/`C` 1 byte; `s`/`S` 2; `l`/`L` 4
/// (`l!`/`L!` 8, a C `long`); `i`/`I` 4; `q`/`Q`/`j`/`J` 8; native order little-endian; `n`/`N` big-endian
/// 16/32 bits and `v`/`V` little-endian 16/32 bits, unsigned, signed with `!`; `<` and `>` force
/// little or big endian on `sSiIlLqQjJ`; `w` is a BER compressed integer. Combinations Perl's `pack`
/// rejects (`!` on `cCqQjJw`, `<`/`>` on `cCnNvVw`, both `<` and `>`) are rejected here too.
public struct PackFormat: Sendable, Hashable, CustomStringConvertible {
    /// How the length is encoded.
    public enum Encoding: Sendable, Hashable {
        /// A fixed-size two's-complement integer.
        case fixed(size: Int, signed: Bool, bigEndian: Bool)
        /// A BER compressed integer (`pack "w"`): base-128 digits, most significant first, all but
        /// the last with the high bit set.
        case ber
    }

    /// The format string as given (`"N"`, `"S<"`, `"w"`).
    public let format: String
    /// The encoding the format stands for.
    public let encoding: Encoding

    /// Parses a Perl pack format.
    /// - Parameter format: One integer letter plus optional `!`, `<`, `>` modifiers.
    /// - Throws: ``FramingError`` with ``FramingError/Code/invalidFormat`` when Perl's `pack` would
    ///   reject the format or it is not a single integer.
    public init(_ format: String) throws(FramingError) {
        let scalars = Array(format.unicodeScalars)
        guard let letter = scalars.first else {
            throw FramingError(.invalidFormat, "empty pack format")
        }
        var bang = false
        var little = false
        var big = false
        for modifier in scalars.dropFirst() {
            switch modifier {
            case "!" where !bang: bang = true
            case "<" where !little: little = true
            case ">" where !big: big = true
            default:
                throw FramingError(.invalidFormat, "pack format \(format.debugDescription) is not one integer with modifiers")
            }
        }
        if little && big {
            throw FramingError(.invalidFormat, "can't use both '<' and '>' in pack format \(format.debugDescription)")
        }
        let bangAllowed = "sSiIlLnNvV".unicodeScalars.contains(letter)
        let orderAllowed = "sSiIlLqQjJ".unicodeScalars.contains(letter)
        if bang && !bangAllowed {
            throw FramingError(.invalidFormat, "'!' allowed only after types sSiIlLnNvV in pack format \(format.debugDescription)")
        }
        if (little || big) && !orderAllowed {
            throw FramingError(.invalidFormat, "'\(little ? "<" : ">")' allowed only after types sSiIlLqQjJ in pack format \(format.debugDescription)")
        }
        let encoding: Encoding
        switch letter {
        case "c": encoding = .fixed(size: 1, signed: true, bigEndian: false)
        case "C": encoding = .fixed(size: 1, signed: false, bigEndian: false)
        case "s": encoding = .fixed(size: 2, signed: true, bigEndian: big)
        case "S": encoding = .fixed(size: 2, signed: false, bigEndian: big)
        case "l": encoding = .fixed(size: bang ? 8 : 4, signed: true, bigEndian: big)
        case "L": encoding = .fixed(size: bang ? 8 : 4, signed: false, bigEndian: big)
        case "i": encoding = .fixed(size: 4, signed: true, bigEndian: big)
        case "I": encoding = .fixed(size: 4, signed: false, bigEndian: big)
        case "q", "j": encoding = .fixed(size: 8, signed: true, bigEndian: big)
        case "Q", "J": encoding = .fixed(size: 8, signed: false, bigEndian: big)
        case "n": encoding = .fixed(size: 2, signed: bang, bigEndian: true)
        case "N": encoding = .fixed(size: 4, signed: bang, bigEndian: true)
        case "v": encoding = .fixed(size: 2, signed: bang, bigEndian: false)
        case "V": encoding = .fixed(size: 4, signed: bang, bigEndian: false)
        case "w": encoding = .ber
        default:
            throw FramingError(.invalidFormat, "pack format \(format.debugDescription) is not one of cCsSlLqQiInNvVjJw")
        }
        self.format = format
        self.encoding = encoding
    }

    /// The prefix size in bytes, or nil for the variable-size `w`.
    public var prefixSize: Int? {
        if case .fixed(let size, _, _) = encoding { return size }
        return nil
    }

    /// The largest length the prefix can carry (`Int.max` for `w` and the unsigned 64-bit formats).
    public var maxLength: Int {
        switch encoding {
        case .ber: return .max
        case .fixed(let size, let signed, _):
            let bits = size * 8 - (signed ? 1 : 0)
            return bits >= 63 ? .max : (1 << bits) - 1
        }
    }

    /// The format string.
    public var description: String { format }

    /// Appends the encoding of `length`.
    ///
    /// Perl wraps lengths that do not fit (and `push_write` croaks for `c`/`C` only); here every
    /// length outside `0...maxLength` is an error, so a peer never reads a wrong length.
    /// - Parameters:
    ///   - length: The payload length.
    ///   - buffer: The buffer to append to.
    /// - Returns: The number of bytes written.
    /// - Throws: ``FramingError`` with ``FramingError/Code/lengthNotRepresentable``.
    @discardableResult
    public func writeLength(_ length: Int, into buffer: inout ByteBuffer) throws(FramingError) -> Int {
        guard length >= 0, length <= maxLength else {
            throw FramingError(.lengthNotRepresentable, "length \(length) does not fit the pack format \(format.debugDescription)")
        }
        switch encoding {
        case .ber:
            return BER.write(UInt64(length), into: &buffer)
        case .fixed(let size, _, let bigEndian):
            let value = UInt64(length)
            for i in 0..<size {
                let shift = bigEndian ? (size - 1 - i) * 8 : i * 8
                buffer.writeInteger(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            }
            return size
        }
    }

    /// Reads a length prefix at the start of `buffer`'s readable bytes without consuming it.
    /// - Parameter buffer: The input.
    /// - Returns: The length and the prefix size, or nil when the prefix is incomplete.
    /// - Throws: ``FramingError`` with ``FramingError/Code/negativeLength`` (signed formats),
    ///   ``FramingError/Code/tooLarge`` (beyond `Int.max`) or ``FramingError/Code/nonMinimalBER``.
    public func readLength(from buffer: ByteBuffer) throws(FramingError) -> (length: Int, prefixSize: Int)? {
        switch encoding {
        case .ber:
            guard let (value, size) = try BER.read(from: buffer, strict: true) else { return nil }
            guard value <= UInt64(Int.max) else {
                throw FramingError(.tooLarge, "BER length \(value) exceeds Int.max")
            }
            return (Int(value), size)
        case .fixed(let size, let signed, let bigEndian):
            guard buffer.readableBytes >= size else { return nil }
            var value: UInt64 = 0
            let base = buffer.readerIndex
            for i in 0..<size {
                let byte = UInt64(buffer.getInteger(at: base + i, as: UInt8.self)!)
                let shift = bigEndian ? (size - 1 - i) * 8 : i * 8
                value |= byte << UInt64(shift)
            }
            if signed && value >> UInt64(size * 8 - 1) & 1 == 1 {
                let extended = size == 8 ? Int64(bitPattern: value) : Int64(bitPattern: value | ~0 << UInt64(size * 8))
                throw FramingError(.negativeLength, "packstring prefix \(format.debugDescription) holds the negative length \(extended)")
            }
            guard value <= UInt64(Int.max) else {
                throw FramingError(.tooLarge, "packstring length \(value) exceeds Int.max")
            }
            return (Int(value), size)
        }
    }
}

/// BER compressed integers, Perl's `pack "w"` / `unpack "w"`.
public enum BER {
    /// Appends `value` in the minimal BER form.
    /// - Parameters:
    ///   - value: The value.
    ///   - buffer: The buffer to append to.
    /// - Returns: The number of bytes written (1...10).
    @discardableResult
    public static func write(_ value: UInt64, into buffer: inout ByteBuffer) -> Int {
        var groups = 1
        while groups < 10 && value >> UInt64(7 * groups) != 0 { groups += 1 }
        for i in stride(from: groups - 1, through: 0, by: -1) {
            let digit = UInt8(truncatingIfNeeded: value >> UInt64(7 * i)) & 0x7F
            buffer.writeInteger(i == 0 ? digit : digit | 0x80)
        }
        return groups
    }

    /// Reads a BER integer at the start of `buffer`'s readable bytes without consuming it.
    /// - Parameters:
    ///   - buffer: The input.
    ///   - strict: Reject a redundant leading `0x80` group (Perl's `unpack` accepts it).
    /// - Returns: The value and its size in bytes, or nil when the integer is unterminated so far.
    /// - Throws: ``FramingError`` with ``FramingError/Code/tooLarge`` for values beyond `UInt64`,
    ///   or ``FramingError/Code/nonMinimalBER`` when `strict`.
    public static func read(from buffer: ByteBuffer, strict: Bool = true) throws(FramingError) -> (value: UInt64, size: Int)? {
        var value: UInt64 = 0
        var index = 0
        let base = buffer.readerIndex
        while index < buffer.readableBytes {
            let byte = buffer.getInteger(at: base + index, as: UInt8.self)!
            if strict && index == 0 && byte == 0x80 {
                throw FramingError(.nonMinimalBER, offset: 0, "BER integer has a redundant leading 0x80 group")
            }
            guard value >> 57 == 0 else {
                throw FramingError(.tooLarge, offset: index, "BER integer exceeds 64 bits")
            }
            value = value << 7 | UInt64(byte & 0x7F)
            index += 1
            if byte & 0x80 == 0 { return (value, index) }
        }
        return nil
    }
}

extension ByteBuffer {
    /// Appends `payload` with a length prefix in `format`.
    ///
    /// Perl: `AnyEvent::Handle::push_write (packstring => $format, $data)` (`pack "$format/a*"`).
    /// - Parameters:
    ///   - payload: The bytes to frame (its readable bytes; it is not modified).
    ///   - format: The length prefix format.
    /// - Returns: The number of bytes written.
    /// - Throws: ``FramingError`` with ``FramingError/Code/lengthNotRepresentable`` when the length
    ///   does not fit the prefix (nothing is written then).
    @discardableResult
    public mutating func writePackstring(_ payload: ByteBuffer, format: PackFormat) throws(FramingError) -> Int {
        let start = writerIndex
        try format.writeLength(payload.readableBytes, into: &self)
        writeImmutableBuffer(payload)
        return writerIndex - start
    }
}

/// Decodes length-prefixed packstrings from a byte stream.
///
/// Perl: `AnyEvent::Handle::push_read (packstring => $format, $cb)`. Differences, all deliberate:
/// - A negative length from a signed format is an error (Perl hands out data without consuming it
///   and loops forever when the read is re-armed).
/// - A non-minimal BER prefix (`80 00`) is an error (Perl decodes 0 but then skips only
///   `length(pack "w", 0)` = 1 byte and reads a second, bogus frame).
/// - A length above ``maxLength`` is an error as soon as the prefix is read (Perl waits).
/// - At the end of the stream a partial frame is ``FramingError/Code/truncated`` (Perl: `EPIPE`).
/// - Errors leave the reader index unmoved; the stream cannot be resumed.
public struct PackstringDecoder: NIOSingleStepByteToMessageDecoder {
    /// The payload of one frame (a slice of the input).
    public typealias InboundOut = ByteBuffer

    /// The length prefix format.
    public var format: PackFormat
    /// The largest accepted payload in bytes.
    public var maxLength: Int

    /// Creates a decoder.
    /// - Parameters:
    ///   - format: The length prefix format.
    ///   - maxLength: The largest accepted payload in bytes (default 64 MiB).
    public init(format: PackFormat, maxLength: Int = 64 << 20) {
        self.format = format
        self.maxLength = maxLength
    }

    /// Decodes the next frame's payload, or returns nil when more bytes are needed (the reader index
    /// is then unmoved).
    /// - Parameter buffer: The accumulated input.
    /// - Returns: The payload, or nil.
    /// - Throws: ``FramingError`` for a negative, oversized or malformed length.
    public mutating func next(from buffer: inout ByteBuffer) throws(FramingError) -> ByteBuffer? {
        guard let (length, prefixSize) = try format.readLength(from: buffer) else {
            if case .ber = format.encoding, buffer.readableBytes > 10 {
                throw FramingError(.tooLarge, offset: 10, "BER length prefix longer than 10 bytes")
            }
            return nil
        }
        guard length <= maxLength else {
            throw FramingError(.tooLarge, "packstring length \(length) exceeds the maximum \(maxLength)")
        }
        guard buffer.readableBytes - prefixSize >= length else { return nil }
        buffer.moveReaderIndex(forwardBy: prefixSize)
        return buffer.readSlice(length: length)!
    }

    /// Like ``next(from:)`` for a stream that has ended: a partial frame is an error.
    /// - Parameter buffer: The remaining input.
    /// - Returns: The payload, or nil when the buffer is empty.
    /// - Throws: ``FramingError`` (``FramingError/Code/truncated`` for a partial frame).
    public mutating func finish(from buffer: inout ByteBuffer) throws(FramingError) -> ByteBuffer? {
        if let payload = try next(from: &buffer) { return payload }
        guard buffer.readableBytes == 0 else {
            throw FramingError(.truncated, offset: buffer.readableBytes, "the input ended inside a packstring")
        }
        return nil
    }

    /// `NIOSingleStepByteToMessageDecoder`: ``next(from:)``.
    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        try next(from: &buffer)
    }

    /// `NIOSingleStepByteToMessageDecoder`: ``finish(from:)`` after EOF, else ``next(from:)``.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        seenEOF ? try finish(from: &buffer) : try next(from: &buffer)
    }
}
