import NIOCore

// MARK: - Encoding

/// Turns `Encodable` Swift values into ``Value``s, for sending typed values to AEMP ports.
///
/// - Keyed containers become maps with text-string keys, in encoding order.
/// - Unkeyed containers become arrays; `[UInt8]`, `ByteBuffer`, and any unkeyed container filled only
///   with `UInt8` elements (such as Foundation's `Data`) become byte strings (Perl strings).
/// - Integers are canonical (``Value/init(integer:)``); `Float` and `Double` are floats; `nil` is null.
/// - A ``Value`` nested in an encoded type is taken as it is.
///
/// ```swift
/// struct Job: Codable { var name: String; var tries: Int }
/// let message = try ValueEncoder().encode(Job(name: "resize", tries: 3))   // {"name": "resize", "tries": 3}
/// ```
///
/// Perl: the Swift counterpart of handing a Perl data structure to `encode_cbor`.
public struct ValueEncoder: Sendable {
    /// Contextual information handed to the encoded types' `encode(to:)`.
    public var userInfo: [CodingUserInfoKey: any Sendable] = [:]

    /// Creates an encoder.
    public init() {}

    /// Encodes `value` into a ``Value``.
    /// - Parameter value: the value to encode.
    /// - Returns: its ``Value`` form.
    /// - Throws: whatever the value's `encode(to:)` throws (an `EncodingError` carries its coding path).
    public func encode(_ value: some Encodable) throws -> Value {
        let box = ValueEncodingBox()
        try ValueEncodingBox.encode(value, into: box, codingPath: [], userInfo: userInfo)
        return box.finish()
    }
}

/// The tree being built while encoding; finished into a ``Value`` at the end.
final class ValueEncodingBox {
    enum Mode { case empty, value, array, map }
    var mode = Mode.empty
    var value = Value.null
    var elements: [ValueEncodingBox] = []
    var onlyBytes = true
    var pairs: [(key: String, box: ValueEncodingBox)] = []

    func finish() -> Value {
        switch mode {
        case .empty: return .map([])  // a type that encoded nothing, as JSONEncoder does
        case .value: return value
        case .array:
            if onlyBytes && !elements.isEmpty {
                var bytes = ByteBuffer()
                bytes.reserveCapacity(elements.count)
                for element in elements {
                    if case .int(let byte) = element.value { bytes.writeInteger(UInt8(truncatingIfNeeded: byte)) }
                }
                return .bytes(bytes)
            }
            return .array(elements.map { $0.finish() })
        case .map:
            return .map(pairs.map { (key: Value.text($0.key), value: $0.box.finish()) })
        }
    }

    func set(_ value: Value) {
        mode = .value
        self.value = value
    }

    static func encode(
        _ value: some Encodable, into box: ValueEncodingBox, codingPath: [any CodingKey],
        userInfo: [CodingUserInfoKey: any Sendable]
    ) throws {
        switch value {
        case let value as Value: box.set(value)
        case let buffer as ByteBuffer: box.set(.bytes(buffer))
        // Check the exact type: any empty array would cast to [UInt8].
        case let bytes as [UInt8] where type(of: value) == [UInt8].self: box.set(Value(bytes: bytes))
        default:
            try value.encode(to: ValueEncodingImpl(box: box, codingPath: codingPath, userInfo: userInfo))
        }
    }
}

