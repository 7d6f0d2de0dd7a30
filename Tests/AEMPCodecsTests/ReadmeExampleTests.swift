import AEMPCodecs
import NIOCore
import Testing

/// The README's AEMPCodecs example, kept compiling and true.
@Suite struct ReadmeCodecsExampleTests {
    struct Point: Codable, Equatable { var x: Int; var y: Int }

    @Test func example() throws {
        let message: Value = ["portname", "tag", 1, 2.5, .bytes(ByteBuffer(string: "payload"))]
        var wire = ByteBuffer()
        wire.writeCBOR(message)
        wire.writeCBOR(message)

        var decoder = CBORStreamDecoder()
        var names: [String] = []
        while let value = try decoder.next(from: &wire) {
            names.append(value[0]?.stringValue ?? "?")
        }
        #expect(names == ["portname", "portname"])

        let value = try ValueEncoder().encode(Point(x: 1, y: 2))
        #expect(try ValueDecoder().decode(Point.self, from: value) == Point(x: 1, y: 2))
    }
}
