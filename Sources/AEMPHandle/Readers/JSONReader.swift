import AEMPCodecs
import NIOCore

/// Reads one JSON text and returns it as a ``Value``.
///
/// Perl: `push_read (json => $cb)`, which feeds the read buffer to JSON::XS's incremental parser.
/// The text is decoded by ``JSONStreamDecoder``, which keeps its state between calls, so no byte is
/// scanned twice however the text is split. Perl's buffer behaviour is kept:
/// - a partial text moves out of the read buffer into the reader (the buffer is empty while it
///   waits, and at `EPIPE`);
/// - exactly one text is returned per read; the bytes after it stay in the read buffer, including
///   the whitespace that follows it;
/// - top-level scalars are accepted (JSON::XS 4 enables `allow_nonref`), and a top-level number or
///   literal ends where the available bytes end, so `4` followed later by `2` are two texts;
/// - malformed input is a non-fatal `EBADMSG` that keeps the read queued; the bad text is skipped
///   first, with JSON::XS's idea of where a text ends (the matching bracket, or for garbage outside
///   brackets the next whitespace or the end of the bytes). When that end has not arrived yet, the
///   reader drops bytes until it does and only then reports the error, as JSON::XS does.
///
/// Differences from Perl: the decoder's own (see ``JSONStreamDecoder``); by default the bare
/// `inf`/`nan` words are rejected, as JSON::XS does. Perl keeps a partial text in one decoder per
/// handle, shared by all `json` reads; here each read holds its own, so a partial text goes away
/// with its read (an async read that is cancelled, say) instead of passing to the next `json` read.
public struct JSONReader: HandleReader, @unchecked Sendable {
    // @unchecked: every stored property is a value made of Sendable parts (the decoder's state is
    // plain values); a reader is used by one handle on its event loop.

    /// The decoder options used by ``init()``: top-level scalars allowed, non-finite words rejected.
    public static let defaultOptions = JSONStreamDecoder.Options(allowScalars: true, allowNonFiniteNumbers: false)

    private var decoder: JSONStreamDecoder
    /// The partial text moved out of the read buffer; the decoder's positions are relative to it.
    private var pending: ByteBuffer?
    /// After an error: where the bad text ends is still being looked for.
    private var skipping: JSONTextBoundary?

    /// Creates a JSON reader with ``defaultOptions``.
    public init() {
        self.init(options: Self.defaultOptions)
    }

    /// Creates a JSON reader with the given decoder options.
    /// - Parameter options: limits and leniencies of the decoder.
    public init(options: JSONStreamDecoder.Options) {
        self.decoder = JSONStreamDecoder(options: options)
    }

    /// Returns the next JSON text once it is complete.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> Value? {
        if skipping != nil {
            try skipBadText(&buffer)
            return nil
        }
        if var work = pending.take(), work.readableBytes > 0 {
            // The decoder holds a partial text: append the new bytes (one copy, as Perl's
            // incremental parser does) and go on where it stopped. `take()` leaves `work` the only
            // reference, so the append does not copy the held bytes.
            let incoming = buffer.readableBytes
            work.writeImmutableBuffer(buffer)
            let value: Value?
            do {
                value = try decoder.next(from: &work)
            } catch {
                try reportBadText(in: &work, incoming: incoming, buffer: &buffer)
                return nil
            }
            guard let value else {
                buffer.moveReaderIndex(forwardBy: incoming)
                pending = work
                return nil
            }
            giveBack(work, incoming: incoming, to: &buffer)
            return value
        }
        if let value = try topLevelScalar(&buffer) { return value }
        var work = buffer
        let value: Value?
        do {
            value = try decoder.next(from: &work)
        } catch {
            let incoming = buffer.readableBytes
            try reportBadText(in: &work, incoming: incoming, buffer: &buffer)
            return nil
        }
        if let value {
            buffer.moveReaderIndex(to: work.readerIndex)
            return value
        }
        // Partial: the reader keeps it (it shares storage with the read buffer, no copy).
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        if work.readableBytes > 0 { pending = work }
        return nil
    }

    /// A top-level number or literal ends at the first byte that cannot continue it, or at the end
    /// of the available bytes (JSON::XS's incremental parser); it is decoded on its own.
    /// - Returns: the scalar, or `nil` when the next text is not a number or literal.
    private mutating func topLevelScalar(_ buffer: inout ByteBuffer) throws(HandleError) -> Value? {
        let found: (start: Int, end: Int)? = buffer.withUnsafeReadableBytes { raw in
            var start = 0
            while start < raw.count, JSONTextBoundary.isWhitespace(raw[start]) { start += 1 }
            guard start < raw.count, JSONTextBoundary.startsScalar(raw[start]) else { return nil }
            var boundary = JSONTextBoundary()
            let end = boundary.scan(UnsafeRawBufferPointer(rebasing: raw[start...])) ?? (raw.count - start)
            return (start, start + end)
        }
        guard let (start, end) = found else { return nil }
        var text = buffer.getSlice(at: buffer.readerIndex + start, length: end - start)!
        var single = JSONStreamDecoder(options: decoder.options)
        let value: Value?
        do {
            value = try single.finish(from: &text)
        } catch {
            buffer.moveReaderIndex(forwardBy: end)
            throw HandleError.badMessage()
        }
        guard let value else { return nil }
        buffer.moveReaderIndex(forwardBy: end - text.readableBytes)
        return value
    }

    /// After a decoding error: skips the bad text (as far as it has arrived) and reports `EBADMSG`
    /// once its end is known. `work` starts at the bad text; its last `incoming` bytes are the
    /// read buffer's.
    private mutating func reportBadText(
        in work: inout ByteBuffer, incoming: Int, buffer: inout ByteBuffer
    ) throws(HandleError) {
        decoder = JSONStreamDecoder(options: decoder.options)
        var boundary = JSONTextBoundary()
        let end = work.withUnsafeReadableBytes { boundary.scan($0) }
        guard let end else {
            buffer.moveReaderIndex(forwardBy: incoming)
            skipping = boundary
            return
        }
        work.moveReaderIndex(forwardBy: end)
        giveBack(work, incoming: incoming, to: &buffer)
        throw HandleError.badMessage()
    }

    /// Drops bytes of a bad text until its end; then reports `EBADMSG`.
    private mutating func skipBadText(_ buffer: inout ByteBuffer) throws(HandleError) {
        guard var boundary = skipping else { return }
        let end = buffer.withUnsafeReadableBytes { boundary.scan($0) }
        guard let end else {
            skipping = boundary
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return
        }
        skipping = nil
        buffer.moveReaderIndex(forwardBy: end)
        throw HandleError.badMessage()
    }

    /// Leaves the unread rest of `work` in the read buffer. The rest always lies within the bytes
    /// that came from the read buffer in this call, so only its reader index moves.
    private func giveBack(_ work: ByteBuffer, incoming: Int, to buffer: inout ByteBuffer) {
        let rest = work.readableBytes
        if rest <= incoming {
            buffer.moveReaderIndex(forwardBy: incoming - rest)
        } else {
            buffer = work
        }
    }
}

