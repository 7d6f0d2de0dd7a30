import AEMPCodecs
import NIOCore

/// Reads one length-prefixed string and returns its payload.
///
/// Perl: `push_read (packstring => $format, $cb)`. The prefix is decoded by ``PackstringDecoder``
/// (the formats of ``PackFormat``, `w` included). As in Perl, a complete prefix leaves the read
/// buffer at once, and the reader then waits for the payload.
///
/// Differences from Perl, all from the codec and all reported as a non-fatal `EBADMSG` that keeps
/// the read queued: a negative length from a signed format (Perl loops), a non-minimal BER prefix,
/// and a length above `maxLength` (default 64 MiB; Perl waits for it).
public struct PackstringReader: HandleReader, Sendable {
    /// The length prefix format.
    public let format: PackFormat
    /// The largest accepted payload in bytes.
    public let maxLength: Int
    private var pendingLength: Int?

    /// Creates a packstring reader.
    /// - Parameters:
    ///   - format: the length prefix format (Perl's `pack` letter).
    ///   - maxLength: the largest accepted payload in bytes (default 64 MiB).
    public init(format: PackFormat, maxLength: Int = 64 << 20) {
        self.format = format
        self.maxLength = maxLength
    }

    /// Returns the next payload once its prefix and all its bytes have arrived.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> ByteBuffer? {
        if pendingLength == nil {
            do {
                // The decoder is a plain value (format and limit); making one per call costs nothing.
                var decoder = PackstringDecoder(format: format, maxLength: maxLength)
                if let payload = try decoder.next(from: &buffer) { return payload }
                guard let (length, size) = try format.readLength(from: buffer) else { return nil }
                buffer.moveReaderIndex(forwardBy: size)
                pendingLength = length
            } catch {
                throw HandleError.badMessage()
            }
        }
        guard let length = pendingLength, let payload = buffer.readSlice(length: length) else { return nil }
        pendingLength = nil
        return payload
    }
}

extension PackFormat {
    /// A format from a literal that is known to be valid; an invalid literal is a programming error.
    static func known(_ format: StaticString) -> PackFormat {
        do {
            return try PackFormat(format.description)
        } catch {
            preconditionFailure("invalid pack format \(format): \(error.message)")
        }
    }

    /// The BER compressed integer format (`w`).
    static let berPrefix = PackFormat.known("w")
}

extension HandleReader where Self == PackstringReader {
    /// Reads one string prefixed with its length in `format`. Perl: `packstring => $format`.
    public static func packstring(_ format: PackFormat) -> PackstringReader {
        PackstringReader(format: format)
    }

    /// Reads one string prefixed with its length in the literal `format` (`"N"`, `"w"`, `"Q>"`).
    ///
    /// The literal must be a valid ``PackFormat`` (a programming error otherwise); build a
    /// ``PackFormat`` with its throwing initializer for formats from elsewhere.
    public static func packstring(_ format: StaticString) -> PackstringReader {
        PackstringReader(format: .known(format))
    }
}
