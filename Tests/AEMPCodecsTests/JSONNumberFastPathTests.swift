import AEMPCodecs
import NIOCore
import Testing

/// Short integers that end inside the bytes at hand take a fast path in the JSON decoder; fed one
/// byte at a time, every number takes the general one. Both must agree, errors included.
@Suite("JSON decoder: the fast paths (short integers, strings eight bytes at a time) agree with the general path")
struct JSONNumberFastPathTests {
    static let numbers = [
        "0", "-0", "7", "-7", "42", "123456789012345678", "-123456789012345678", "999999999999999999",
        "1234567890123456789", "-9223372036854775808", "9223372036854775807", "18446744073709551615",
        "12.5", "-0.5", "1e3", "1E-2", "01", "-01", "00", "-", "-inf", "-nan", "1.", "1e", "2.5e+3",
    ]

    enum Result: Equatable {
        case value(Value?)
        case error(JSONError.Code)
    }

    /// `text` as an element of `[text,1]` (see ``decodeText(_:oneByteAtATime:options:)``).
    static func decode(_ text: String, oneByteAtATime: Bool, options: JSONStreamDecoder.Options = .init()) -> Result {
        decodeText(Array("[\(text),1]".utf8), oneByteAtATime: oneByteAtATime, options: options)
    }

    /// Decodes one text, whole or fed one byte at a time, then as the end of the stream.
    static func decodeText(_ bytes: [UInt8], oneByteAtATime: Bool, options: JSONStreamDecoder.Options = .init()) -> Result {
        var decoder = JSONStreamDecoder(options: options)
        var buffer = ByteBuffer()
        do throws(JSONError) {
            if oneByteAtATime {
                for byte in bytes {
                    buffer.writeInteger(byte)
                    if let value = try decoder.next(from: &buffer) { return .value(value) }
                }
            } else {
                buffer.writeBytes(bytes)
                if let value = try decoder.next(from: &buffer) { return .value(value) }
            }
            return .value(try decoder.finish(from: &buffer))
        } catch {
            return .error(error.code)
        }
    }

    @Test(arguments: numbers)
    func sameResultWholeAndByteByByte(number: String) {
        let whole = Self.decode(number, oneByteAtATime: false)
        #expect(whole == Self.decode(number, oneByteAtATime: true))
        if number == "42" { #expect(whole == .value([42, 1])) }
        if number == "-0" { #expect(whole == .value([0, 1])) }
    }

    @Test func numberLengthLimitAppliesToShortIntegers() {
        let options = JSONStreamDecoder.Options(maxNumberLength: 3)
        #expect(Self.decode("123", oneByteAtATime: false, options: options) == .value([123, 1]))
        #expect(Self.decode("1234", oneByteAtATime: false, options: options) == .error(.textTooLarge))
        #expect(Self.decode("-123", oneByteAtATime: false, options: options) == .error(.textTooLarge))
    }

    /// Strings of every length up to 19 with an escape, a quote escape, a raw control byte (an
    /// error) or a non-ASCII letter at every position: the same result whole and byte by byte.
    @Test(arguments: [#"\n"#, #"\""#, "\u{01}", "é", #"\u00e9"#])
    func stringsWithSpecialsAtEveryPosition(special: String) {
        for length in 0...19 {
            for position in 0...length {
                var text = String(repeating: "a", count: length)
                text.insert(contentsOf: special, at: text.index(text.startIndex, offsetBy: position))
                let json = "\"" + text + "\""
                let whole = Self.decode(json, oneByteAtATime: false)
                #expect(whole == Self.decode(json, oneByteAtATime: true), "\(json)")
            }
        }
    }

    /// Whole messages: flat arrays take a one-pass path; anything it does not handle (nesting,
    /// escapes, floats, bad literals, trailing commas, truncation) falls back to the scanner. Both
    /// must agree for every one of these texts, whole and fed byte by byte.
    static let arrays = [
        "[]", "[ ]", " \n[\"port\",1,\"payload of thirty-two bytes 0123\"]", "[true,false,null]",
        "[ \"a\" , -12 ,\ttrue\r\n]", "[1,]", "[,1]", "[1 2]", "[truex]", "[tru]", "[nul]", "[fals]",
        "[\"a\\nb\"]", "[\"é\",\"\u{01}\"]", "[1.5]", "[1e2]", "[01]", "[[1]]", "[{\"a\":1}]", "[\"x\"",
        "[1", "[-]", "[-inf]", "[nan]", "[\"abcdefghijklmnopqrstuvwxyz\"]", "[123456789012345678901]",
    ]

    @Test(arguments: arrays)
    func wholeArraysAgreeWithTheScanner(text: String) {
        let bytes = Array(text.utf8)
        #expect(Self.decodeText(bytes, oneByteAtATime: false) == Self.decodeText(bytes, oneByteAtATime: true), "\(text)")
    }

    @Test func aFlatArrayDecodesAndTheNextTextFollows() throws {
        var decoder = JSONStreamDecoder()
        var buffer = ByteBuffer(string: "[\"p\",1,true]\n[\"q\",2]\n[\"r\"")
        #expect(try decoder.next(from: &buffer) == ["p", 1, true])
        #expect(try decoder.next(from: &buffer) == ["q", 2])
        #expect(try decoder.next(from: &buffer) == nil)
        buffer.writeString("]")
        #expect(try decoder.next(from: &buffer) == ["r"])
    }

    @Test func aFlatArrayOverTheTextLimitIsStillAnError() {
        var decoder = JSONStreamDecoder(options: JSONStreamDecoder.Options(maxTextSize: 8))
        var buffer = ByteBuffer(string: "[1,2,3,4,5]")
        #expect(throws: JSONError.self) { try decoder.next(from: &buffer) }
    }
}
