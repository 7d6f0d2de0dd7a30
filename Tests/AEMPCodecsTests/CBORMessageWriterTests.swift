@testable import AEMPCodecs
import NIOCore
import Testing

/// The transport writes a message `[portName, elements...]` in one pass; its bytes must be those
/// of the whole array written as one value.
@Suite("CBOR message writer")
struct CBORMessageWriterTests {
    static let cases: [(String, [Value])] = [
        ("", []),
        ("port", [1, "payload of thirty-two bytes 0123"]),
        ("node#ünïcode", [-1, 2.5, .null, true, .undefined, .simple(99), Value(bytes: [1, 2, 3])]),
        (String(repeating: "p", count: 300), Array(repeating: Value.int(1_000_000), count: 30)),
        ("nested", [["a": [1, [2, [3]]]], .tagged(22098, "x"), .bignum(negative: true, magnitude: [1] + Array(repeating: 0, count: 8))]),
        ("big", [Value(bytes: [UInt8](repeating: 7, count: 70_000)), .uint(UInt64.max), .int(Int64.min)]),
    ]

    @Test(arguments: cases.indices)
    func sameBytesAsTheWholeArray(index: Int) {
        let (name, elements) = Self.cases[index]
        var expected = ByteBuffer()
        let expectedCount = expected.writeCBOR(.array([.text(name)] + elements))
        var buffer = ByteBuffer(string: "prefix")
        let count = buffer.writeCBORMessage(portName: name, elements)
        #expect(count == expectedCount)
        buffer.moveReaderIndex(forwardBy: 6)
        #expect(buffer == expected)
    }
}
