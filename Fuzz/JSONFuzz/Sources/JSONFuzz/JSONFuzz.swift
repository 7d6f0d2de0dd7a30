import AEMPCodecs
import NIOCore

/// libFuzzer entry point. The first input byte selects the target and a chunk size; the rest is the
/// stream. Besides "no crash, no hang", it checks properties and traps when they fail:
/// - the JSON decoder yields the same texts (or fails) whether the stream comes whole or in chunks;
/// - every decoded value re-encodes and decodes back to itself;
/// - the netstring/packstring decoders yield the same payloads whole or chunked, and re-framing the
///   payloads reproduces the consumed bytes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let selector = data[0]
    let input = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let chunk = Int(selector >> 2) + 1
    switch selector & 3 {
    case 0, 1: fuzzJSON(input, chunk: chunk, scalars: selector & 1 == 1)
    case 2: fuzzNetstring(input, chunk: chunk)
    default: fuzzPackstring(input, chunk: chunk)
    }
    return 0
}

private enum Outcome<T: Equatable>: Equatable {
    case values([T])
    case failed([T])
}

private func runJSON(_ input: [UInt8], chunk: Int, options: JSONStreamDecoder.Options) -> Outcome<Value> {
    var decoder = JSONStreamDecoder(options: options)
    var buffer = ByteBuffer()
    var values: [Value] = []
    var offset = 0
    do {
        while offset < input.count {
            let end = min(input.count, offset + chunk)
            buffer.writeBytes(input[offset..<end])
            offset = end
            while let v = try decoder.next(from: &buffer) { values.append(v) }
        }
        while let v = try decoder.finish(from: &buffer) { values.append(v) }
    } catch {
        return .failed(values)
    }
    return .values(values)
}

private func fuzzJSON(_ input: [UInt8], chunk: Int, scalars: Bool) {
    let options = JSONStreamDecoder.Options(allowScalars: scalars, maxDepth: 64, maxTextSize: 1 << 20)
    let whole = runJSON(input, chunk: max(1, input.count), options: options)
    let chunked = runJSON(input, chunk: chunk, options: options)
    if scalars {
        // A top-level number split by the chunking may read differently ("1" "2" vs "12") only
        // when it ends a chunk; the decoder waits in that case, so results must still agree.
    }
    precondition(whole == chunked, "chunking changed the result")
    guard case .values(let values) = whole else { return }
    for value in values {
        var out = ByteBuffer()
        do {
            try out.writeJSON(value)
        } catch {
            // Only non-finite floats (from inf/nan words) cannot be written.
            precondition(error.code == .nonFiniteNumber, "re-encoding failed: \(error)")
            continue
        }
        var decoder = JSONStreamDecoder(options: .init(allowScalars: true, maxDepth: 64, maxTextSize: 4 << 20))
        let back = try? decoder.finish(from: &out)
        precondition(back == value, "round trip changed \(value) into \(String(describing: back))")
    }
}

private func runFrames<D: NIOSingleStepByteToMessageDecoder>(
    _ make: () -> D, _ input: [UInt8], chunk: Int
) -> (Outcome<ByteBuffer>, consumed: Int) where D.InboundOut == ByteBuffer {
    var decoder = make()
    var buffer = ByteBuffer()
    var payloads: [ByteBuffer] = []
    var offset = 0
    do {
        while offset < input.count {
            let end = min(input.count, offset + chunk)
            buffer.writeBytes(input[offset..<end])
            offset = end
            while let p = try decoder.decode(buffer: &buffer) { payloads.append(p) }
        }
        while let p = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { payloads.append(p) }
    } catch {
        return (.failed(payloads), input.count - buffer.readableBytes - (input.count - offset))
    }
    return (.values(payloads), input.count - buffer.readableBytes)
}

private func fuzzNetstring(_ input: [UInt8], chunk: Int) {
    let make = { NetstringDecoder(maxLength: 1 << 16) }
    let whole = runFrames(make, input, chunk: max(1, input.count))
    let chunked = runFrames(make, input, chunk: chunk)
    precondition(whole.0 == chunked.0, "chunking changed the netstring result")
    let payloads: [ByteBuffer]
    switch whole.0 {
    case .values(let p), .failed(let p): payloads = p
    }
    var reframed = ByteBuffer()
    for p in payloads { reframed.writeNetstring(p) }
    precondition(Array(reframed.readableBytesView) == Array(input[..<reframed.readableBytes]), "re-framing differs")
}

private let formats = ["c", "C", "s", "S>", "l", "L!", "q", "Q>", "i", "I<", "n", "N", "v", "V!", "j", "J", "w", "n!"]

private func fuzzPackstring(_ input: [UInt8], chunk: Int) {
    guard let first = input.first, let format = try? PackFormat(formats[Int(first) % formats.count]) else { return }
    let stream = Array(input.dropFirst())
    let make = { PackstringDecoder(format: format, maxLength: 1 << 16) }
    let whole = runFrames(make, stream, chunk: max(1, stream.count))
    let chunked = runFrames(make, stream, chunk: chunk)
    precondition(whole.0 == chunked.0, "chunking changed the packstring result")
    let payloads: [ByteBuffer]
    switch whole.0 {
    case .values(let p), .failed(let p): payloads = p
    }
    var reframed = ByteBuffer()
    for p in payloads {
        do { try reframed.writePackstring(p, format: format) } catch { preconditionFailure("re-framing failed: \(error)") }
    }
    precondition(Array(reframed.readableBytesView) == Array(stream[..<reframed.readableBytes]), "re-framing differs")
}
