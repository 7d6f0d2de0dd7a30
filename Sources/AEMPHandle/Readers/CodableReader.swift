import AEMPCodecs
import NIOCore

/// Reads one `Decodable` value written by ``CodableWriter``.
///
/// The `codable` type is Swift's counterpart of Perl's `storable` read and write types: where Perl
/// frames a `Storable::nfreeze` image with a BER length (`pack "w/a*"`), `codable` frames the CBOR
/// encoding (RFC 8949) of the value, as ``ValueEncoder`` and ``NIOCore/ByteBuffer/writeCBOR(_:)``
/// produce it:
///
/// ```
/// <BER length of the CBOR bytes (Perl pack "w")> <exactly one CBOR item>
/// ```
///
/// A Perl peer reads it with `push_read (packstring => "w", sub { decode_cbor $_[1] })` and writes it
/// with `push_write (packstring => "w", encode_cbor $data)`.
///
/// Framing is ``PackstringReader``'s (the prefix leaves the read buffer as soon as it is complete,
/// as Perl's `storable` does). A frame whose payload is not exactly one CBOR item, or whose item
/// does not decode as `T` (``ValueDecoder``), is a non-fatal `EBADMSG` after the whole frame was
/// consumed; the read is then dropped, as Perl's `storable` does when `thaw` fails, and later reads
/// go on with the next frame. Malformed framing is an `EBADMSG` that keeps the read queued.
public struct CodableReader<T: Decodable>: HandleReader, Sendable {
    private var frames: PackstringReader
    private let maxDepth: Int

    /// Creates a reader for values of type `T`.
    /// - Parameters:
    ///   - type: the type to decode.
    ///   - maxLength: the largest accepted frame in bytes (default 64 MiB).
    ///   - maxDepth: the maximum nesting of CBOR arrays, maps and tags (default 512).
    public init(_ type: T.Type = T.self, maxLength: Int = 64 << 20, maxDepth: Int = CBORLimits.defaultMaxDepth) {
        self.frames = PackstringReader(format: .berPrefix, maxLength: maxLength)
        self.maxDepth = maxDepth
    }

    /// Returns the next value once its whole frame has arrived.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> T? {
        guard let frame = try frames.read(from: &buffer) else { return nil }
        let value: Value
        do {
            value = try CBORDecoder(maxDepth: maxDepth).decode(frame)
        } catch {
            throw HandleError.badMessage(keepsReader: false)
        }
        do {
            return try ValueDecoder().decode(T.self, from: value)
        } catch {
            throw HandleError.badMessage(keepsReader: false)
        }
    }
}

extension HandleReader {
    /// Reads one value of type `T` framed as ``CodableReader`` describes. Swift's counterpart of
    /// Perl's `storable`.
    public static func codable<T: Decodable>(_ type: T.Type) -> CodableReader<T> where Self == CodableReader<T> {
        CodableReader(type)
    }
}
