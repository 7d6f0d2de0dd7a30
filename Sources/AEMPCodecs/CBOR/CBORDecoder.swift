import NIOCore

/// Decodes complete CBOR items (RFC 8949) into ``Value``s.
///
/// Everything RFC 8949 calls well-formed is accepted: every major type, definite and indefinite
/// lengths, half/single/double floats, all simple values, any tag. What it does with them:
/// - Byte strings are slices of the input buffer (no copy); indefinite-length strings are joined.
///   Their chunks must be definite-length strings of the same major type, as RFC 8949 requires
///   (CBOR::XS also accepts mixed chunks; we reject them with ``CBORError/Code/invalidIndefiniteString``).
/// - Text strings must be valid UTF-8 (CBOR::XS does not check; we throw ``CBORError/Code/invalidUTF8``).
/// - Integers are canonical (see ``Value``): a negative integer below `Int64.min` becomes a
///   ``Value/bignum(negative:magnitude:)`` (CBOR::XS wraps it around silently).
/// - Tags 2 and 3 around a byte string are bignums with RFC semantics (tag 3 is `-1 - n`; CBOR::XS
///   decodes it as `-n`), normalized to `.int`/`.uint` when they fit. Every other tag is kept as
///   ``Value/tagged(_:_:)``, including those CBOR::XS interprets (0, 1, 4, 5, 21–23, 25, 26, 28, 29,
///   30, 256, 55799); tag 22098 (Perl's scalar reference) stays `.tagged(22098, value)`.
/// - Maps keep every pair in wire order, whatever the key types (CBOR::XS stringifies keys and keeps
///   the last of duplicate keys).
/// - Simple values other than false/true/null/undefined become ``Value/simple(_:)`` (CBOR::XS
///   rejects them).
///
/// Limits: nesting of arrays, maps and tags is at most `maxDepth` (512 by default, as CBOR::XS);
/// a declared length or count larger than the bytes present is truncation, never an allocation.
///
/// Perl: `CBOR::XS::decode_cbor`.
public struct CBORDecoder: Sendable {
    /// The maximum nesting of arrays, maps and tags. Decoding recurses once per level, so keep it modest.
    public var maxDepth: Int

    /// Creates a decoder.
    /// - Parameter maxDepth: the maximum nesting of arrays, maps and tags (default 512).
    public init(maxDepth: Int = CBORLimits.defaultMaxDepth) {
        self.maxDepth = maxDepth
    }

    /// Decodes the buffer's readable bytes, which must hold exactly one item.
    /// - Parameter buffer: the encoded item; byte strings in the result share its storage.
    /// - Returns: the decoded value.
    /// - Throws: ``CBORError`` with ``CBORError/Code/truncated``, ``CBORError/Code/trailingBytes`` or a
    ///   well-formedness code; `offset` counts from the buffer's reader index.
    public func decode(_ buffer: ByteBuffer) throws(CBORError) -> Value {
        let (value, length) = try decodePrefix(buffer)
        guard length == buffer.readableBytes else {
            throw CBORError(.trailingBytes, offset: length, message: "bytes after the CBOR item")
        }
        return value
    }

    /// Decodes `bytes`, which must hold exactly one item.
    /// - Parameter bytes: the encoded item.
    /// - Returns: the decoded value.
    /// - Throws: ``CBORError`` as ``decode(_:)-(ByteBuffer)``.
    public func decode(_ bytes: some Sequence<UInt8>) throws(CBORError) -> Value {
        try decode(ByteBuffer(bytes: bytes))
    }

    /// Decodes the first item of `buffer` and moves the reader index past it.
    /// - Parameter buffer: holds at least one complete item; later bytes are left unread.
    /// - Returns: the decoded value.
    /// - Throws: ``CBORError``; the reader index does not move then.
    public func decodeFirst(from buffer: inout ByteBuffer) throws(CBORError) -> Value {
        let (value, length) = try decodePrefix(buffer)
        buffer.moveReaderIndex(forwardBy: length)
        return value
    }

    /// Decodes the item at the start of `buffer`'s readable bytes; returns it and its length.
    func decodePrefix(_ buffer: ByteBuffer, length: Int? = nil) throws(CBORError) -> (Value, Int) {
        let maxDepth = self.maxDepth
        let result: Result<(Value, Int), CBORError> = buffer.withUnsafeReadableBytes { raw in
            let bytes = length.map { UnsafeRawBufferPointer(rebasing: raw[0..<$0]) } ?? raw
            var parser = CBORParser(bytes: bytes, maxDepth: maxDepth)
            return Result { () throws(CBORError) -> (Value, Int) in
                let value = try parser.parseItem(depth: 0, in: buffer)
                return (value, parser.position)
            }
        }
        return try result.get()
    }
}
