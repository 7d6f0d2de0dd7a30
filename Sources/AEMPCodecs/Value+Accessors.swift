import NIOCore

/// Convenience accessors that read values the way a Perl peer means them.
///
/// CBOR::XS sends most Perl strings as byte strings, Perl booleans as the strings `"1"` and `""`,
/// and integral doubles as integers, so these accessors accept each of those forms.
extension Value {
    /// Whether this is ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The string in a text string or a byte string.
    ///
    /// Byte strings are decoded as UTF-8 when they are valid UTF-8, and otherwise as Latin-1 (one
    /// character per byte), which is what such bytes mean to Perl: CBOR::XS sends a Perl string with
    /// characters up to U+00FF, such as a hash key `"hé"`, as the Latin-1 bytes `68 e9`.
    /// `nil` for every other kind of value.
    public var stringValue: String? {
        switch self {
        case .text(let s): return s
        case .bytes(let b): return Value.string(fromPerlBytes: b)
        default: return nil
        }
    }

    /// Decodes bytes as UTF-8, falling back to Latin-1.
    static func string(fromPerlBytes bytes: ByteBuffer) -> String {
        bytes.withUnsafeReadableBytes { raw in
            if let text = validatedUTF8String(raw) { return text }
            var scalars = String.UnicodeScalarView()
            for byte in raw { scalars.append(Unicode.Scalar(byte)) }
            return String(scalars)
        }
    }

    /// The bytes of a byte string, or the UTF-8 bytes of a text string; `nil` otherwise.
    public var bytesValue: ByteBuffer? {
        switch self {
        case .bytes(let b): return b
        case .text(let s): return ByteBuffer(string: s)
        default: return nil
        }
    }

    /// The integer, if this is an integer or a float with an integral value that fits `Int64`
    /// exactly; `nil` otherwise (strings are not parsed).
    public var int64Value: Int64? {
        switch self {
        case .int(let i): return i
        case .float(let d): return Int64(exactly: d)
        default: return nil
        }
    }

    /// The integer, if this is a non-negative integer or an integral float that fits `UInt64`
    /// exactly; `nil` otherwise.
    public var uint64Value: UInt64? {
        switch self {
        case .int(let i): return UInt64(exactly: i)
        case .uint(let u): return u
        case .float(let d): return UInt64(exactly: d)
        default: return nil
        }
    }

    /// The integer as an `Int`, under the same rules as ``int64Value``.
    public var intValue: Int? {
        if case .uint(let u) = self { return Int(exactly: u) }
        return int64Value.flatMap { Int(exactly: $0) }
    }

    /// The number as a `Double`: a float, or an integer that a `Double` represents exactly.
    public var doubleValue: Double? {
        switch self {
        case .float(let d): return d
        case .int(let i): return Double(exactly: i)
        case .uint(let u): return Double(exactly: u)
        default: return nil
        }
    }

    /// A boolean in any of the forms a Perl peer sends: CBOR `true`/`false`; Perl's own booleans,
    /// the strings `"1"` and `""` (as byte or text strings), plus `"0"`; and the integers 1 and 0.
    /// `nil` for anything else.
    public var boolValue: Bool? {
        switch self {
        case .bool(let b): return b
        case .int(1): return true
        case .int(0): return false
        case .bytes(let b):
            switch b.readableBytes {
            case 0: return false
            case 1:
                let byte = b.getInteger(at: b.readerIndex, as: UInt8.self)
                return byte == UInt8(ascii: "1") ? true : byte == UInt8(ascii: "0") ? false : nil
            default: return nil
            }
        case .text(let s):
            return s == "1" ? true : (s == "" || s == "0") ? false : nil
        default: return nil
        }
    }

    /// The elements of an array; `nil` otherwise.
    public var arrayValue: [Value]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The pairs of a map in wire order; `nil` otherwise.
    public var mapValue: [(key: Value, value: Value)]? {
        if case .map(let pairs) = self { return pairs }
        return nil
    }

    /// The element at `index` of an array; `nil` if this is not an array or the index is out of range.
    /// - Parameter index: a zero-based index.
    public subscript(index: Int) -> Value? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// The value for a string key in a map, matching text keys and byte-string keys alike (byte
    /// keys as ``stringValue`` reads them). With repeated keys the last one wins, as in a Perl hash.
    /// `nil` if this is not a map or has no such key.
    /// - Parameter key: the key.
    public subscript(key: String) -> Value? {
        guard case .map(let pairs) = self else { return nil }
        for pair in pairs.reversed() where pair.key.matches(key) { return pair.value }
        return nil
    }

    /// The value for `key` in a map, compared with ``==(_:_:)``; the last of repeated keys wins.
    /// - Parameter key: the key.
    public subscript(key key: Value) -> Value? {
        guard case .map(let pairs) = self else { return nil }
        for pair in pairs.reversed() where pair.key == key { return pair.value }
        return nil
    }

    /// Whether this text or byte string reads as `key`.
    func matches(_ key: String) -> Bool {
        switch self {
        case .text(let s): return s == key
        case .bytes(let b):
            var key = key
            let same = key.withUTF8 { utf8 in
                b.withUnsafeReadableBytes { raw in raw.count == utf8.count && raw.elementsEqual(utf8) }
            }
            if same { return true }
            // Latin-1 bytes (not UTF-8) name the same Perl string as their characters.
            guard b.readableBytesView.contains(where: { $0 >= 0x80 }) else { return false }
            return Value.string(fromPerlBytes: b) == key
        default: return false
        }
    }
}