struct ValueEncodingImpl: Encoder {
    let box: ValueEncodingBox
    let codingPath: [any CodingKey]
    let sendableUserInfo: [CodingUserInfoKey: any Sendable]
    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    init(box: ValueEncodingBox, codingPath: [any CodingKey], userInfo: [CodingUserInfoKey: any Sendable]) {
        self.box = box
        self.codingPath = codingPath
        self.sendableUserInfo = userInfo
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if box.mode != .map {
            box.mode = .map
            box.pairs = []
        }
        return KeyedEncodingContainer(KeyedValueEncodingContainer<Key>(encoder: self))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if box.mode != .array {
            box.mode = .array
            box.elements = []
            box.onlyBytes = true
        }
        return UnkeyedValueEncodingContainer(encoder: self)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { ValueSingleValueEncoding(encoder: self) }

    func child(_ box: ValueEncodingBox, key: any CodingKey) -> ValueEncodingImpl {
        ValueEncodingImpl(box: box, codingPath: codingPath + [key], userInfo: sendableUserInfo)
    }
}

struct KeyedValueEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: ValueEncodingImpl
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func newBox(_ key: Key) -> ValueEncodingBox { newBox(named: key.stringValue) }

    private func newBox(named name: String) -> ValueEncodingBox {
        let box = ValueEncodingBox()
        encoder.box.pairs.append((name, box))
        return box
    }

    private func put(_ value: Value, _ key: Key) { newBox(key).set(value) }

    mutating func encodeNil(forKey key: Key) throws { put(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(Value(primitive: value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(Value(primitive: value), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try ValueEncodingBox.encode(
            value, into: newBox(key), codingPath: codingPath + [key], userInfo: encoder.sendableUserInfo)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        encoder.child(newBox(key), key: key).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        encoder.child(newBox(key), key: key).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        encoder.child(newBox(named: "super"), key: ValueCodingKey("super"))
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder { encoder.child(newBox(key), key: key) }
}

struct UnkeyedValueEncodingContainer: UnkeyedEncodingContainer {
    let encoder: ValueEncodingImpl
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { encoder.box.elements.count }

    private func newBox(isByte: Bool) -> ValueEncodingBox {
        let box = ValueEncodingBox()
        if !isByte { encoder.box.onlyBytes = false }
        encoder.box.elements.append(box)
        return box
    }

    private func append(_ value: Value, isByte: Bool) { newBox(isByte: isByte).set(value) }

    mutating func encodeNil() throws { append(.null, isByte: false) }
    mutating func encode(_ value: Bool) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: String) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: Double) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: Float) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: Int) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: Int8) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: Int16) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: Int32) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: Int64) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: UInt) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: UInt8) throws { append(Value(primitive: value), isByte: true) }
    mutating func encode(_ value: UInt16) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: UInt32) throws { append(Value(primitive: value), isByte: false) }
    mutating func encode(_ value: UInt64) throws { append(Value(primitive: value), isByte: false) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let key = ValueCodingKey(index: count)
        try ValueEncodingBox.encode(
            value, into: newBox(isByte: false), codingPath: codingPath + [key],
            userInfo: encoder.sendableUserInfo)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type
    ) -> KeyedEncodingContainer<NestedKey> {
        let key = ValueCodingKey(index: count)
        return encoder.child(newBox(isByte: false), key: key).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let key = ValueCodingKey(index: count)
        return encoder.child(newBox(isByte: false), key: key).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let key = ValueCodingKey(index: count)
        return encoder.child(newBox(isByte: false), key: key)
    }
}

struct ValueSingleValueEncoding: SingleValueEncodingContainer {
    let encoder: ValueEncodingImpl
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ value: Value) { encoder.box.set(value) }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: String) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: Double) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: Float) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: Int) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: Int8) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: Int16) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: Int32) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: Int64) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: UInt) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: UInt8) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: UInt16) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: UInt32) throws { set(Value(primitive: value)) }
    mutating func encode(_ value: UInt64) throws { set(Value(primitive: value)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try ValueEncodingBox.encode(value, into: encoder.box, codingPath: codingPath, userInfo: encoder.sendableUserInfo)
    }
}

/// A coding key for array indices and synthesized names.
struct ValueCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.init(index: intValue) }
    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }
}

