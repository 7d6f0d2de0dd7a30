@testable import AEMPCodecs
import NIOCore
import Testing

/// Text from the wire is validated UTF-8 (RFC 3629) with an ASCII fast path that checks eight
/// bytes at a time; these cases put non-ASCII and invalid bytes at every position around the
/// eight-byte steps, in CBOR and JSON text.
@Suite("UTF-8 validation of received text")
struct UTF8ValidationTests {
    static let lengths = Array(0...19)

    static func validated(_ bytes: [UInt8]) -> String? {
        bytes.withUnsafeBytes { validatedUTF8String($0) }
    }

    @Test(arguments: lengths)
    func asciiOfEveryLength(length: Int) {
        let bytes = (0..<length).map { UInt8(0x21 + $0 % 90) }
        #expect(Self.validated(bytes).map { Array($0.utf8) } == bytes)
    }

    /// A valid two-byte sequence (é) at every position: the slow path accepts it.
    @Test(arguments: lengths)
    func nonASCIIAtEveryPosition(length: Int) {
        for position in 0..<max(length, 1) {
            var bytes = [UInt8](repeating: 0x61, count: length)
            bytes.insert(contentsOf: [0xC3, 0xA9], at: min(position, bytes.count))
            #expect(Self.validated(bytes).map { Array($0.utf8) } == bytes, "position \(position)")
        }
    }

    /// Invalid bytes at every position are rejected: a lone continuation byte, an overlong form,
    /// an encoded surrogate, a truncated sequence, 0xFF.
    @Test(arguments: [[0x80], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xFF]] as [[UInt8]])
    func invalidBytesAtEveryPosition(bad: [UInt8]) {
        for length in Self.lengths {
            for position in 0...length {
                var bytes = [UInt8](repeating: 0x62, count: length)
                bytes.insert(contentsOf: bad, at: position)
                #expect(Self.validated(bytes) == nil, "length \(length) position \(position)")
            }
        }
    }

    /// Through the decoders: a CBOR text string and a JSON string with a bad byte after eight
    /// ASCII bytes are errors; the same with a valid é decode.
    @Test func decodersRejectInvalidAfterAnASCIIWord() throws {
        let ascii = Array("abcdefgh".utf8)
        var cbor = CBORStreamDecoder()
        var good = ByteBuffer(bytes: [0x6A] + ascii + [0xC3, 0xA9])  // text(10)
        #expect(try cbor.next(from: &good) == .text("abcdefghé"))
        var badCBOR = CBORStreamDecoder()
        var bad = ByteBuffer(bytes: [0x6A] + ascii + [0xC3, 0x28])
        #expect(throws: CBORError.self) { try badCBOR.next(from: &bad) }

        var decoder = JSONStreamDecoder()
        var json = ByteBuffer(bytes: Array("[\"".utf8) + ascii + [0xC3, 0xA9] + Array("\"]".utf8))
        #expect(try decoder.next(from: &json) == ["abcdefghé"])
        var badDecoder = JSONStreamDecoder()
        var badJSON = ByteBuffer(bytes: Array("[\"".utf8) + ascii + [0xFF] + Array("\"]".utf8))
        #expect(throws: JSONError.self) { try badDecoder.next(from: &badJSON) }
    }
}

/// The JSON writer's word-at-a-time test for strings that need no escape, against a byte-by-byte
/// reference: every byte value at every position of strings up to 19 bytes, UTF-8 and Latin-1.
@Suite("JSON writer: strings that need no escape")
struct JSONEscapeScanTests {
    static func reference(_ bytes: [UInt8], latin1: Bool) -> Bool {
        !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || (latin1 && $0 >= 0x80) }
    }

    @Test(arguments: [false, true])
    func everyByteAtEveryPosition(latin1: Bool) {
        var mismatches = 0
        for length in 1...19 {
            for position in 0..<length {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                    bytes[position] = UInt8(value)
                    let fast = bytes.withUnsafeBufferPointer { ByteBuffer.needsNoEscape($0, latin1: latin1) }
                    if fast != Self.reference(bytes, latin1: latin1) { mismatches += 1 }
                }
            }
        }
        #expect(mismatches == 0)
        #expect([UInt8]().withUnsafeBufferPointer { ByteBuffer.needsNoEscape($0, latin1: latin1) })
    }

    @Test func escapedOutputUnchanged() throws {
        var buffer = ByteBuffer()
        try buffer.writeJSON(.text("abcdefgh\"ijklmnop\\q\u{1}rstuvwxyzé"))
        #expect(String(buffer: buffer) == #""abcdefgh\"ijklmnop\\q\u0001rstuvwxyzé""#)
    }
}
