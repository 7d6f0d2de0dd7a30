/// An error from decoding CBOR (RFC 8949): what went wrong and where.
///
/// Equality compares only ``code``, so tests and callers can match on the kind of error:
/// `#expect(throws: CBORError(.truncated)) { ... }`.
///
/// Perl: CBOR::XS croaks with a message such as `unexpected end of CBOR data, at offset 1`.
public struct CBORError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The kind of a ``CBORError``. New codes may be added; switch with a `default` branch.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case truncated, reservedAdditionalInfo, unexpectedBreak, invalidIndefiniteString
            case invalidSimpleValue, invalidUTF8, nestingTooDeep, itemTooLarge, trailingBytes
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// The input ends inside an item (only from one-shot decoding; the stream decoder waits instead).
        public static var truncated: Self { Self(.truncated) }
        /// An initial byte uses reserved additional information (28–30), or indefinite length (31)
        /// where RFC 8949 does not allow it (integers, tags).
        public static var reservedAdditionalInfo: Self { Self(.reservedAdditionalInfo) }
        /// A break byte (`0xff`) outside an indefinite-length item, or between a map key and its value.
        public static var unexpectedBreak: Self { Self(.unexpectedBreak) }
        /// A chunk of an indefinite-length string is not a definite-length string of the same major type.
        public static var invalidIndefiniteString: Self { Self(.invalidIndefiniteString) }
        /// A two-byte simple value below 32 (`f8 00` ... `f8 1f`), which RFC 8949 makes not well-formed.
        public static var invalidSimpleValue: Self { Self(.invalidSimpleValue) }
        /// A text string (major type 3) is not valid UTF-8 (this includes encoded surrogates).
        public static var invalidUTF8: Self { Self(.invalidUTF8) }
        /// Arrays, maps and tags are nested deeper than the decoder's `maxDepth`.
        public static var nestingTooDeep: Self { Self(.nestingTooDeep) }
        /// The item is, or declares itself, larger than the decoder's `maxItemSize`.
        public static var itemTooLarge: Self { Self(.itemTooLarge) }
        /// Bytes follow the item where exactly one item was expected.
        public static var trailingBytes: Self { Self(.trailingBytes) }

        /// A short name for the code, such as `truncated`.
        public var description: String {
            switch kind {
            case .truncated: "truncated"
            case .reservedAdditionalInfo: "reservedAdditionalInfo"
            case .unexpectedBreak: "unexpectedBreak"
            case .invalidIndefiniteString: "invalidIndefiniteString"
            case .invalidSimpleValue: "invalidSimpleValue"
            case .invalidUTF8: "invalidUTF8"
            case .nestingTooDeep: "nestingTooDeep"
            case .itemTooLarge: "itemTooLarge"
            case .trailingBytes: "trailingBytes"
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// The offset of the offending byte, counted from the first byte of the item being decoded
    /// (the buffer's reader index when decoding started).
    public var offset: Int
    /// A human-readable explanation.
    public var message: String

    /// Creates an error.
    /// - Parameters:
    ///   - code: the kind of error.
    ///   - offset: the offset of the offending byte from the start of the item.
    ///   - message: a human-readable explanation; defaults to the code's name.
    public init(_ code: Code, offset: Int = 0, message: String? = nil) {
        self.code = code
        self.offset = offset
        self.message = message ?? code.description
    }

    /// Compares the ``code`` only.
    public static func == (lhs: CBORError, rhs: CBORError) -> Bool { lhs.code == rhs.code }

    /// Hashes the ``code`` only, consistent with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// `CBOR <code> at offset <n>: <message>`.
    public var description: String { "CBOR \(code) at offset \(offset): \(message)" }
}