extension Value {
    init(primitive value: Int) { self.init(integer: value) }
    init(primitive value: Int8) { self.init(integer: value) }
    init(primitive value: Int16) { self.init(integer: value) }
    init(primitive value: Int32) { self.init(integer: value) }
    init(primitive value: Int64) { self.init(integer: value) }
    init(primitive value: UInt) { self.init(integer: value) }
    init(primitive value: UInt8) { self.init(integer: value) }
    init(primitive value: UInt16) { self.init(integer: value) }
    init(primitive value: UInt32) { self.init(integer: value) }
    init(primitive value: UInt64) { self.init(integer: value) }
    init(primitive value: Bool) { self = .bool(value) }
    init(primitive value: String) { self = .text(value) }
    init(primitive value: Double) { self = .float(value) }
    init(primitive value: Float) { self = .float(Double(value)) }
}

// MARK: - Decoding

/// Turns ``Value``s into `Decodable` Swift values, reading them the way a Perl peer means them.
///
/// Lenient where Perl data needs it:
/// - strings may be text or byte strings (``Value/stringValue``), and so may map keys;
/// - booleans may be CBOR booleans, Perl's `"1"`/`""` (``Value/boolValue``) or 1/0;
/// - integers may come from floats with an integral value, and numbers from decimal strings (Perl
///   numbers that were once used as strings travel as strings);
/// - `null` and `undefined` both count as nil;
/// - `[UInt8]`, `Data` and other byte sequences may be byte strings or arrays of small integers;
/// - a ``Value`` or `ByteBuffer` property takes the value as it is.
///
/// Errors are `DecodingError`s whose context names the coding path.
///
/// Perl: the Swift counterpart of using the data `decode_cbor` returned.
public struct ValueDecoder: Sendable {
    /// Contextual information handed to the decoded types' `init(from:)`.
    public var userInfo: [CodingUserInfoKey: any Sendable] = [:]

    /// Creates a decoder.
    public init() {}

    /// Decodes a `T` from `value`.
    /// - Parameters:
    ///   - type: the type to decode.
    ///   - value: the value to read.
    /// - Returns: the decoded value.
    /// - Throws: `DecodingError` (type mismatch, missing key, null, out-of-range number) with the path.
    public func decode<T: Decodable>(_ type: T.Type, from value: Value) throws -> T {
        try ValueDecodingImpl(value: value, codingPath: [], userInfo: userInfo).unbox(value, as: type)
    }
}

struct ValueDecodingImpl: Decoder {
    let value: Value
    let codingPath: [any CodingKey]
    let sendableUserInfo: [CodingUserInfoKey: any Sendable]
    var userInfo: [CodingUserInfoKey: Any] { sendableUserInfo }

