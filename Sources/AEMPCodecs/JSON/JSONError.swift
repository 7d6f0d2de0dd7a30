/// An error from the JSON writer or the incremental JSON decoder.
///
/// Two errors are equal when their ``code`` is equal; ``offset`` and ``message`` are diagnostics.
///
/// Perl: the `croak` messages of JSON::XS (`malformed JSON string, ...`); AnyEvent::Handle turns them
/// into an `EBADMSG` error.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// A byte that cannot start or continue the JSON text at this point.
        case unexpectedCharacter
        /// A malformed number (`01`, `1.`, `-`, `1e`).
        case invalidNumber
        /// A malformed string escape (`\x`, `\u12G4`).
        case invalidEscape
        /// A `\uD800`-style escape without its partner surrogate.
        case unpairedSurrogate
        /// A raw control character (below U+0020) inside a string.
        case controlCharacter
        /// String bytes that are not valid UTF-8.
        case invalidUTF8
        /// Containers nested deeper than the configured limit.
        case nestingTooDeep
        /// A text (or a number token) longer than the configured limit.
        case textTooLarge
        /// The input ended inside a JSON text.
        case truncated
        /// Encoding a NaN or infinite float, which JSON cannot carry.
        case nonFiniteNumber
        /// Encoding a value JSON cannot carry (a tag or a CBOR simple value).
        case unsupportedValue
        /// Encoding a map key that is not a string.
        case invalidKey
    }

    /// What went wrong.
    public var code: Code
    /// For decoding: the byte offset of the offending byte, counted from the buffer's reader index
    /// when the decoding call started. For encoding: the number of bytes written before the error.
    public var offset: Int
    /// A human-readable explanation.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, offset: Int, _ message: String) {
        self.code = code
        self.offset = offset
        self.message = message
    }

    /// Equality on ``code`` only.
    public static func == (lhs: JSONError, rhs: JSONError) -> Bool { lhs.code == rhs.code }

    /// `"<code> at offset <n>: <message>"`.
    public var description: String { "JSON \(code.rawValue) at offset \(offset): \(message)" }
}
