// libFuzzer entry point for the CBOR decoders. Built by scripts/fuzz-cbor.sh together with the
// AEMPCodecs sources (Value*.swift, CBOR/*.swift), so the decoder itself is instrumented.
import NIOCore

/// Feeds one input to every decoding path and checks their invariants. Any trap is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCBOR(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let input = ByteBuffer(bytes: bytes)

    // One-shot decoding with small limits (deep nesting stays cheap).
    let decoder = CBORDecoder(maxDepth: 64)
    let oneShot: Value?
    do { oneShot = try decoder.decode(input) } catch { oneShot = nil }

    // Stream decoding: whole input, then the same input one byte at a time, must agree.
    var whole = input
    var streamA = CBORStreamDecoder(maxDepth: 64, maxItemSize: 1 << 16)
    var valuesA: [Value] = []
    var errorA: CBORError?
    for _ in 0..<size + 1 {
        do {
            guard let value = try streamA.next(from: &whole) else { break }
            valuesA.append(value)
        } catch {
            errorA = error
            break
        }
    }
    var piecewise = ByteBuffer()
    var streamB = CBORStreamDecoder(maxDepth: 64, maxItemSize: 1 << 16)
    var valuesB: [Value] = []
    var errorB: CBORError?
    outer: for byte in bytes {
        piecewise.writeInteger(byte)
        for _ in 0..<2 {
            do {
                guard let value = try streamB.next(from: &piecewise) else { break }
                valuesB.append(value)
            } catch {
                errorB = error
                break outer
            }
        }
    }
    precondition(valuesA == valuesB, "whole and byte-by-byte streams disagree")
    precondition((errorA == nil) == (errorB == nil), "only one stream failed")
    if let errorA, let errorB { precondition(errorA.code == errorB.code && errorA.offset == errorB.offset) }
    if let oneShot {
        precondition(valuesA.first == oneShot, "one-shot and stream decoders disagree")
    }
    // The first item: decodeFirst and the stream decoder agree on value, length and error code
    // (except that the stream decoder checks UTF-8 only once the item is complete, so it may wait,
    // or report a later structural error, where decodeFirst reports truncation or bad UTF-8).
    var prefix = input
    var streamC = CBORStreamDecoder(maxDepth: 64, maxItemSize: 1 << 16)
    var streamInput = input
    let first = Result { () throws(CBORError) in try decoder.decodeFirst(from: &prefix) }
    let streamed = Result { () throws(CBORError) in try streamC.next(from: &streamInput) }
    switch (first, streamed) {
    case (.success(let a), .success(let b)):
        precondition(a == b && prefix.readerIndex == streamInput.readerIndex, "first items disagree")
    case (.failure(let a), .failure(let b)):
        precondition(
            a.code == b.code || a.code == .truncated || a.code == .invalidUTF8, "first errors disagree: \(a) vs \(b)")
    case (.failure, .success(nil)):
        break
    default:
        preconditionFailure("decodeFirst \(first) vs stream \(streamed)")
    }

    // Everything decoded re-encodes to something that decodes to the same value.
    for value in valuesA {
        let encoded = CBOREncoder().encode(value)
        guard let again = try? CBORDecoder(maxDepth: 64).decode(encoded) else {
            preconditionFailure("re-encoded value does not decode: \(value)")
        }
        precondition(again == value, "round trip changed \(value) into \(again)")
        _ = value.description
        _ = try? ValueDecoder().decode([String: Value].self, from: value)
    }
    return 0
}