/// JSON::XS's incremental text boundary: where its `incr_parse` considers a JSON text complete.
///
/// Used only to find how much a bad text covers (Perl's `incr_skip`) and where a top-level scalar
/// ends; the decoding itself is ``JSONStreamDecoder``'s. Resumable: the state carries over between
/// calls to ``scan(_:)``.
struct JSONTextBoundary: Sendable {
    private enum Mode: Sendable {
        case whitespace, json, string, backslash, literal, number
    }

    private var mode = Mode.whitespace
    private var nesting = 0

    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    /// Whether `byte` starts a number or a `true`/`false`/`null` literal.
    static func startsScalar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            return true
        default:
            return false
        }
    }

    /// Scans `bytes`; returns the offset just past the end of the text, or `nil` when the text goes
    /// on beyond them. A top-level text outside strings also ends at the end of the bytes.
    mutating func scan(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        let count = bytes.count
        while index < count {
            let byte = bytes[index]
            switch mode {
            case .whitespace:
                if byte > 0x20 {
                    mode = .json
                    continue
                }
            case .json:
                switch byte {
                case 0x09, 0x0A, 0x0D, 0x20:
                    if nesting <= 0 { return index }
                case UInt8(ascii: "\""):
                    mode = .string
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    nesting += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    nesting -= 1
                    if nesting <= 0 {
                        mode = .json
                        return index + 1
                    }
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                    mode = .literal
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    mode = .number
                default:
                    break
                }
            case .string:
                if byte == UInt8(ascii: "\"") {
                    mode = .json
                    if nesting <= 0 { return index + 1 }
                } else if byte == UInt8(ascii: "\\") {
                    mode = .backslash
                }
            case .backslash:
                mode = .string
            case .literal, .number:
                if !continues(byte) {
                    mode = .json
                    if nesting <= 0 { return index }
                    continue
                }
            }
            index += 1
        }
        switch mode {
        case .json, .literal, .number:
            return nesting <= 0 ? count : nil
        case .whitespace, .string, .backslash:
            return nil
        }
    }

    private func continues(_ byte: UInt8) -> Bool {
        if mode == .literal {
            switch byte {
            case UInt8(ascii: "r"), UInt8(ascii: "u"), UInt8(ascii: "e"),
                UInt8(ascii: "a"), UInt8(ascii: "l"), UInt8(ascii: "s"):
                return true
            default:
                return false
            }
        }
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "e"), UInt8(ascii: "E"),
            UInt8(ascii: "."), UInt8(ascii: "+"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

extension HandleReader where Self == JSONReader {
    /// Reads one JSON text. Perl: `json`.
    public static func json() -> JSONReader { JSONReader() }

    /// Reads one JSON text with the given decoder options. Perl: `json`.
    public static func json(options: JSONStreamDecoder.Options) -> JSONReader { JSONReader(options: options) }
}
