import AEMPCodecs
import NIOCore

/// Reads one netstring (`<length>:<payload>,`) and returns its payload.
///
/// Perl: `push_read (netstring => $cb)`. The framing is checked by ``NetstringDecoder``; the reader
/// adds Perl's buffer behaviour on top:
/// - once the `<length>:` header is complete it leaves the read buffer (Perl turns the read into a
///   `chunk` read of the payload there), and so does a complete payload that waits for its `,`;
/// - a malformed length is a non-fatal `EBADMSG` and the read stays queued (the bytes stay in the
///   buffer, so the error repeats on the next arrival unless `onError` destroys the handle);
/// - a wrong terminator is a non-fatal `EBADMSG` after the payload and the wrong byte were
///   consumed; this read is then dropped and later reads go on.
///
/// Difference from Perl, from the codec: a length above `maxLength` (default 64 MiB) is an
/// `EBADMSG` as soon as its digits show it (Perl waits for any length).
public struct NetstringReader: HandleReader, Sendable {
    private enum Phase: Sendable {
        case header
        case payload(length: Int)
        case terminator(payload: ByteBuffer)
    }

    /// The largest accepted payload in bytes.
    public let maxLength: Int
    private var phase: Phase = .header

    /// Creates a netstring reader.
    /// - Parameter maxLength: the largest accepted payload in bytes (default 64 MiB).
    public init(maxLength: Int = 64 << 20) {
        self.maxLength = maxLength
    }

    /// Returns the payload of the next netstring once it and its `,` have arrived.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> ByteBuffer? {
        if case .header = phase {
            do throws(FramingError) {
                // The decoder is a plain value (its limit); making one per call costs nothing.
                var decoder = NetstringDecoder(maxLength: maxLength)
                if let payload = try decoder.next(from: &buffer) { return payload }
            } catch {
                if error.code == .missingTerminator {
                    // Perl: the payload and the wrong byte are gone; the read ends.
                    buffer.moveReaderIndex(forwardBy: min(error.offset + 1, buffer.readableBytes))
                    throw HandleError.badMessage(keepsReader: false)
                }
                // Perl matches the length only once the ':' is there: digits with a leading zero
                // wait until then (and then fail).
                if error.code == .invalidLength, onlyDigits(buffer) { return nil }
                throw HandleError.badMessage()
            }
            // Incomplete. The decoder accepted what is there, so a ':' within the first bytes ends
            // a valid header: take it out of the buffer now, as Perl does.
            guard let header = headerLength(buffer) else { return nil }
            buffer.moveReaderIndex(forwardBy: header.size)
            phase = .payload(length: header.length)
        }
        if case .payload(let length) = phase {
            guard let payload = buffer.readSlice(length: length) else { return nil }
            phase = .terminator(payload: payload)
        }
        guard case .terminator(let payload) = phase, let byte = buffer.readInteger(as: UInt8.self) else {
            return nil
        }
        phase = .header
        guard byte == UInt8(ascii: ",") else { throw HandleError.badMessage(keepsReader: false) }
        return payload
    }

    /// Whether the buffer holds nothing but a few digits so far.
    private func onlyDigits(_ buffer: ByteBuffer) -> Bool {
        guard buffer.readableBytes <= 20 else { return false }
        return buffer.readableBytesView.allSatisfy { $0 &- UInt8(ascii: "0") < 10 }
    }

    /// The payload length and header size of a complete header the decoder has already validated.
    private func headerLength(_ buffer: ByteBuffer) -> (length: Int, size: Int)? {
        let limit = min(buffer.readableBytes, 21)
        var length = 0
        for index in 0..<limit {
            let byte = buffer.getInteger(at: buffer.readerIndex + index, as: UInt8.self)!
            if byte == UInt8(ascii: ":") { return (length, index + 1) }
            length = length &* 10 &+ Int(byte &- UInt8(ascii: "0"))
        }
        return nil
    }
}

extension HandleReader where Self == NetstringReader {
    /// Reads one netstring. Perl: `netstring`.
    public static func netstring() -> NetstringReader { NetstringReader() }
}
