import NIOCore

/// Decodes a stream of concatenated CBOR items, one item per call, from bytes that arrive in pieces.
///
/// AEMP writes its messages back to back with no length prefix; this decoder finds where each item
/// ends. Give it the buffer that holds the stream: it returns the first complete item and moves the
/// reader index past it, or returns `nil` and leaves the buffer untouched when the item is not yet
/// complete (at any split point). Call it again until it returns `nil` to drain several items.
///
/// Cost: when a new item starts, the decoder first tries to build it directly, which succeeds in the
/// common case of a whole message in the buffer (then it costs the same as ``CBORDecoder``). Otherwise
/// a resumable structural scan (see the complexity note below) decides whether the item is complete;
/// only then is the value built, once. Each byte of an item is scanned at most once no matter how
/// it arrives (and read at most once more by the direct attempt, made once per item), a large
/// string still arriving costs O(1) per call, and the scan allocates nothing beyond a stack of open
/// containers. The saved progress assumes the next call sees the same
/// readable bytes again, followed by more (the reader index may move, as in a `ByteToMessageHandler`).
///
/// Limits: `maxDepth` (nesting of arrays, maps and tags, default 512) and `maxItemSize` (default
/// 64 MiB: an item that is, or declares a string or count, larger than that is an error as soon as
/// its head arrives, so a hostile peer cannot make it buffer without bound).
///
/// Errors are ``CBORError``s; the reader index stays at the start of the bad item and the stream
/// cannot be resumed. Items before it have already been returned by earlier calls (CBOR::XS's
/// `incr_parse_multiple` loses the items that preceded an error within the same call).
///
/// It is a `NIOSingleStepByteToMessageDecoder`, so `ByteToMessageHandler(CBORStreamDecoder())` turns
/// a channel's bytes into ``Value``s.
///
/// Perl: `CBOR::XS->new->incr_parse_multiple` as AnyEvent::MP's `cbor` framing uses it.
public struct CBORStreamDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    /// Each decoded message is one ``Value``.
    public typealias InboundOut = Value

    /// The maximum nesting of arrays, maps and tags.
    public let maxDepth: Int
    /// The maximum size in bytes of one encoded item.
    public let maxItemSize: Int
    private var scanner: CBORScanner

    /// Creates a stream decoder.
    /// - Parameters:
    ///   - maxDepth: the maximum nesting of arrays, maps and tags (default 512).
    ///   - maxItemSize: the maximum size of one encoded item in bytes (default 64 MiB).
    public init(
        maxDepth: Int = CBORLimits.defaultMaxDepth, maxItemSize: Int = CBORLimits.defaultMaxItemSize
    ) {
        self.maxDepth = maxDepth
        self.maxItemSize = maxItemSize
        self.scanner = CBORScanner(maxDepth: maxDepth, maxItemSize: maxItemSize)
    }

    /// Returns the next complete item from `buffer`, or `nil` if it is not all there yet.
    /// - Parameter buffer: the stream's unread bytes; the reader index moves past the item returned.
    /// - Returns: the item, or `nil` (buffer untouched) when more bytes are needed.
    /// - Throws: ``CBORError`` for malformed input or exceeded limits; the buffer is untouched.
    public mutating func next(from buffer: inout ByteBuffer) throws(CBORError) -> Value? {
        if scanner.offset > buffer.readableBytes { scanner.reset() }
        guard buffer.readableBytes > 0 else { return nil }
        if scanner.offset == 0,
            let (value, length) = try? CBORDecoder(maxDepth: maxDepth).decodePrefix(buffer),
            length <= maxItemSize
        {
            // Fast path: a complete, valid item at the start of a fresh item is decoded in one pass
            // (the common case, a whole message in the buffer). Anything else (an incomplete item,
            // malformed input, an item over the size limit) takes the scanning path below, exactly
            // as if this attempt had not been made. The attempt is only made while the scanner has
            // no saved progress, so an item that arrives in pieces is attempted once in full: after
            // that the scanner's offset is past the first head, or the attempt stopped at that head.
            buffer.moveReaderIndex(forwardBy: length)
            return value
        }
        let scanned: Result<Int?, CBORError> = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(CBORError) -> Int? in try self.scanner.scan(raw) }
        }
        switch scanned {
        case .failure(let error):
            scanner.reset()
            throw error
        case .success(nil):
            return nil
        case .success(let length?):
            let (value, _) = try CBORDecoder(maxDepth: maxDepth).decodePrefix(buffer, length: length)
            buffer.moveReaderIndex(forwardBy: length)
            return value
        }
    }

    /// NIO entry point: same as ``next(from:)``.
    /// - Parameter buffer: the accumulated bytes.
    /// - Returns: a complete item or `nil`.
    /// - Throws: ``CBORError``.
    public mutating func decode(buffer: inout ByteBuffer) throws -> Value? {
        try next(from: &buffer)
    }

    /// NIO entry point at end of input: decodes what is complete; an incomplete tail is left in the
    /// buffer (NIO then reports it as left-over data).
    /// - Parameters:
    ///   - buffer: the accumulated bytes.
    ///   - seenEOF: whether the input has ended.
    /// - Returns: a complete item or `nil`.
    /// - Throws: ``CBORError``.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Value? {
        try next(from: &buffer)
    }
}
