// libFuzzer entry point for the Handle read types (Sources/AEMPHandle/Readers): one binary for all of
// them. Built by scripts/fuzz-readers.sh together with the reader sources, HandleError.swift and the
// AEMPCodecs sources, all instrumented.
//
// The readers are sans-IO (`HandleReader.read(from:)` on a ByteBuffer), so this drives them the way
// HandleCore's read queue does, without a channel: bytes arrive in chunks and are appended to the
// read buffer; after each arrival the queued read runs until it needs more bytes; a completed read is
// replaced by a fresh one of the same type; then the buffer is checked against the read buffer limit
// (`readBufferMax`, Perl's `rbuf_max`: a fatal ENOSPC ends the run).
//
// Input layout:
//   byte 0   the read type (index into `readerCases`, modulo its count; scripts/fuzz-readers.sh
//            writes seeds with these indices, so keep the order)
//   byte 1   bits 0-2 the largest arrival: 1, 2, 3, 7, 32, 256, 4096 bytes or everything;
//            bit 3 errors end the read as for the async API (otherwise a read whose error keeps it
//            stays queued, as with a callback); bit 4 between arrivals someone else consumes a few
//            bytes (`Handle.consume`) and the read is told to rescan;
//            bits 5-7 the read buffer limit: none, 1, 64, 256, 1024, 2048, 4096, 65536
//   byte 2   seeds the arrival sizes
//   then     the stream (regex-based readers use its first 1024 bytes: Swift's Regex rescans; with
//            arrivals of at most 7 bytes every reader uses its first 512: each arrival rescans).
//
// Invariants, besides "no crash" (a failed precondition is a finding):
// - a read only ever removes bytes from the front of the buffer: what stays is exactly the rest of
//   the stream, so the bytes consumed never exceed the input;
// - a completed read's output is exactly what it consumed, decoded: line + end of line, the chunk,
//   `<length>:payload,`, prefix + payload, one JSON text or one CBOR item that decodes on its own
//   to the same value, the regex data including skipped bytes, ...;
// - a read that is waiting holds (in ByteBuffers of its own state, found by reflection) no more than
//   it consumed, and no more than its documented bound: nothing for line, chunk, packstring, CBOR,
//   tls_detect and codable (their partial input stays in the read buffer, under the limit); the
//   payload for netstring (at most its maxLength); the partial text for JSON (at most maxTextSize);
//   for regex with a skip pattern everything skipped so far (unbounded, as in Perl, where the
//   skipped data is not counted against rbuf_max either);
// - a malformed-input error that keeps the read queued leaves the buffer alone (JSON, which skips
//   the bad text first, excepted).
import AEMPCodecs
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let arrivalLimits = [1, 2, 3, 7, 32, 256, 4096, Int.max]
private let bufferLimits: [Int?] = [nil, 1, 64, 256, 1024, 2048, 4096, 65536]

/// One read type and how to check its outputs.
struct ReaderCase: Sendable {
    let name: String
    let run: @Sendable (inout Drive) -> Void
}

// Force-unwrapped on purpose: the patterns are constants of this harness.
private let eolRegex = try! HandleRegex("\r?\n|;")
private let pairRegex = try! HandleRegex("^([a-z]+)=([0-9]+)\n")
private let pairReject = try! HandleRegex("[^a-z=0-9\n]")
private let headerEnd = try! HandleRegex("\r\n\r\n")
private let headerSkip = try! HandleRegex("^.*[^\r\n]")
private let smallJSON = JSONStreamDecoder.Options(
    allowScalars: true, allowNonFiniteNumbers: true, maxDepth: 8, maxTextSize: 512, maxNumberLength: 64)
private let packFormats = ["C", "n", "N", "v", "V", "w", "Q>", "s<", "l!"]

