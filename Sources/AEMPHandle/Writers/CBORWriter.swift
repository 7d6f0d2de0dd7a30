import AEMPCodecs
import NIOCore

/// Writes a ``Value`` as one CBOR item (RFC 8949).
///
/// Perl: `push_write (cbor => $data)` (CBOR::XS `encode_cbor`). The encoding is
/// ``NIOCore/ByteBuffer/writeCBOR(_:)``'s (shortest integer heads, definite lengths, map order
/// kept). Every ``Value`` has a CBOR form, so writing cannot fail. Perl writes hash keys as byte
/// strings; a ``Value/map(_:)`` keeps the key types it was given.
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
