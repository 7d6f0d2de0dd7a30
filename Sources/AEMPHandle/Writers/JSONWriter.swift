import AEMPCodecs
import NIOCore

/// Writes a ``Value`` as one JSON text (UTF-8, no whitespace, no newline).
///
/// Perl: `push_write (json => $ref)` (JSON::XS `encode`). The encoding is
/// ``NIOCore/ByteBuffer/writeJSON(_:options:)``'s: byte strings become Latin-1 characters as in
/// Perl unless the options say otherwise, integers of any size are exact.
///
/// Values JSON cannot carry are errors at push time, never altered: NaN and infinities, tags, CBOR
/// simple values, map keys that are not strings, nesting beyond the limit, and
/// ``Value/undefined`` (JSON::XS croaks on `Types::Serialiser::error`; the codec alone would write
/// `null`). The error is a non-fatal `EINVAL` with the reason, and nothing is queued.
public struct JSONWriter: HandleWriter, Sendable {
    /// The value to write.
    public let value: Value
    /// The encoder options.
    public let options: JSONWriterOptions

    /// Writes `value` with `options`.
    public init(_ value: Value, options: JSONWriterOptions = JSONWriterOptions()) {
        self.value = value
        self.options = options
    }

    /// Appends the JSON text.
    /// - Throws: `EINVAL` for a value JSON cannot carry.
    public func write(into buffer: inout ByteBuffer) throws(HandleError) {
        if let path = Self.undefinedPath(value) {
            throw .cannotEncode("json: undefined cannot be written as JSON (at \(path))")
        }
        do throws(JSONError) {
            try buffer.writeJSON(value, options: options)
        } catch {
            throw .cannotEncode("json: \(error.message)")
        }
    }

    /// Where the first ``Value/undefined`` sits (`$`, `$[2]`, `$.key`), or `nil` without one.
    static func undefinedPath(_ value: Value) -> String? {
        switch value {
        case .undefined:
            return "$"
        case .array(let elements):
            for (index, element) in elements.enumerated() {
                if let inner = undefinedPath(element) { return "$[\(index)]" + inner.dropFirst() }
            }
            return nil
        case .map(let pairs):
            for pair in pairs {
                if let inner = undefinedPath(pair.value) {
                    let key = pair.key.stringValue ?? "\(pair.key)"
                    return "$.\(key)" + inner.dropFirst()
                }
            }
            return nil
        default:
            return nil
        }
    }
}

extension HandleWriter where Self == JSONWriter {
    /// `value` as one JSON text. Perl: `push_write (json => $ref)`.
    public static func json(_ value: Value, options: JSONWriterOptions = JSONWriterOptions()) -> JSONWriter {
        JSONWriter(value, options: options)
    }
}