/// The read types; the seeds in scripts/fuzz-readers.sh use these indices.
let readerCases: [ReaderCase] = [
    // 0-2: line with the default, a literal and a regex end of line.
    ReaderCase(name: "line") { $0.run(LineReader(), held: 0) { checkLine($0, $1, .newline) } },
    ReaderCase(name: "line --") { $0.run(LineReader(eol: "--"), held: 0) { checkLine($0, $1, .literal(Array("--".utf8))) } },
    ReaderCase(name: "line regex") {
        $0.run(LineReader(eol: eolRegex), held: 0, regex: true) { checkLine($0, $1, .newlineOrSemicolon) }
    },
    // 3-4: chunk.
    ReaderCase(name: "chunk 5") { $0.run(ChunkReader(length: 5), held: 0) { chunk, taken in checkChunk(chunk, taken, 5) } },
    ReaderCase(name: "chunk 300") { $0.run(ChunkReader(length: 300), held: 0) { chunk, taken in checkChunk(chunk, taken, 300) } },
    // 5-6: regex with a reject pattern, and with a skip pattern (Perl's HTTP header example).
    ReaderCase(name: "regex reject") {
        $0.run(RegexReader(accept: pairRegex, reject: pairReject), held: 0, regex: true) { match, taken in
            precondition(bytes(match.data) == taken && taken.last == 0x0A, "regex data is not what was consumed")
            precondition(match.groups.count == 2 && match.groups.allSatisfy { $0 != nil }, "regex groups")
        }
    },
    ReaderCase(name: "regex skip") {
        $0.run(RegexReader(accept: headerEnd, skip: headerSkip), held: nil, regex: true) { match, taken in
            precondition(bytes(match.data) == taken && taken.suffix(4) == [0x0D, 0x0A, 0x0D, 0x0A], "regex data is not what was consumed")
        }
    },
    // 7: netstring with a small maximum.
    ReaderCase(name: "netstring") {
        $0.run(NetstringReader(maxLength: 1000), held: 1000) { payload, taken in
            let body = bytes(payload)
            precondition(body.count <= 1000, "netstring over its maximum")
            precondition(taken == Array("\(body.count):".utf8) + body + [0x2C], "netstring is not what was consumed")
        }
    },
] + packFormats.map { letter in
    // 8-16: packstring in several formats.
    ReaderCase(name: "packstring \(letter)") { drive in
        let format = try! PackFormat(letter)
        drive.run(PackstringReader(format: format, maxLength: 1000), held: 0) { payload, taken in
            checkPackstring(bytes(payload), taken, format: format)
        }
    }
} + [
    // 17-18: JSON with the default options, and with small limits and non-finite words.
    ReaderCase(name: "json") {
        $0.run(JSONReader(), held: JSONReader.defaultOptions.maxTextSize) { value, taken in
            checkJSON(value, taken, options: JSONReader.defaultOptions)
        }
    },
    ReaderCase(name: "json small") {
        $0.run(JSONReader(options: smallJSON), held: smallJSON.maxTextSize) { value, taken in
            checkJSON(value, taken, options: smallJSON)
        }
    },
    // 19-20: CBOR with small limits and with the defaults.
    ReaderCase(name: "cbor small") {
        $0.run(CBORReader(maxDepth: 16, maxItemSize: 1000), held: 0) { value, taken in checkCBOR(value, taken, maxDepth: 16) }
    },
    ReaderCase(name: "cbor") { $0.run(CBORReader(), held: 0) { value, taken in checkCBOR(value, taken, maxDepth: 512) } },
    // 21: tls_detect, which never consumes.
    ReaderCase(name: "tls_detect") {
        $0.run(TLSDetectReader(), held: 0) { detection, taken in
            precondition(taken.isEmpty, "tls_detect consumed")
            precondition(!detection.isTLS || detection.major == 3 || detection.major == 4, "tls_detect version")
        }
    },
    // 22: codable (BER-framed CBOR).
    ReaderCase(name: "codable") {
        $0.run(CodableReader(Message.self, maxLength: 1000, maxDepth: 16), held: 0) { message, taken in
            guard let (length, size) = try? BER.read(from: ByteBuffer(bytes: taken)) else {
                preconditionFailure("codable frame without a BER prefix")
            }
            precondition(Int(length) == taken.count - size, "codable frame length")
            let value = try? CBORDecoder(maxDepth: 16).decode(taken[size...])
            precondition(value.flatMap { try? ValueDecoder().decode(Message.self, from: $0) } == message, "codable value")
        }
    },
]

/// The value type of the codable case.
struct Message: Codable, Equatable {
    var port: String
    var args: [Int]
    var reply: String?
}

/// Compiles and runs the global regexes once before fuzzing. Swift's Regex (the _StringProcessing
/// and _RegexParser libraries) holds memory that LeakSanitizer reports as leaked, a fixed amount per
/// Regex value however often it is used; scripts/fuzz-readers.sh suppresses those reports
/// (lsan-suppressions.txt), and compiling here keeps them out of the per-input leak check.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    for regex in [eolRegex, pairRegex, pairReject, headerEnd, headerSkip, eolRegex.lineSplitter()] {
        _ = regex.firstMatch(in: ByteBuffer(string: "ab=1\r\n\r\nx;y\n"))
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReaders(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 3 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    let flags = input[1]
    var drive = Drive(
        stream: Array(input[3...]), maxArrival: arrivalLimits[Int(flags & 7)], asyncErrors: flags & 8 != 0,
        externalConsumption: flags & 16 != 0, limit: bufferLimits[Int(flags >> 5)], seed: input[2])
    readerCases[Int(input[0]) % readerCases.count].run(&drive)
    return 0
}

