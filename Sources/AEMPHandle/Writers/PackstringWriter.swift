import AEMPCodecs
import NIOCore

/// Writes a payload prefixed with its length in a Perl `pack` format.
///
/// Perl: `push_write (packstring => $format, $data)` (`pack "$format/a*", $data`). Perl wraps
/// lengths that do not fit the prefix (and croaks for `c`/`C` only); here such a length, and an
/// invalid format string, throw `EINVAL` at push time and nothing is queued, so a peer never reads a
/// wrong length.
public struct PackstringWriter: HandleWriter, Sendable {
    private let format: Result<PackFormat, FramingError>
    /// The bytes to frame.
    public let payload: ByteBuffer

    /// Frames `payload` with a length prefix in `format`.
    public init(format: PackFormat, payload: ByteBuffer) {
        self.format = .success(format)
        self.payload = payload
    }

    /// Frames `payload` with a length prefix in the format string `format` (`"N"`, `"w"`, `"Q>"`);
    /// an invalid format is reported when the value is written.
    public init(format: String, payload: ByteBuffer) {
        self.format = Result { () throws(FramingError) -> PackFormat in try PackFormat(format) }
        self.payload = payload
    }

    /// Appends the prefix and the payload.
    /// - Throws: `EINVAL` for an invalid format or a length the prefix cannot hold.
    public func write(into buffer: inout ByteBuffer) throws(HandleError) {
        do throws(FramingError) {
            try buffer.writePackstring(payload, format: format.get())
        } catch {
            throw .cannotEncode("packstring: \(error.message)")
        }
    }
}

extension HandleWriter where Self == PackstringWriter {
    /// `payload` with a length prefix in `format`. Perl: `push_write (packstring => $format, $data)`.
    public static func packstring(_ format: PackFormat, _ payload: ByteBuffer) -> PackstringWriter {
        PackstringWriter(format: format, payload: payload)
    }

    /// `payload` with a length prefix in the format string `format`; an invalid format throws
    /// `EINVAL` when pushed. Perl: `push_write (packstring => $format, $data)`.
    public static func packstring(_ format: String, _ payload: ByteBuffer) -> PackstringWriter {
        PackstringWriter(format: format, payload: payload)
    }
}
