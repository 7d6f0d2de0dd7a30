import AEMPCodecs
import Foundation
import NIOCore
import Testing

@Suite("Value Codable bridging")
struct ValueCodableTests {
    struct Job: Codable, Equatable {
        enum Kind: String, Codable { case resize, crop }
        var name: String
        var tries: Int
        var ratio: Double
        var urgent: Bool
        var kind: Kind
        var tags: [String]
        var limits: [String: UInt8]
        var note: String?
        var payload: [UInt8]
    }

    static let job = Job(
        name: "photo", tries: 3, ratio: 0.5, urgent: true, kind: .crop, tags: ["a", "b"], limits: ["w": 200],
        note: nil, payload: [1, 2, 255])

    @Test func encodesKeyedAsMapsWithTextKeys() throws {
        let value = try ValueEncoder().encode(Self.job)
        #expect(value["name"] == "photo")
        #expect(value["tries"] == 3)
        #expect(value["ratio"] == 0.5)
        #expect(value["urgent"] == true)
        #expect(value["kind"] == "crop")
        #expect(value["tags"] == ["a", "b"])
        #expect(value["limits"] == ["w": 200])
        #expect(value["note"] == nil, "nil optionals are left out")
        #expect(value["payload"] == Value(bytes: [1, 2, 255]), "[UInt8] is a byte string")
        #expect(value.mapValue?.allSatisfy { if case .text = $0.key { true } else { false } } == true)
        #expect(try ValueDecoder().decode(Job.self, from: value) == Self.job)
    }

    @Test func decodesWhatAPerlPeerSends() throws {
        // Byte-string keys and strings, Perl booleans, integral floats, numeric strings, arrays for bytes.
        let perl: Value = [
            Value(byteString: "name"): Value(byteString: "photo"),
            Value(byteString: "tries"): Value(byteString: "3"),
            Value(byteString: "ratio"): 0.5,
            Value(byteString: "urgent"): Value(byteString: "1"),
            Value(byteString: "kind"): Value(byteString: "crop"),
            Value(byteString: "tags"): [Value(byteString: "a"), "b"],
            Value(byteString: "limits"): [Value(byteString: "w"): 200.0],
            Value(byteString: "note"): nil,
            Value(byteString: "payload"): [1, 2, 255],
        ]
        #expect(try ValueDecoder().decode(Job.self, from: perl) == Self.job)
        var withFalse = perl
        if case .map(var pairs) = withFalse {
            pairs[3].value = Value(bytes: [])
            withFalse = .map(pairs)
        }
        #expect(try ValueDecoder().decode(Job.self, from: withFalse).urgent == false)
    }

    @Test func dataAndByteBuffersBecomeByteStrings() throws {
        struct Blob: Codable, Equatable {
            var data: Data
            var buffer: ByteBuffer
            var empty: Data
            var raw: Value
        }
        let blob = Blob(data: Data([9, 8, 7]), buffer: ByteBuffer(bytes: [1]), empty: Data(), raw: .tagged(5, [1]))
        let value = try ValueEncoder().encode(blob)
        #expect(value["data"] == Value(bytes: [9, 8, 7]))
        #expect(value["buffer"] == Value(bytes: [1]))
        #expect(value["empty"] == [], "an empty Data cannot be told from an empty array")
        #expect(value["raw"] == .tagged(5, [1]), "a Value property is taken as it is")
        #expect(try ValueDecoder().decode(Blob.self, from: value) == blob)
        #expect(try ValueDecoder().decode(Data.self, from: Value(bytes: [1, 2])) == Data([1, 2]))
        #expect(try ValueDecoder().decode([UInt8].self, from: Value(bytes: [1, 2])) == [1, 2])
        #expect(try ValueDecoder().decode(ByteBuffer.self, from: "ab") == ByteBuffer(string: "ab"))
    }