/// The emulated handle: read buffer, arrivals, and the position of the buffer's front in the stream.
struct Drive {
    var stream: [UInt8]
    let maxArrival: Int
    let asyncErrors: Bool
    let externalConsumption: Bool
    let limit: Int?
    var random: UInt64

    init(stream: [UInt8], maxArrival: Int, asyncErrors: Bool, externalConsumption: Bool, limit: Int?, seed: UInt8) {
        self.stream = stream
        self.maxArrival = maxArrival
        self.asyncErrors = asyncErrors
        self.externalConsumption = externalConsumption
        self.limit = limit
        self.random = UInt64(seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    }

    mutating func next(_ bound: Int) -> Int {
        // xorshift64
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return Int(random % UInt64(bound))
    }

    /// Runs reads of one type over the stream.
    ///
    /// - Parameters:
    ///   - make: a fresh read (the next queued one after a completed read).
    ///   - held: the most bytes a waiting read may hold in its own state; `nil`: no bound.
    ///   - regex: the read matches with HandleRegex, which rescans everything on each call.
    ///   - verify: checks an output against the bytes the read consumed for it.
    mutating func run<R: HandleReader>(
        _ make: @autoclosure () -> R, held bound: Int?, regex: Bool = false, verify: (R.Output, [UInt8]) -> Void
    ) {
        if regex, stream.count > 1024 { stream.removeLast(stream.count - 1024) }
        // Arrivals of a few bytes make every read rescan the buffer once per arrival (quadratic, and
        // instrumented): 512 bytes exercise the splitting as well as 4096 at an eighth of the cost.
        if maxArrival <= 7, stream.count > 512 { stream.removeLast(stream.count - 512) }
        var reader = make()
        var buffer = ByteBuffer()
        var fed = 0
        var front = 0
        var taken: [UInt8] = []
        while fed < stream.count {
            let count = maxArrival >= stream.count - fed ? stream.count - fed : 1 + next(maxArrival)
            buffer.writeBytes(stream[fed..<(fed + count)])
            fed += count
            if externalConsumption, next(4) == 0 {
                let gone = min(buffer.readableBytes, next(4))
                buffer.moveReaderIndex(forwardBy: gone)
                front += gone
                reader.restartScan()
            }
            drain: while true {
                let before = buffer.readableBytes
                let result: Result<R.Output?, HandleError>
                do throws(HandleError) {
                    result = .success(try reader.read(from: &buffer))
                } catch {
                    result = .failure(error)
                }
                let consumed = before - buffer.readableBytes
                precondition(consumed >= 0 && front + consumed <= fed, "consumed \(consumed) of \(before) bytes")
                taken += stream[front..<(front + consumed)]
                front += consumed
                precondition(isRest(buffer, of: stream[front..<fed]), "the buffer is not the rest of the stream")
                switch result {
                case .success(let output?):
                    verify(output, taken)
                    // A read that completes without consuming would complete forever (tls_detect).
                    if taken.isEmpty { return }
                    taken = []
                    reader = make()
                case .success(nil):
                    // Reflection is slow: all fields of every type on one call in sixteen, else the
                    // fields known to hold bytes, when the bound could be exceeded at all.
                    let everything = next(16) == 0
                    if everything || bound.map({ taken.count > $0 }) ?? true {
                        let holding = everything ? heldBytes(reader) : knownHeldBytes(reader)
                        precondition(holding <= taken.count, "holds \(holding) bytes but consumed \(taken.count)")
                        if let bound {
                            precondition(holding <= bound, "holds \(holding) bytes, more than \(bound)")
                        } else {
                            precondition(holding == taken.count, "skipped bytes went missing")
                        }
                    }
                    break drain
                case .failure(let error):
                    precondition(error.code == .badMessage && !error.isFatal, "reader error \(error)")
                    if error.keepsReader && !asyncErrors {
                        // The read stays queued and runs again on the next arrival.
                        if R.self == JSONReader.self {
                            taken = []
                        } else {
                            precondition(consumed == 0, "an error that keeps the read consumed \(consumed) bytes")
                        }
                    } else {
                        taken = []
                        reader = make()
                    }
                    break drain
                }
            }
            if let limit, buffer.readableBytes > limit { return }  // fatal ENOSPC
        }
    }
}

/// The readable bytes in the fields of a reader's state that hold received bytes while it waits
/// (reading the sources): the netstring payload waiting for its `,`, the partial JSON text, the
/// bytes a regex skipped.
func knownHeldBytes(_ reader: some HandleReader) -> Int {
    let label: String
    switch reader {
    case is NetstringReader: label = "phase"
    case is JSONReader: label = "pending"
    case is RegexReader: label = "skipped"
    default: return 0
    }
    guard let field = Mirror(reflecting: reader).children.first(where: { $0.label == label }) else {
        preconditionFailure("\(type(of: reader)) has no field \(label) any more: update knownHeldBytes")
    }
    return heldBytes(field.value)
}

/// The readable bytes of every ByteBuffer in a reader's stored state (arrays and dictionaries, which
/// hold decoded values, are not searched).
func heldBytes(_ value: Any, depth: Int = 0) -> Int {
    if let buffer = value as? ByteBuffer { return buffer.readableBytes }
    if depth > 8 || value is HandleRegex { return 0 }
    let mirror = Mirror(reflecting: value)
    switch mirror.displayStyle {
    case .collection?, .dictionary?, .set?, .class?:
        return 0
    default:
        return mirror.children.reduce(0) { $0 + heldBytes($1.value, depth: depth + 1) }
    }
}

func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

/// Whether `buffer` holds exactly `rest` (memcmp: an instrumented byte loop would make every
/// arrival cost as much as the whole buffer).
func isRest(_ buffer: ByteBuffer, of rest: ArraySlice<UInt8>) -> Bool {
    guard buffer.readableBytes == rest.count else { return false }
    return buffer.withUnsafeReadableBytes { raw in
        rest.withUnsafeBytes { expected in
            rest.isEmpty || memcmp(raw.baseAddress!, expected.baseAddress!, rest.count) == 0
        }
    }
}

/// How a line read's end of line is defined.
enum LineEnd {
    /// `\r?\n`.
    case newline
    /// A literal byte sequence.
    case literal([UInt8])
    /// The regex `\r?\n|;`.
    case newlineOrSemicolon
}

func checkLine(_ line: HandleLine, _ taken: [UInt8], _ end: LineEnd) {
    let text = bytes(line.line)
    let eol = bytes(line.eol)
    precondition(text + eol == taken, "line + eol is not what was consumed")
    // The first end of line ends the line.
    switch end {
    case .newline, .newlineOrSemicolon:
        let semicolon = if case .newlineOrSemicolon = end { true } else { false }
        precondition(eol == [0x0A] || eol == [0x0D, 0x0A] || (semicolon && eol == [0x3B]), "unexpected end of line \(eol)")
        precondition(!text.contains(0x0A) && !(semicolon && text.contains(0x3B)), "an earlier end of line was passed over")
        precondition(eol != [0x0A] || text.last != 0x0D, "CR left in the line")
    case .literal(let marker):
        precondition(eol == marker, "unexpected end of line \(eol)")
        let first = (0...(taken.count - marker.count)).first { taken[$0..<($0 + marker.count)].elementsEqual(marker) }
        precondition(first == text.count, "an earlier end of line was passed over")
    }
}

func checkChunk(_ chunk: ByteBuffer, _ taken: [UInt8], _ length: Int) {
    precondition(chunk.readableBytes == length && bytes(chunk) == taken, "chunk is not what was consumed")
}

func checkPackstring(_ payload: [UInt8], _ taken: [UInt8], format: PackFormat) {
    let size = taken.count - payload.count
    precondition(size > 0 && Array(taken[size...]) == payload, "packstring payload is not what was consumed")
    guard let (length, prefixSize) = try? format.readLength(from: ByteBuffer(bytes: taken.prefix(size))) else {
        preconditionFailure("packstring prefix does not decode")
    }
    precondition(length == payload.count && prefixSize == size, "packstring prefix says \(length) in \(prefixSize) bytes")
}

func checkJSON(_ value: Value, _ taken: [UInt8], options: JSONStreamDecoder.Options) {
    var text = ByteBuffer(bytes: taken)
    var decoder = JSONStreamDecoder(options: options)
    let again = try? decoder.finish(from: &text)
    precondition(again == value, "consumed JSON decodes to \(String(describing: again)), read gave \(value)")
    let rest = Result { () throws(JSONError) in try decoder.finish(from: &text) }
    guard case .success(nil) = rest else { preconditionFailure("consumed more than one JSON text: \(rest)") }
}

func checkCBOR(_ value: Value, _ taken: [UInt8], maxDepth: Int) {
    guard var again = try? CBORDecoder(maxDepth: maxDepth).decode(taken) else {
        preconditionFailure("consumed bytes are not exactly one CBOR item")
    }
    while case .tagged(55799, let inner) = again { again = inner }
    precondition(again == value, "consumed CBOR decodes to \(again), read gave \(value)")
}
