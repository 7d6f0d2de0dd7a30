/// An error from the netstring and packstring framings.
///
/// Two errors are equal when their ``code`` is equal; ``offset`` and ``message`` are diagnostics.
///
/// Perl: AnyEvent::Handle reports these as `EBADMSG` (malformed frames), or croaks in
/// `push_write` (a `pack` format it rejects, a length the prefix cannot hold).
public struct FramingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// A `pack` format that is not one integer letter with valid modifiers.
        case invalidFormat
        /// A netstring length that is not canonical decimal digits followed by `:`.
        case invalidLength
        /// A netstring whose payload is not followed by `,`.
        case missingTerminator
        /// A declared length above the configured maximum (or above `Int.max`).
        case tooLarge
        /// A negative length from a signed packstring prefix.
        case negativeLength
        /// A length that the prefix format cannot hold (encoding side).
        case lengthNotRepresentable
        /// A BER compressed integer with a redundant leading `0x80` group.
        case nonMinimalBER
        /// The input ended inside a frame.
        case truncated
    }

    /// What went wrong.
    public var code: Code
    /// The byte offset of the problem, counted from the buffer's reader index (0 when not applicable).
    public var offset: Int
    /// A human-readable explanation.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, offset: Int = 0, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    /// Equality on ``code`` only.
    public static func == (lhs: FramingError, rhs: FramingError) -> Bool { lhs.code == rhs.code }

    /// `"<code> at offset <n>: <message>"`.
    public var description: String { "framing \(code.rawValue) at offset \(offset): \(message)" }
}