    @Test func scalarsAndCollections() throws {
        let encoder = ValueEncoder()
        let decoder = ValueDecoder()
        #expect(try encoder.encode(UInt64.max) == .uint(.max))
        #expect(try encoder.encode(Int8(-3)) == -3)
        #expect(try encoder.encode(Float(1.5)) == 1.5)
        #expect(try encoder.encode([1, 2, 3]) == [1, 2, 3])
        #expect(try encoder.encode([Int]()) == [])
        #expect(try encoder.encode(Optional<Int>.none) == nil)
        #expect(try encoder.encode([1: "a"]) == ["1": "a"], "Int-keyed dictionaries have text keys, as in JSON")
        #expect(try encoder.encode([[UInt8]()]) == [Value(bytes: [])], "an empty [UInt8] is an empty byte string")
        #expect(try encoder.encode([[Int8]()]) == [[]])
        #expect(try decoder.decode(UInt64.self, from: .uint(.max)) == .max)
        #expect(try decoder.decode(Int.self, from: 4.0) == 4)
        #expect(try decoder.decode(Int.self, from: Value(byteString: " 42 ")) == 42)
        #expect(try decoder.decode(Int.self, from: "1e3") == 1000)
        #expect(try decoder.decode(Double.self, from: 3) == 3.0)
        #expect(try decoder.decode(Double.self, from: .uint(.max)) == 18_446_744_073_709_551_615.0)
        #expect(try decoder.decode(Double.self, from: Value(byteString: "2.5")) == 2.5)
        #expect(try decoder.decode(Float.self, from: 0.5) == 0.5)
        #expect(try decoder.decode(Int8.self, from: -128) == -128)
        #expect(try decoder.decode(UInt16.self, from: 65535) == 65535)
        #expect(try decoder.decode(Int16.self, from: 5) == 5)
        #expect(try decoder.decode(Int32.self, from: 5) == 5)
        #expect(try decoder.decode(Int64.self, from: 5) == 5)
        #expect(try decoder.decode(UInt.self, from: 5) == 5)
        #expect(try decoder.decode(UInt8.self, from: 5) == 5)
        #expect(try decoder.decode(UInt32.self, from: 5) == 5)
        #expect(try decoder.decode(Bool.self, from: 1) == true)
        #expect(try decoder.decode(String?.self, from: .undefined) == nil)
        #expect(try decoder.decode([String: Int].self, from: [Value(byteString: "a"): 1, "b": 2]) == ["a": 1, "b": 2])
        #expect(try decoder.decode([Int: String].self, from: [1: "x"]) == [1: "x"])
        #expect(try decoder.decode([Value].self, from: [1, "x"]) == [1, "x"])
        #expect(try decoder.decode(Value.self, from: ["k": .simple(99)]) == ["k": .simple(99)])
        #expect(try decoder.decode([Int?].self, from: [1, nil]) == [1, nil])
    }

