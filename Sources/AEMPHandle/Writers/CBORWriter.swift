import AEMPCodecs
import NIOCore

/// Writes a ``Value`` as one CBOR item (RFC 8949).
///
/// Perl: `push_write (cbor => $data)` (CBOR::XS `encode_cbor`). The encoding is
/// ``NIOCore/ByteBuffer/writeCBOR(_:)``'s (shortest integer heads, definite lengths, map order
/// kept). Every ``Value`` has a CBOR form, so writing cannot fail.
///
/// Strings keep their type, unlike Perl's: a ``Value/text(_:)`` (a string literal) is a CBOR text
/// string (major type 3) and a ``Value/bytes(_:)`` a byte string (major type 2), for map keys as for
/// values. CBOR::XS writes every Perl string without the UTF-8 flag as a byte string, so Perl's
/// `push_write (cbor => {k => "v"})` is `a1 41 6b 41 76` where `.cbor(["k": "v"])` is
/// `a1 61 6b 61 76`. Text is the correct CBOR form of a Swift `String`, and a Perl reader sees the
/// same data: CBOR::XS decodes a text string into a character string that is `eq` to the byte string
/// Perl would have sent. Use ``Value/bytes(_:)`` where the exact bytes of a Perl peer are wanted.
public struct CBORWriter: HandleWriter, Sendable {
    /// The value to write.
    public let value: Value

    /// Writes `value`.
    public init(_ value: Value) {
        self.value = value
    }

    /// Appends the CBOR item.
    public func write(into buffer: inout ByteBuffer) throws(HandleError) {
        buffer.writeCBOR(value)
    }
}

extension HandleWriter where Self == CBORWriter {
    /// `value` as one CBOR item. Perl: `push_write (cbor => $data)`.
    public static func cbor(_ value: Value) -> CBORWriter { CBORWriter(value) }
}
