import NIOCore

extension ByteBuffer {
    /// Appends `payload` as a netstring: `<decimal length>:<payload>,`.
    ///
    /// Perl: `AnyEvent::Handle::push_write (netstring => $string)`. Perl counts characters and sends
    /// characters U+0080...U+00FF as single Latin-1 bytes; here the payload is already bytes, so the
    /// length counts bytes. (Perl writes `undef` as the invalid `:,`; there is no Swift counterpart.)
    /// - Parameter payload: The bytes to frame (its readable bytes; it is not modified).
    /// - Returns: The number of bytes written.
    @discardableResult
    public mutating func writeNetstring(_ payload: ByteBuffer) -> Int {
        let start = writerIndex
        writeJSONDecimal(UInt64(payload.readableBytes), negative: false)
        writeInteger(UInt8(ascii: ":"))
        writeImmutableBuffer(payload)
        writeInteger(UInt8(ascii: ","))
        return writerIndex - start
    }

    /// Appends `bytes` as a netstring: `<decimal length>:<bytes>,`.
    /// - Parameter bytes: The bytes to frame.
    /// - Returns: The number of bytes written.
    @discardableResult
    public mutating func writeNetstring<Bytes: Collection>(bytes: Bytes) -> Int where Bytes.Element == UInt8 {
        let start = writerIndex
        writeJSONDecimal(UInt64(bytes.count), negative: false)
        writeInteger(UInt8(ascii: ":"))
        writeBytes(bytes)
        writeInteger(UInt8(ascii: ","))
        return writerIndex - start
    }
}

/// Decodes netstrings (`<length>:<payload>,`) from a byte stream, strictly.
///
/// Perl: `AnyEvent::Handle::push_read (netstring => $cb)`. Like Perl, the length must be `0` or
/// decimal digits without a leading zero, directly followed by `:`, and the payload by `,`;
/// violations are errors (Perl: non-fatal `EBADMSG`). Differences, all deliberate:
/// - A length above ``maxLength`` is an error as soon as its digits show it (Perl waits for any
///   length, even 10^20 bytes).
/// - Errors leave the reader index unmoved, and the stream cannot be resumed. (Perl consumes a
///   payload whose terminator is wrong and leaves the handle open; a malformed length stays in its
///   buffer and is reported again on every read.)
/// - At the end of the stream a partial netstring is ``FramingError/Code/truncated`` (Perl: fatal
///   `EPIPE`).
///
/// The header is at most a few digits, so re-reading it on each call costs O(1): nothing is rescanned.
public struct NetstringDecoder: NIOSingleStepByteToMessageDecoder {
    /// The payload of one netstring (a slice of the input).
    public typealias InboundOut = ByteBuffer

    /// The largest accepted payload in bytes.
    public var maxLength: Int

    /// Creates a decoder.
    /// - Parameter maxLength: The largest accepted payload in bytes (default 64 MiB).
    public init(maxLength: Int = 64 << 20) {
        self.maxLength = maxLength
    }

    /// Decodes the next netstring's payload, or returns nil when more bytes are needed (the reader
    /// index is then unmoved).
    /// - Parameter buffer: The accumulated input.
    /// - Returns: The payload, or nil.
    /// - Throws: ``FramingError`` for a malformed or oversized netstring.
    public mutating func next(from buffer: inout ByteBuffer) throws(FramingError) -> ByteBuffer? {
        let readable = buffer.readableBytes
        guard readable > 0 else { return nil }
        let base = buffer.readerIndex
        var length = 0
        var index = 0
        while true {
            guard index < readable else { return nil }
            let byte = buffer.getInteger(at: base + index, as: UInt8.self)!
            if byte == UInt8(ascii: ":") {
                guard index > 0 else {
                    throw FramingError(.invalidLength, offset: index, "netstring length is empty")
                }
                break
            }
            guard byte &- UInt8(ascii: "0") < 10 else {
                throw FramingError(.invalidLength, offset: index,
                                   "netstring length contains the byte 0x\(String(byte, radix: 16))")
            }
            if index == 1 && length == 0 {
                throw FramingError(.invalidLength, offset: index, "netstring length has a leading zero")
            }
            let digit = Int(byte - UInt8(ascii: "0"))
            if length > maxLength / 10 || length * 10 > maxLength - digit {
                throw FramingError(.tooLarge, offset: index, "netstring longer than \(maxLength) bytes")
            }
            length = length * 10 + digit
            index += 1
        }
        let payloadStart = index + 1
        guard readable - payloadStart > length else { return nil }
        guard buffer.getInteger(at: base + payloadStart + length, as: UInt8.self) == UInt8(ascii: ",") else {
            throw FramingError(.missingTerminator, offset: payloadStart + length, "netstring payload is not followed by ','")
        }
        buffer.moveReaderIndex(forwardBy: payloadStart)
        let payload = buffer.readSlice(length: length)!
        buffer.moveReaderIndex(forwardBy: 1)
        return payload
    }

    /// Like ``next(from:)`` for a stream that has ended: a partial netstring is an error.
    /// - Parameter buffer: The remaining input.
    /// - Returns: The payload, or nil when the buffer is empty.
    /// - Throws: ``FramingError`` (``FramingError/Code/truncated`` for a partial netstring).
    public mutating func finish(from buffer: inout ByteBuffer) throws(FramingError) -> ByteBuffer? {
        if let payload = try next(from: &buffer) { return payload }
        guard buffer.readableBytes == 0 else {
            throw FramingError(.truncated, offset: buffer.readableBytes, "the input ended inside a netstring")
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
