import AEMPCodecs
import NIOCore
import Testing

/// Inputs found by scripts/fuzz-cbor.sh, kept as regression tests.
@Suite("CBOR fuzz regressions")
struct CBORFuzzRegressionTests {
    static let inputs: [String] = [
        // An empty map with a non-preferred one-byte count (b8 00) inside an indefinite map: the
        // scanner skipped one byte instead of two.
        "bf000000000000fa000000800202022e020200000000000084b8000000000000000000000000000000ec00000000ff",
        "98008100", "b90000", "9a000000008100", "9b00000000000000000000",
        // 63 tags around an empty array at the depth limit: the scanner did not count empty
        // containers as a level, the builder did.
        "bf2180c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"
            + "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c180808080808b2580808080808080808080808080808001000001ff3bc880801f01",
    ]

    @Test(arguments: inputs)
    func streamAndOneShotAgree(_ hex: String) throws {
        let bytes = Hex.bytes(hex)
        var input = ByteBuffer(bytes: bytes)
        let oneShot = Result { () throws(CBORError) in try CBORDecoder(maxDepth: 64).decodeFirst(from: &input) }
        var decoder = CBORStreamDecoder(maxDepth: 64, maxItemSize: 1 << 16)
        var buffer = ByteBuffer(bytes: bytes)
        let streamed = Result { () throws(CBORError) in try decoder.next(from: &buffer) }
        switch (oneShot, streamed) {
        case (.success(let a), .success(let b)):
            #expect(a == b)
            #expect(input.readerIndex == buffer.readerIndex)
        case (.failure(let a), .failure(let b)): #expect(a.code == b.code)
        default: Issue.record("one-shot \(oneShot) vs stream \(streamed)")
        }
    }
}
