import NIOCore

/// A read type for ``Handle/pushRead(_:_:)``: a single-step decoder over the handle's read buffer.
///
/// Perl: a read type registered with `anyevent_read_type` (`push_read (type => args..., $cb)`).
///
/// Contract, for each call:
/// - enough bytes: remove exactly the consumed bytes from the front of `buffer` and return the output;
/// - not enough bytes yet: return `nil`. The reader either leaves `buffer` untouched, or moves the
///   bytes it removed into its own state (Perl's `regex` skip and `packstring` prefix do this), so
///   nothing is ever lost or read twice;
/// - malformed input: throw a ``HandleError`` (usually `EBADMSG`, non-fatal). The reader stays at the
///   head of the queue unless the error says otherwise (``HandleError/keepsReader``).
///
/// Readers keep their scan state between calls so they never rescan bytes they have already looked
/// at; ``restartScan()`` tells them that someone else removed bytes from the buffer in between.
public protocol HandleReader {
    /// The value handed to the read callback.
    associatedtype Output

    /// Tries to decode one value from the front of `buffer` (see the type's contract).
    /// - Parameter buffer: the handle's read buffer; only remove bytes from its front.
    /// - Returns: the decoded value, or `nil` when more bytes are needed.
    /// - Throws: ``HandleError`` for malformed input.
    mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> Output?

    /// Forgets search positions because bytes were removed from the buffer by someone else.
    /// Bytes the reader already moved into its own state stay there. The default does nothing.
    mutating func restartScan()
}

extension HandleReader {
    /// Does nothing: the reader keeps no search positions.
    public mutating func restartScan() {}
}

/// Reads exactly `length` bytes.
///
/// Perl: `push_read (chunk => $len, $cb)`. The bytes are a slice of the read buffer, not a copy.
public struct ChunkReader: HandleReader, Sendable {
    /// The number of bytes to read.
    public let length: Int

    /// Reads exactly `length` bytes (`0` completes at once with an empty buffer).
    public init(length: Int) {
        precondition(length >= 0, "chunk length must not be negative")
        self.length = length
    }

    /// Returns the first `length` bytes once they are there.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> ByteBuffer? {
        buffer.readSlice(length: length)
    }
}

extension HandleReader where Self == ChunkReader {
    /// Reads exactly `length` bytes. Perl: `chunk => $len`.
    public static func chunk(_ length: Int) -> ChunkReader { ChunkReader(length: length) }
}

/// A user-defined read type built from a closure (Perl: a custom `anyevent_read_type`).
///
/// The closure follows the ``HandleReader`` contract.
public struct ClosureReader<Output>: HandleReader {
    private let body: (inout ByteBuffer) throws(HandleError) -> Output?

    /// Wraps `body` as a reader.
    public init(_ body: @escaping (inout ByteBuffer) throws(HandleError) -> Output?) {
        self.body = body
    }

    /// Calls the closure.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> Output? {
        try body(&buffer)
    }
}
