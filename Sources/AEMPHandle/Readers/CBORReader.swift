import AEMPCodecs
import NIOCore

/// Reads one CBOR item (RFC 8949) and returns it as a ``Value``.
///
/// Perl: `push_read (cbor => $cb)` (CBOR::XS's `incr_parse`). The item is found and decoded by
/// ``CBORStreamDecoder``, which keeps its scan position between calls, so no byte is scanned twice
/// however the item is split. As in Perl:
/// - a partial item stays in the read buffer until it is complete;
/// - exactly one item is returned per read; the bytes after it stay in the read buffer;
/// - a CBOR `null` is a value like any other (the callback runs with ``Value/null``);
/// - the self-describe tag 55799 in front of the item is dropped (RFC 8949 §3.4.6 gives it no
///   meaning; CBOR::XS drops it); other tags are kept (``Value/tagged(_:_:)``), and so is a 55799
///   nested inside the item, as ``CBORDecoder`` keeps it;
/// - malformed input is a non-fatal `EBADMSG`; the bytes stay in the buffer and the read stays
///   queued, so the error repeats on the next arrival unless `onError` destroys the handle.
///
/// Limits (the decoder's): nesting depth and item size; an item that declares more than
/// `maxItemSize` bytes is an `EBADMSG` as soon as its head arrives.
public struct CBORReader: HandleReader, Sendable {
    /// RFC 8949's self-described CBOR tag, a magic number without meaning.
    static let selfDescribeTag: UInt64 = 55799

    private var decoder: CBORStreamDecoder

    /// Creates a CBOR reader.
    /// - Parameters:
    ///   - maxDepth: the maximum nesting of arrays, maps and tags (default 512).
    ///   - maxItemSize: the maximum size of one encoded item in bytes (default 64 MiB).
    public init(maxDepth: Int = CBORLimits.defaultMaxDepth, maxItemSize: Int = CBORLimits.defaultMaxItemSize) {
        self.decoder = CBORStreamDecoder(maxDepth: maxDepth, maxItemSize: maxItemSize)
    }

    /// Returns the next item once it is complete.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> Value? {
        var item: Value?
        do {
            item = try decoder.next(from: &buffer)
        } catch {
            throw HandleError.badMessage()
        }
        while case .tagged(Self.selfDescribeTag, let inner)? = item { item = inner }
        return item
    }

    /// Starts the scan over: someone else removed bytes from the buffer.
    public mutating func restartScan() {
        decoder = CBORStreamDecoder(maxDepth: decoder.maxDepth, maxItemSize: decoder.maxItemSize)
    }
}

extension HandleReader where Self == CBORReader {
    /// Reads one CBOR item. Perl: `cbor`.
    public static func cbor() -> CBORReader { CBORReader() }
}
