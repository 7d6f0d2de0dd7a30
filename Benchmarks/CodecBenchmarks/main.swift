// CBOR encode/decode throughput of AEMPCodecs next to the C implementations a peer would use:
// Perl's CBOR::XS (what AnyEvent::MP nodes run) and Python's cbor2 (native module), measured in the
// same run on the same machine. Prints a Markdown table of nanoseconds per operation and ratios.
//
// Fairness: every figure is the median of several rounds; the rounds of the three implementations
// are interleaved (Swift, Python, Perl, Swift, ...) so that load from other processes on a shared
// machine hits all of them alike. Python and Perl call the codec in their tightest loop (no
// closure per call), so the interpreter adds only its unavoidable per-call cost.
//
// Usage: CodecBenchmarks [rounds] [seconds per measurement] [swift]   (defaults: 7 rounds, 0.2 s;
// `swift` measures AEMPCodecs alone, for profiling)
import AEMPCodecs
import Foundation
import NIOCore

let arguments = CommandLine.arguments
let rounds = arguments.count > 1 ? max(1, Int(arguments[1]) ?? 7) : 7
let target = arguments.count > 2 ? max(0.01, Double(arguments[2]) ?? 0.2) : 0.2
/// `swift` as the third argument skips the references (for profiling the Swift side alone).
let includeReferences = arguments.count <= 3 || arguments[3] != "swift"

/// For profiling (`valgrind --tool=callgrind`): `CODEC_BENCH_ITERATIONS=n` runs every body exactly n
/// times, and `CODEC_BENCH_ONLY=name` runs the one workload with that name.
let environment = ProcessInfo.processInfo.environment
let fixedIterations = environment["CODEC_BENCH_ITERATIONS"].flatMap { Int($0) }
let onlyWorkload = environment["CODEC_BENCH_ONLY"]

/// Times `body` over enough iterations to take about `target` seconds; returns ns per iteration.
func measure(_ name: String, _ body: () -> Void) -> Double? {
    if let onlyWorkload, onlyWorkload != name { return nil }
    if let fixedIterations {
        for _ in 0..<fixedIterations { body() }
        return 1
    }
    var iterations = 1
    while true {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<iterations { body() }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        if elapsed >= target || iterations >= 1 << 30 {
            return elapsed * 1e9 / Double(iterations)
        }
        iterations = elapsed < 0.01 ? iterations * 10 : Int(Double(iterations) * target / elapsed) + 1
    }
}

@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

/// A plain memory copy the optimizer cannot remove (its result is never read otherwise).
@_optimize(none) @inline(never)
func copyBytes(_ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ count: Int) {
    destination.copyMemory(from: source, byteCount: count)
}

let message: Value = [
    Value(byteString: "portname"), Value(byteString: "tag"), 1, 2.5, Value(byteString: "payload"),
]
let messageBytes = CBOREncoder().encode(message)

/// The workloads in table order.
let workloads = [
    "encode message (reused buffer)", "encode message (fresh buffer)", "decode message", "stream-decode message",
    "encode 64 KiB bytes (reused buffer)", "encode 64 KiB bytes (fresh buffer)", "decode 64 KiB bytes",
    "memcpy 64 KiB (floor for encoding 64 KiB)",
]

/// One round of the Swift measurements (ns per operation by workload name). Inputs and the scratch
/// buffer are locals, so the loops pay no exclusivity checks for global variables.
func swiftRound() -> [String: Double] {
    let message = message
    let messageBytes = messageBytes
    let bulk: Value = .bytes(ByteBuffer(repeating: 0x5a, count: 64 * 1024))
    let bulkBytes = CBOREncoder().encode(bulk)
    var stream = ByteBuffer()
    for _ in 0..<1000 { stream.writeCBOR(message) }
    var scratch = ByteBuffer()
    scratch.reserveCapacity(128 * 1024)
    var results: [String: Double] = [:]
    results["encode message (reused buffer)"] = measure("encode message (reused buffer)") {
        scratch.clear()
        scratch.writeCBOR(message)
    }
    results["encode message (fresh buffer)"] = measure("encode message (fresh buffer)") {
        blackHole(CBOREncoder().encode(message))
    }
    results["decode message"] = measure("decode message") { blackHole(try! CBORDecoder().decode(messageBytes)) }
    results["stream-decode message"] =
        measure("stream-decode message") {
            var decoder = CBORStreamDecoder()
            var input = stream
            while let value = try! decoder.next(from: &input) { blackHole(value) }
        }.map { $0 / 1000 }
    results["encode 64 KiB bytes (reused buffer)"] = measure("encode 64 KiB bytes (reused buffer)") {
        scratch.clear()
        scratch.writeCBOR(bulk)
    }
    results["encode 64 KiB bytes (fresh buffer)"] = measure("encode 64 KiB bytes (fresh buffer)") {
        blackHole(CBOREncoder().encode(bulk))
    }
    results["decode 64 KiB bytes"] = measure("decode 64 KiB bytes") { blackHole(try! CBORDecoder().decode(bulkBytes)) }
    // The floor for encoding a byte string: one copy of its bytes to a destination at the same
    // offset (5, after the head) in a reused buffer.
    let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
    let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: 128 * 1024, alignment: 16)
    source.initializeMemory(as: UInt8.self, repeating: 0x5a)
    defer {
        source.deallocate()
        destination.deallocate()
    }
    results["memcpy 64 KiB (floor for encoding 64 KiB)"] = measure("memcpy 64 KiB (floor for encoding 64 KiB)") {
        copyBytes(destination.baseAddress! + 5, source.baseAddress!, source.count)
    }
    return results
}