    init(value: Value, codingPath: [any CodingKey], userInfo: [CodingUserInfoKey: any Sendable]) {
        self.value = value
        self.codingPath = codingPath
        self.sendableUserInfo = userInfo
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let pairs) = value else { throw mismatch([String: Value].self, value) }
        return KeyedDecodingContainer(KeyedValueDecodingContainer<Key>(decoder: self, pairs: pairs))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let elements): return UnkeyedValueDecodingContainer(decoder: self, elements: elements)
        case .bytes(let bytes):
            return UnkeyedValueDecodingContainer(
                decoder: self, elements: bytes.readableBytesView.map { Value.int(Int64($0)) })
        default: throw mismatch([Value].self, value)
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { ValueSingleValueDecoding(decoder: self) }

    func child(_ value: Value, key: any CodingKey) -> ValueDecodingImpl {
        ValueDecodingImpl(value: value, codingPath: codingPath + [key], userInfo: sendableUserInfo)
    }

    func mismatch(_ type: Any.Type, _ value: Value) -> DecodingError {
        var shown = value.description
        if shown.count > 80 { shown = String(shown.prefix(77)) + "..." }
        if value.isNull || value == .undefined {
            return .valueNotFound(
                type, .init(codingPath: codingPath, debugDescription: "expected \(type), found \(shown)"))
        }
        return .typeMismatch(type, .init(codingPath: codingPath, debugDescription: "expected \(type), found \(shown)"))
    }

    /// Decodes `value` as `T`, with the lenient rules described at ``ValueDecoder``.
    func unbox<T: Decodable>(_ value: Value, as type: T.Type) throws -> T {
        switch type {
        case is Value.Type: return value as! T
        case is ByteBuffer.Type:
            guard let bytes = value.bytesValue else { throw mismatch(type, value) }
            return bytes as! T
        case is [UInt8].Type:
            if case .bytes(let bytes) = value { return Array(bytes.readableBytesView) as! T }
        case is Bool.Type:
            guard let b = value.boolValue else { throw mismatch(type, value) }
            return b as! T
        case is String.Type:
            guard let s = value.stringValue else { throw mismatch(type, value) }
            return s as! T
        case is Double.Type: return try unboxDouble(value, type) as! T
        case is Float.Type:
            let d = try unboxDouble(value, type)
            let f = Float(d)
            guard f.isFinite || !d.isFinite else { throw outOfRange(type, value) }
            return f as! T
        case is Int.Type: return try unboxInteger(value, Int.self) as! T
        case is Int8.Type: return try unboxInteger(value, Int8.self) as! T
        case is Int16.Type: return try unboxInteger(value, Int16.self) as! T
        case is Int32.Type: return try unboxInteger(value, Int32.self) as! T
        case is Int64.Type: return try unboxInteger(value, Int64.self) as! T
        case is UInt.Type: return try unboxInteger(value, UInt.self) as! T
        case is UInt8.Type: return try unboxInteger(value, UInt8.self) as! T
        case is UInt16.Type: return try unboxInteger(value, UInt16.self) as! T
        case is UInt32.Type: return try unboxInteger(value, UInt32.self) as! T
        case is UInt64.Type: return try unboxInteger(value, UInt64.self) as! T
        default: break
        }
        return try T(from: ValueDecodingImpl(value: value, codingPath: codingPath, userInfo: sendableUserInfo))
    }

    private func outOfRange(_ type: Any.Type, _ value: Value) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath, debugDescription: "\(value) does not fit \(type)"))
    }

    private func unboxDouble(_ value: Value, _ type: Any.Type) throws -> Double {
        if let d = value.doubleValue { return d }
        switch value {
        case .uint(let u): return Double(u)
        case .int(let i): return Double(i)
        case .text, .bytes:
            if let s = value.stringValue, let d = Double(s.trimmingPerlWhitespace()) { return d }
        default: break
        }
        throw mismatch(type, value)
    }

    private func unboxInteger<I: FixedWidthInteger>(_ value: Value, _ type: I.Type) throws -> I {
        switch value {
        case .int(let i):
            guard let result = I(exactly: i) else { throw outOfRange(type, value) }
            return result
        case .uint(let u):
            guard let result = I(exactly: u) else { throw outOfRange(type, value) }
            return result
        case .bignum: throw outOfRange(type, value)
        case .float(let d):
            guard let result = I(exactly: d) else {
                if d.rounded(.towardZero) == d, d.isFinite { throw outOfRange(type, value) }
                throw mismatch(type, value)
            }
            return result
        case .text, .bytes:
            if let s = value.stringValue?.trimmingPerlWhitespace() {
                if let result = I(s) { return result }
                if let d = Double(s), let result = I(exactly: d) { return result }
            }
            throw mismatch(type, value)
        default: throw mismatch(type, value)
        }
    }
}

extension String {
    /// Without leading and trailing ASCII spaces, tabs and newlines (Perl ignores them when numifying).
    func trimmingPerlWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[first...last]
    }
}

