import AEMPCodecs
import NIOCore

/// A data-phase message that is not an array (spec §4: every message is one array).
public struct MessageFramingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public var message: String

    /// Creates an error.
    ///
    /// - Parameter message: the reason.
    public init(_ message: String) {
        self.message = message
    }

    /// The reason.
    public var description: String { message }
}

/// Decodes a data-phase byte stream into messages, one array each (spec §4).
///
/// Perl: the `on_read` loop of `AnyEvent::MP::Transport`, which pushes a `json`/`cbor` read and
/// hands every decoded array to the kernel. The inner decoder does the byte work (for JSON
/// ``AEMPCodecs/JSONStreamDecoder``; the CBOR decoder plugs in the same way); this wrapper checks that
/// each decoded item is an array and unwraps it. After an error the connection must be closed.
///
/// ```swift
/// var decoder = MessageStreamDecoder.json()
/// while let message = try decoder.next(from: &buffer) { kernel.deliver(message) }
/// ```
public struct MessageStreamDecoder<Inner: NIOSingleStepByteToMessageDecoder>: NIOSingleStepByteToMessageDecoder
where Inner.InboundOut == Value {
    /// One message: the destination port name followed by the message elements.
    public typealias InboundOut = [Value]

    /// The decoder of single values.
    public var inner: Inner

    /// Wraps a value decoder.
    ///
    /// - Parameter inner: the decoder for the connection's receive framing.
    public init(_ inner: Inner) {
        self.inner = inner
    }

    /// The next complete message, or `nil` if more bytes are needed.
    ///
    /// - Parameter buffer: the received bytes (only append between calls).
    /// - Returns: the message's elements.
    /// - Throws: the inner decoder's error, or ``MessageFramingError`` for a non-array item.
    public mutating func next(from buffer: inout ByteBuffer) throws -> [Value]? {
        guard let value = try inner.decode(buffer: &buffer) else { return nil }
        return try unwrapMessage(value)
    }

    /// `NIOSingleStepByteToMessageDecoder`: ``next(from:)``.
    public mutating func decode(buffer: inout ByteBuffer) throws -> [Value]? {
        try next(from: &buffer)
    }

    /// `NIOSingleStepByteToMessageDecoder`: the inner decoder's last step, unwrapped.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> [Value]? {
        guard let value = try inner.decodeLast(buffer: &buffer, seenEOF: seenEOF) else { return nil }
        return try unwrapMessage(value)
    }

}

private func unwrapMessage(_ value: Value) throws(MessageFramingError) -> [Value] {
    guard case .array(let elements) = value else {
        throw MessageFramingError("data-phase message is not an array")
    }
    return elements
}

extension MessageStreamDecoder where Inner == JSONStreamDecoder {
    /// A decoder for the `json` framing (JSON::XS `incr_parse`: texts back to back, whitespace
    /// between them tolerated; only arrays and objects at the top level).
    ///
    /// - Parameter options: limits of the JSON decoder.
    /// - Returns: the decoder.
    public static func json(options: JSONStreamDecoder.Options = .init()) -> Self {
        Self(JSONStreamDecoder(options: options))
    }
}

extension ByteBuffer {
    /// Appends one message in the `json` framing: the array as one JSON text, no separator.
    ///
    /// Perl: `encode_json [$port, @msg]` in `AnyEvent::MP::Transport`'s send path.
    ///
    /// - Parameters:
    ///   - message: the destination port name followed by the message elements.
    ///   - options: JSON writer options.
    /// - Returns: the number of bytes written.
    /// - Throws: ``AEMPCodecs/JSONError`` if a value cannot be carried by JSON (nothing is written).
    @discardableResult
    public mutating func writeJSONMessage(_ message: [Value], options: JSONWriterOptions = .init()) throws(JSONError) -> Int {
        try writeJSON(.array(message), options: options)
    }
}