/// Runs a reference script that prints `name<TAB>ns` lines; nil if the tool is missing.
func reference(_ arguments: [String]) -> [String: Double]? {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return nil }
    let data = (try? pipe.fileHandleForReading.readToEnd()) ?? Data()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    var results: [String: Double] = [:]
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
        let parts = line.split(separator: "\t")
        if parts.count == 2, let ns = Double(parts[1]) { results[String(parts[0])] = ns }
    }
    return results
}

// cbor2.dumps always returns a new bytes object; it is the reference for both encode variants
// (its stream API, CBOREncoder(fp).encode, only adds Python-level calls).
let python = #"""
    import sys, time, itertools, cbor2
    target = float(sys.argv[1])
    def measure(f, arg):
        n, repeat, clock = 1, itertools.repeat, time.perf_counter_ns
        while True:
            start = clock()
            for a in repeat(arg, n): f(a)
            elapsed = (clock() - start) / 1e9
            if elapsed >= target: return elapsed * 1e9 / n
            n = n * 10 if elapsed < 0.01 else int(n * target / elapsed) + 1
    message = [b"portname", b"tag", 1, 2.5, b"payload"]
    bulk = b"\x5a" * 65536
    mb, bb = cbor2.dumps(message), cbor2.dumps(bulk)
    print("encode message\t%f" % measure(cbor2.dumps, message))
    print("decode message\t%f" % measure(cbor2.loads, mb))
    print("encode 64 KiB bytes\t%f" % measure(cbor2.dumps, bulk))
    print("decode 64 KiB bytes\t%f" % measure(cbor2.loads, bb))
    """#

let perl = #"""
    use strict; use CBOR::XS; use Time::HiRes qw(time);
    my $target = shift;
    our $message = ["portname", "tag", 1, 2.5, "payload"];
    our $bulk = "\x5a" x 65536;
    our ($mb, $bb) = (encode_cbor($message), encode_cbor($bulk));
    our $coder = CBOR::XS->new; our $stream = $mb x 1000;
    sub measure { my ($code) = @_;
        my $loop = eval "sub { my \$n = shift; for (1 .. \$n) { $code } }" or die $@; my $n = 1;
        while (1) { my $t = time; $loop->($n); my $e = time - $t;
            return $e * 1e9 / $n if $e >= $target; $n = $e < 0.01 ? $n * 10 : int($n * $target / $e) + 1; } }
    printf "encode message\t%f\n", measure('encode_cbor($message)');
    printf "decode message\t%f\n", measure('decode_cbor($mb)');
    printf "stream-decode message\t%f\n",
        measure('my $b = $stream; my @v = $coder->incr_parse_multiple($b)') / 1000;
    printf "encode 64 KiB bytes\t%f\n", measure('encode_cbor($bulk)');
    printf "decode 64 KiB bytes\t%f\n", measure('decode_cbor($bb)');
    """#

/// The reference scripts' name for a workload (both encode variants compare with the same call).
func referenceName(_ name: String) -> String {
    name.replacingOccurrences(of: " (reused buffer)", with: "").replacingOccurrences(of: " (fresh buffer)", with: "")
}

func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

let loadBefore = loadAverage()
var swiftRuns: [String: [Double]] = [:]
var pythonRuns: [String: [Double]] = [:]
var perlRuns: [String: [Double]] = [:]
for _ in 0..<rounds {
    for (name, ns) in swiftRound() { swiftRuns[name, default: []].append(ns) }
    guard includeReferences else { continue }
    for (name, ns) in reference(["python3", "-c", python, String(target)]) ?? [:] {
        pythonRuns[name, default: []].append(ns)
    }
    for (name, ns) in reference(["perl", "-e", perl, String(target)]) ?? [:] {
        perlRuns[name, default: []].append(ns)
    }
}
let loadAfter = loadAverage()

func median(_ values: [Double]?) -> Double? {
    guard let values, !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

func format(_ ns: Double?) -> String {
    guard let ns else { return "n/a" }
    return ns >= 1000 ? String(format: "%.2f µs", ns / 1000) : String(format: "%.0f ns", ns)
}

func ratio(_ reference: Double?, _ ours: Double) -> String {
    guard let reference else { return "n/a" }
    return String(format: "%.2f×", reference / ours)
}

print("| workload | Swift AEMPCodecs | Perl CBOR::XS | speed vs Perl | Python cbor2 | speed vs Python |")
print("|---|---|---|---|---|---|")
for name in workloads {
    guard let ours = median(swiftRuns[name]) else { continue }
    let perlNs = median(perlRuns[referenceName(name)])
    let pythonNs = median(pythonRuns[referenceName(name)])
    print(
        "| \(name) | \(format(ours)) | \(format(perlNs)) | \(ratio(perlNs, ours)) | "
            + "\(format(pythonNs)) | \(ratio(pythonNs, ours)) |"
    )
}
print("")
print("Medians of \(rounds) interleaved rounds of about \(target) s per measurement; load average")
print("\(loadBefore) before, \(loadAfter) after. Ratios above 1× mean AEMPCodecs is faster.")
print("Message: [\"portname\", \"tag\", 1, 2.5, \"payload\"] with byte strings, as a Perl node sends it")
print("(\(messageBytes.readableBytes) bytes). Stream-decode: 1000 messages back to back through")
print("CBORStreamDecoder (Perl: incr_parse_multiple). Python and Perl always return a new string.")