struct KeyedValueDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: ValueDecodingImpl
    /// The map's string-like keys (text, bytes, integers as decimal); the last of repeated keys wins.
    let lookup: [String: Value]
    let orderedKeys: [String]
    var codingPath: [any CodingKey] { decoder.codingPath }

    init(decoder: ValueDecodingImpl, pairs: [(key: Value, value: Value)]) {
        self.decoder = decoder
        var lookup: [String: Value] = [:]
        var orderedKeys: [String] = []
        lookup.reserveCapacity(pairs.count)
        for pair in pairs {
            let name: String
            switch pair.key {
            case .text, .bytes: name = pair.key.stringValue!
            case .int(let i): name = String(i)
            case .uint(let u): name = String(u)
            default: continue
            }
            if lookup.updateValue(pair.value, forKey: name) == nil { orderedKeys.append(name) }
        }
        self.lookup = lookup
        self.orderedKeys = orderedKeys
    }

    var allKeys: [Key] { orderedKeys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { lookup[key.stringValue] != nil }

    private func value(_ key: Key) throws -> Value {
        guard let value = lookup[key.stringValue] else {
            throw DecodingError.keyNotFound(
                key, .init(codingPath: codingPath, debugDescription: "no value for key \"\(key.stringValue)\""))
        }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        switch try value(key) {
        case .null, .undefined: return true
        default: return false
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, forKey key: Key, as: ()) throws -> T {
        let value = try value(key)
        return try decoder.child(value, key: key).unbox(value, as: type)
    }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(type, forKey: key, as: ()) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(type, forKey: key, as: ()) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(type, forKey: key, as: ()) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(type, forKey: key, as: ()) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(type, forKey: key, as: ()) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(type, forKey: key, as: ()) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(type, forKey: key, as: ()) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(type, forKey: key, as: ()) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(type, forKey: key, as: ()) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(type, forKey: key, as: ()) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(type, forKey: key, as: ()) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(type, forKey: key, as: ()) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(type, forKey: key, as: ()) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(type, forKey: key, as: ()) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decode(type, forKey: key, as: ()) }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder.child(value(key), key: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.child(value(key), key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        decoder.child(lookup["super"] ?? .null, key: ValueCodingKey("super"))
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        decoder.child(lookup[key.stringValue] ?? .null, key: key)
    }
}

struct UnkeyedValueDecodingContainer: UnkeyedDecodingContainer {
    let decoder: ValueDecodingImpl
    let elements: [Value]
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    init(decoder: ValueDecodingImpl, elements: [Value]) {
        self.decoder = decoder
        self.elements = elements
    }

    private mutating func next(_ type: Any.Type) throws -> (Value, ValueDecodingImpl) {
        let key = ValueCodingKey(index: currentIndex)
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(
                type, .init(codingPath: codingPath + [key], debugDescription: "the array has no more elements"))
        }
        let value = elements[currentIndex]
        currentIndex += 1
        return (value, decoder.child(value, key: key))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd else { _ = try next(Never.self); return false }
        switch elements[currentIndex] {
        case .null, .undefined:
            currentIndex += 1
            return true
        default: return false
        }
    }

    private mutating func decodeNext<T: Decodable>(_ type: T.Type) throws -> T {
        let (value, child) = try next(type)
        return try child.unbox(value, as: type)
    }
    mutating func decode(_ type: Bool.Type) throws -> Bool { try decodeNext(type) }
    mutating func decode(_ type: String.Type) throws -> String { try decodeNext(type) }
    mutating func decode(_ type: Double.Type) throws -> Double { try decodeNext(type) }
    mutating func decode(_ type: Float.Type) throws -> Float { try decodeNext(type) }
    mutating func decode(_ type: Int.Type) throws -> Int { try decodeNext(type) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try decodeNext(type) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try decodeNext(type) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try decodeNext(type) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try decodeNext(type) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try decodeNext(type) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try decodeNext(type) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try decodeNext(type) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try decodeNext(type) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try decodeNext(type) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try decodeNext(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try next([String: Value].self).1.container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try next([Value].self).1.unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { try next(Value.self).1 }
}

struct ValueSingleValueDecoding: SingleValueDecodingContainer {
    let decoder: ValueDecodingImpl
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool {
        switch decoder.value {
        case .null, .undefined: return true
        default: return false
        }
    }
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: String.Type) throws -> String { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: Double.Type) throws -> Double { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: Float.Type) throws -> Float { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: Int.Type) throws -> Int { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.unbox(decoder.value, as: type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.unbox(decoder.value, as: type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.unbox(decoder.value, as: type) }
}

// MARK: - Value itself

extension Value: Codable {
    /// Encodes the value with any `Encoder`. ``ValueEncoder`` keeps it as it is; other encoders get
    /// the nearest plain form: maps with string-like keys become keyed containers, byte strings
    /// arrays of bytes, bignums and tags throw `EncodingError.invalidValue`.
    /// - Parameter encoder: the encoder.
    public func encode(to encoder: any Encoder) throws {
        if let valueEncoder = encoder as? ValueEncodingImpl {
            valueEncoder.box.set(self)
            return
        }
        switch self {
        case .null, .undefined:
            var container = encoder.singleValueContainer()
            try container.encodeNil()
        case .bool(let b):
            var container = encoder.singleValueContainer()
            try container.encode(b)
        case .int(let i):
            var container = encoder.singleValueContainer()
            try container.encode(i)
        case .uint(let u):
            var container = encoder.singleValueContainer()
            try container.encode(u)
        case .float(let d):
            var container = encoder.singleValueContainer()
            try container.encode(d)
        case .text(let s):
            var container = encoder.singleValueContainer()
            try container.encode(s)
        case .bytes(let b):
            var container = encoder.unkeyedContainer()
            for byte in b.readableBytesView { try container.encode(byte) }
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            for element in elements { try container.encode(element) }
        case .map(let pairs):
            var container = encoder.container(keyedBy: ValueCodingKey.self)
            for pair in pairs {
                guard let name = pair.key.stringValue ?? pair.key.int64Value.map({ String($0) }) else {
                    throw EncodingError.invalidValue(
                        self,
                        .init(codingPath: encoder.codingPath, debugDescription: "map key \(pair.key) is not a string"))
                }
                try container.encode(pair.value, forKey: ValueCodingKey(name))
            }
        case .bignum, .tagged, .simple:
            throw EncodingError.invalidValue(
                self, .init(codingPath: encoder.codingPath, debugDescription: "\(self) has no plain Codable form"))
        }
    }

    /// Decodes a value from any `Decoder`: ``ValueDecoder`` gives it as it is; other decoders are
    /// probed for nil, Bool, integers, Double, String, a keyed container, then an unkeyed container.
    /// - Parameter decoder: the decoder.
    public init(from decoder: any Decoder) throws {
        if let valueDecoder = decoder as? ValueDecodingImpl {
            self = valueDecoder.value
            return
        }
        if let container = try? decoder.singleValueContainer() {
            if container.decodeNil() { self = .null; return }
            if let b = try? container.decode(Bool.self) { self = .bool(b); return }
            if let i = try? container.decode(Int64.self) { self = .int(i); return }
            if let u = try? container.decode(UInt64.self) { self = .uint(u); return }
            if let d = try? container.decode(Double.self) { self = .float(d); return }
            if let s = try? container.decode(String.self) { self = .text(s); return }
        }
        if let keyed = try? decoder.container(keyedBy: ValueCodingKey.self) {
            var pairs: [(key: Value, value: Value)] = []
            for key in keyed.allKeys {
                pairs.append((.text(key.stringValue), try keyed.decode(Value.self, forKey: key)))
            }
            self = .map(pairs)
            return
        }
        var unkeyed = try decoder.unkeyedContainer()
        var elements: [Value] = []
        while !unkeyed.isAtEnd { elements.append(try unkeyed.decode(Value.self)) }
        self = .array(elements)
    }
}
