import AEMPCodecs
import NIOCore

/// Writes an `Encodable` value for ``CodableReader``: a BER length (Perl `pack "w"`) followed by the
/// CBOR encoding of the value.
///
/// Swift's counterpart of Perl's `push_write (storable => $ref)`; the format is described at
/// ``CodableReader``. The value goes through ``ValueEncoder`` and
/// ``NIOCore/ByteBuffer/writeCBOR(_:)``.
public struct CodableWriter<T: Encodable>: HandleWriter {
    /// The value to write.
    public let value: T

    /// Writes `value`.
    public init(_ value: T) {
        self.value = value
    }

    /// Appends the frame.
    /// - Throws: `EINVAL` when the value's `encode(to:)` throws; nothing is appended then.
    public func write(into buffer: inout ByteBuffer) throws(HandleError) {
        let encoded: Value
        do {
            encoded = try ValueEncoder().encode(value)
        } catch {
            throw .cannotEncode("codable: \(T.self) could not be encoded: \(error)")
        }
        let cbor = CBOREncoder().encode(encoded)
        BER.write(UInt64(cbor.readableBytes), into: &buffer)
        buffer.writeImmutableBuffer(cbor)
    }
}

extension CodableWriter: Sendable where T: Sendable {}

extension HandleWriter {
    /// `value` framed for ``CodableReader``. Swift's counterpart of Perl's `push_write (storable => ...)`.
    public static func codable<T: Encodable>(_ value: T) -> CodableWriter<T> where Self == CodableWriter<T> {
        CodableWriter(value)
    }
}
