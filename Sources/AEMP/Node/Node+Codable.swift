import AEMPCodecs

/// Typed messages: `Encodable` arguments in, `Decodable` values out, through ``AEMPCodecs/ValueEncoder``
/// and ``AEMPCodecs/ValueDecoder``.
///
/// **The wire shape**, so that a Perl node builds and reads the same messages: a message is the
/// array of its arguments, each encoded on its own. A struct (any keyed container) is a CBOR map with
/// text keys in declaration order (a Perl hash), an array or other unkeyed container a CBOR array,
/// `String` a text string, `[UInt8]`/`Data`/`ByteBuffer` a byte string (a Perl byte string), integers
/// canonical integers, `Double` a float, `Bool` a CBOR boolean (Perl `Types::Serialiser` true/false),
/// `nil` null (`undef`; a `nil` optional property is left out of its map, as Swift's synthesized
/// `Codable` does: Perl sees no such key), an enum with a raw value its raw value. With JSON framing the same values
/// travel as JSON. So `send(port, encoding: Job(name: "resize", tries: 3), 7)` is Perl's
/// `snd $port, { name => "resize", tries => 3 }, 7`. Decoding accepts what Perl sends: map keys as
/// text or byte strings, `1`/`0`/`""` for `Bool` fields, integers for `Double` fields, decimal
/// strings for numbers (Perl numbers that were used as strings travel as strings).
extension Node {
    /// Sends the arguments, each encoded with ``AEMPCodecs/ValueEncoder``, as one message. Perl:
    /// `snd $port, @args`.
    ///
    /// - Throws: the `EncodingError` of the first argument that cannot be encoded (nothing is sent).
    public func send<each Argument: Encodable>(_ port: PortID, encoding arguments: repeat each Argument) throws {
        send(port, try Self.encode(repeat each arguments))
    }

    /// Calls a port with encoded arguments and decodes the reply as `Reply` (see
    /// ``PortMessage/decode(_:)`` for the rule). Perl: `cal $port, @args, sub { ... }`.
    ///
    /// - Throws: ``CallError`` as ``call(_:_:timeout:)``; a `DecodingError` when the reply does not
    ///   decode; an `EncodingError` when an argument does not encode.
    public func call<Reply: Decodable, each Argument: Encodable>(
        _ port: PortID, encoding arguments: repeat each Argument, returning: Reply.Type = Reply.self,
        timeout: Duration = .seconds(30)
    ) async throws -> Reply {
        let reply = try await call(port, try Self.encode(repeat each arguments), timeout: timeout)
        return try PortMessage.decode(Reply.self, from: reply)
    }

    static func encode<each Argument: Encodable>(_ arguments: repeat each Argument) throws -> [Value] {
        let encoder = ValueEncoder()
        var values: [Value] = []
        for argument in repeat each arguments {
            values.append(try encoder.encode(argument))
        }
        return values
    }
}

extension PortMessage {
    /// Decodes the message as one `T`: a message of one element from that element, a longer (or
    /// empty) one from the array of its elements (so `[Job]`, or a type that decodes an unkeyed
    /// container, reads the whole message).
    ///
    /// - Throws: a `DecodingError` naming what did not fit.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try Self.decode(type, from: values)
    }

    /// Decodes the message's elements one by one, by position: `let (job, tries) = try
    /// message.decode(Job.self, Int.self)`. Extra elements are ignored, as Perl's `my ($a, $b) = @_`
    /// does.
    ///
    /// - Throws: a `DecodingError`: `valueNotFound` when the message has fewer elements, or what
    ///   the element's decoding threw.
    public func decode<each T: Decodable>(_ types: repeat (each T).Type) throws -> (repeat each T) {
        let decoder = ValueDecoder()
        var index = 0
        let values = self.values
        func next<U: Decodable>(_ type: U.Type) throws -> U {
            defer { index += 1 }
            guard index < values.count else {
                throw DecodingError.valueNotFound(
                    U.self,
                    .init(
                        codingPath: [],
                        debugDescription: "the message has \(values.count) element\(values.count == 1 ? "" : "s"); element \(index) was expected"))
            }
            return try decoder.decode(U.self, from: values[index])
        }
        return (repeat try next(each types))
    }

    static func decode<T: Decodable>(_ type: T.Type, from values: [Value]) throws -> T {
        try ValueDecoder().decode(type, from: values.count == 1 ? values[0] : .array(values))
    }
}