    @Test func nestedContainersAndSuper() throws {
        class Base: Codable {
            var id = 1
            init() {}
        }
        final class Derived: Base {
            var extra = "x"
            enum Keys: String, CodingKey { case extra, inner, list }
            override init() { super.init() }
            required init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Keys.self)
                extra = try container.decode(String.self, forKey: .extra)
                let inner = try container.nestedContainer(keyedBy: Keys.self, forKey: .inner)
                #expect(try inner.decode(Int.self, forKey: .extra) == 7)
                var list = try container.nestedUnkeyedContainer(forKey: .list)
                #expect(list.count == 2)
                #expect(try list.decodeNil())
                var nested = try list.nestedUnkeyedContainer()
                #expect(try nested.decode(Bool.self))
                #expect(list.isAtEnd)
                try super.init(from: container.superDecoder())
            }
            override func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                try container.encode(extra, forKey: .extra)
                var inner = container.nestedContainer(keyedBy: Keys.self, forKey: .inner)
                try inner.encode(7, forKey: .extra)
                var list = container.nestedUnkeyedContainer(forKey: .list)
                try list.encodeNil()
                var nested = list.nestedUnkeyedContainer()
                try nested.encode(true)
                try super.encode(to: container.superEncoder())
            }
        }
        let value = try ValueEncoder().encode(Derived())
        #expect(value == ["extra": "x", "inner": ["extra": 7], "list": [nil, [true]], "super": ["id": 1]])
        let back = try ValueDecoder().decode(Derived.self, from: value)
        #expect(back.id == 1 && back.extra == "x")
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    @Test func everyContainerOperation() throws {
        struct Everything: Codable, Equatable {
            var values: [Int] = [1, 2]
            init() {}
            enum Keys: String, CodingKey { case list, sup }
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Keys.self)
                #expect(container.allKeys.map(\.stringValue).sorted() == ["list", "sup"])
                #expect(container.contains(.list))
                #expect(try !container.decodeNil(forKey: .list))
                let any = try decoder.container(keyedBy: AnyKey.self)
                #expect(throws: DecodingError.self) { try any.decodeNil(forKey: AnyKey(stringValue: "none")) }
                #expect(throws: DecodingError.self) {
                    try any.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey(stringValue: "list"))
                }
                var list = try container.nestedUnkeyedContainer(forKey: .list)
                let inner = try list.nestedContainer(keyedBy: Keys.self)
                #expect(try inner.decode(Int.self, forKey: .list) == 1)
                let superOfList = try list.superDecoder()
                #expect(try superOfList.singleValueContainer().decode(Int.self) == 2)
                #expect(throws: DecodingError.self) { try list.nestedUnkeyedContainer() }
                #expect(throws: DecodingError.self) { try list.decodeNil() }
                let sup = try container.superDecoder(forKey: .sup)
                var supList = try sup.unkeyedContainer()
                values = [try supList.decode(Int.self), try supList.decode(Int.self)]
                #expect(try container.superDecoder().singleValueContainer().decodeNil())
            }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Keys.self)
                var list = container.nestedUnkeyedContainer(forKey: .list)
                var inner = list.nestedContainer(keyedBy: Keys.self)
                try inner.encode(1, forKey: .list)
                var superOfList = list.superEncoder().singleValueContainer()
                try superOfList.encode(2)
                #expect(list.count == 2)
                var sup = container.superEncoder(forKey: .sup).unkeyedContainer()
                try sup.encode(contentsOf: values)
            }
        }
        let value = try ValueEncoder().encode(Everything())
        #expect(value == ["list": [["list": 1], 2], "sup": [1, 2]])
        #expect(
            try ValueDecoder().decode(Everything.self, from: ["list": [["list": 1], 2], "sup": [1, 2]]) == Everything())
    }

    @Test func primitiveOverloadsOfEveryContainer() throws {
        struct Primitives: Codable, Equatable {
            var b = true, s = "s", d = 1.5, f: Float = 2.5, i = -1, i8: Int8 = -8, i16: Int16 = -16
            var i32: Int32 = -32, i64: Int64 = -64, u: UInt = 1, u8: UInt8 = 8, u16: UInt16 = 16
            var u32: UInt32 = 32, u64: UInt64 = 64
        }
        struct Unkeyed: Codable, Equatable {
            var p = Primitives()
            init() {}
            init(from decoder: any Decoder) throws {
                var c = try decoder.unkeyedContainer()
                p = Primitives(
                    b: try c.decode(Bool.self), s: try c.decode(String.self), d: try c.decode(Double.self),
                    f: try c.decode(Float.self), i: try c.decode(Int.self), i8: try c.decode(Int8.self),
                    i16: try c.decode(Int16.self), i32: try c.decode(Int32.self), i64: try c.decode(Int64.self),
                    u: try c.decode(UInt.self), u8: try c.decode(UInt8.self), u16: try c.decode(UInt16.self),
                    u32: try c.decode(UInt32.self), u64: try c.decode(UInt64.self))
            }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.unkeyedContainer()
                try c.encode(p.b); try c.encode(p.s); try c.encode(p.d); try c.encode(p.f); try c.encode(p.i)
                try c.encode(p.i8); try c.encode(p.i16); try c.encode(p.i32); try c.encode(p.i64); try c.encode(p.u)
                try c.encode(p.u8); try c.encode(p.u16); try c.encode(p.u32); try c.encode(p.u64)
            }
        }
        let keyed = try ValueEncoder().encode(Primitives())
        #expect(keyed["u64"] == 64 && keyed["f"] == 2.5 && keyed["s"] == "s")
        #expect(try ValueDecoder().decode(Primitives.self, from: keyed) == Primitives())
        let unkeyed = try ValueEncoder().encode(Unkeyed())
        #expect(unkeyed.arrayValue?.count == 14)
        #expect(try ValueDecoder().decode(Unkeyed.self, from: unkeyed) == Unkeyed())
        // Single-value containers, through a wrapper per type.
        struct Single<T: Codable & Equatable>: Codable, Equatable {
            var v: T
            init(_ v: T) { self.v = v }
            init(from decoder: any Decoder) throws { v = try decoder.singleValueContainer().decode(T.self) }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.singleValueContainer()
                try c.encode(v)
            }
        }
        func roundTrip<T: Codable & Equatable>(_ v: T) throws -> Bool {
            try ValueDecoder().decode(Single<T>.self, from: ValueEncoder().encode(Single(v))) == Single(v)
        }
        #expect(try roundTrip(true) && roundTrip("x") && roundTrip(1.5) && roundTrip(Float(1.5)) && roundTrip(-1))
        #expect(try roundTrip(Int8(-1)) && roundTrip(Int16(-1)) && roundTrip(Int32(-1)) && roundTrip(Int64(-1)))
        #expect(try roundTrip(UInt(1)) && roundTrip(UInt8(1)) && roundTrip(UInt16(1)) && roundTrip(UInt32(1)))
        #expect(try roundTrip(UInt64.max) && roundTrip([1, 2]) && roundTrip(Value.simple(99)))
    }

    @Test func errorsNameTheCodingPath() throws {
        struct Inner: Codable { var count: Int }
        struct Outer: Codable { var items: [Inner] }
        let bad: Value = ["items": [["count": 1], ["count": "many"]]]
        do {
            _ = try ValueDecoder().decode(Outer.self, from: bad)
            Issue.record("expected an error")
        } catch DecodingError.typeMismatch(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["items", "Index 1", "count"])
        }
        do {
            _ = try ValueDecoder().decode(Outer.self, from: ["items": [[:]]])
            Issue.record("expected an error")
        } catch DecodingError.keyNotFound(let key, let context) {
            #expect(key.stringValue == "count")
            #expect(context.codingPath.map(\.stringValue) == ["items", "Index 0"])
        }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int.self, from: nil) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(UInt8.self, from: 256) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int.self, from: 1.5) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int.self, from: 1e30) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int.self, from: .uint(.max)) }
        #expect(throws: DecodingError.self) {
            try ValueDecoder().decode(Int.self, from: .bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]))
        }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Int.self, from: "many") }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Double.self, from: true) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Float.self, from: 1e300) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(Bool.self, from: "maybe") }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(String.self, from: 1) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode(ByteBuffer.self, from: 1) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode([Int].self, from: 1) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode([String: Int].self, from: [1]) }
        #expect(throws: DecodingError.self) { try ValueDecoder().decode([Int].self, from: [nil]) }
        do {
            struct Pair: Decodable {
                init(from decoder: any Decoder) throws {
                    var c = try decoder.unkeyedContainer()
                    _ = try c.decode(Int.self)
                    _ = try c.decode(Int.self)
                }
            }
            _ = try ValueDecoder().decode(Pair.self, from: [1])
            Issue.record("expected an error")
        } catch DecodingError.valueNotFound(_, let context) {
            #expect(context.codingPath.map(\.stringValue) == ["Index 1"])
        }
    }

    @Test func valueWithOtherCoders() throws {
        let value: Value = ["a": [1, 2.5, "x", true, nil], "b": Value(bytes: [1, 2])]
        let json = try JSONEncoder().encode(value)
        let back = try JSONDecoder().decode(Value.self, from: json)
        #expect(back["a"] == [1, 2.5, "x", true, nil])
        #expect(back["b"] == [1, 2], "other coders see bytes as an array of numbers")
        #expect(throws: EncodingError.self) { try JSONEncoder().encode(Value.tagged(1, 1)) }
        #expect(throws: EncodingError.self) { try JSONEncoder().encode(Value.map([([1], 1)])) }
        #expect(try JSONDecoder().decode(Value.self, from: Data("18446744073709551615".utf8)) == .uint(.max))
    }

    @Test func userInfoReachesTheTypes() throws {
        struct Probe: Codable {
            static let key = CodingUserInfoKey(rawValue: "probe")!
            var seen: String
            init(seen: String) { self.seen = seen }
            init(from decoder: any Decoder) throws { seen = decoder.userInfo[Self.key] as? String ?? "" }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.singleValueContainer()
                try c.encode(encoder.userInfo[Self.key] as? String ?? "")
            }
        }
        var encoder = ValueEncoder()
        encoder.userInfo[Probe.key] = "enc"
        #expect(try encoder.encode(Probe(seen: "")) == "enc")
        var decoder = ValueDecoder()
        decoder.userInfo[Probe.key] = "dec"
        #expect(try decoder.decode(Probe.self, from: nil).seen == "dec")
        struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
        #expect(try ValueEncoder().encode(Nothing()) == [:])
    }
}
