// CBOR encode/decode throughput of AEMPCodecs next to the C implementations a peer would use:
// Perl's CBOR::XS (what AnyEvent::MP nodes run) and Python's cbor2 (native module), measured in the
// same run on the same machine. Prints a Markdown table of nanoseconds per operation and ratios.
import AEMPCodecs
import Foundation
import NIOCore

/// Times `body` over enough iterations to take about `target` seconds; returns ns per iteration.
func measure(_ name: String, target: Double = 0.5, _ body: () -> Void) -> Double {
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

let message: Value = [
    Value(byteString: "portname"), Value(byteString: "tag"), 1, 2.5, Value(byteString: "payload"),
]
let bulk: Value = .bytes(ByteBuffer(repeating: 0x5a, count: 64 * 1024))
let messageBytes = CBOREncoder().encode(message)
let bulkBytes = CBOREncoder().encode(bulk)
var stream = ByteBuffer()
for _ in 0..<1000 { stream.writeCBOR(message) }

var swiftResults: [String: Double] = [:]
var scratch = ByteBuffer()
scratch.reserveCapacity(128 * 1024)
swiftResults["encode message"] = measure("encode message") {
    scratch.clear()
    scratch.writeCBOR(message)
}
swiftResults["decode message"] = measure("decode message") {
    blackHole(try! CBORDecoder().decode(messageBytes))
}
swiftResults["stream-decode message"] =
    measure("stream 1000") {
        var decoder = CBORStreamDecoder()
        var input = stream
        while let value = try! decoder.next(from: &input) { blackHole(value) }
    } / 1000
swiftResults["encode 64 KiB bytes"] = measure("encode bulk") {
    scratch.clear()
    scratch.writeCBOR(bulk)
}
swiftResults["decode 64 KiB bytes"] = measure("decode bulk") {
    blackHole(try! CBORDecoder().decode(bulkBytes))
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

let python = #"""
    import time, cbor2
    def measure(body, target=0.5):
        n = 1
        while True:
            start = time.perf_counter_ns()
            for _ in range(n): body()
            elapsed = (time.perf_counter_ns() - start) / 1e9
            if elapsed >= target: return elapsed * 1e9 / n
            n = n * 10 if elapsed < 0.01 else int(n * target / elapsed) + 1
    message = [b"portname", b"tag", 1, 2.5, b"payload"]
    bulk = b"\x5a" * 65536
    mb, bb = cbor2.dumps(message), cbor2.dumps(bulk)
    print("encode message\t%f" % measure(lambda: cbor2.dumps(message)))
    print("decode message\t%f" % measure(lambda: cbor2.loads(mb)))
    print("encode 64 KiB bytes\t%f" % measure(lambda: cbor2.dumps(bulk)))
    print("decode 64 KiB bytes\t%f" % measure(lambda: cbor2.loads(bb)))
    """#

let perl = #"""
    use strict; use CBOR::XS; use Time::HiRes qw(time);
    sub measure { my ($body) = @_; my $n = 1;
        while (1) { my $t = time; $body->() for 1 .. $n; my $e = time - $t;
            return $e * 1e9 / $n if $e >= 0.5; $n = $e < 0.01 ? $n * 10 : int($n * 0.5 / $e) + 1; } }
    my $message = ["portname", "tag", 1, 2.5, "payload"];
    my $bulk = "\x5a" x 65536;
    my ($mb, $bb) = (encode_cbor($message), encode_cbor($bulk));
    my $coder = CBOR::XS->new; my $stream = $mb x 1000;
    printf "encode message\t%f\n", measure(sub { encode_cbor($message) });
    printf "decode message\t%f\n", measure(sub { decode_cbor($mb) });
    printf "stream-decode message\t%f\n", measure(sub { my $b = $stream; my @v = $coder->incr_parse_multiple($b) }) / 1000;
    printf "encode 64 KiB bytes\t%f\n", measure(sub { encode_cbor($bulk) });
    printf "decode 64 KiB bytes\t%f\n", measure(sub { decode_cbor($bb) });
    """#

let pythonResults = reference(["python3", "-c", python])
let perlResults = reference(["perl", "-e", perl])

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
for name in ["encode message", "decode message", "stream-decode message", "encode 64 KiB bytes", "decode 64 KiB bytes"]
{
    let ours = swiftResults[name]!
    print(
        "| \(name) | \(format(ours)) | \(format(perlResults?[name])) | \(ratio(perlResults?[name], ours)) | "
            + "\(format(pythonResults?[name])) | \(ratio(pythonResults?[name], ours)) |")
}
print("")
print("Ratios above 1× mean AEMPCodecs is faster. Message: [\"portname\", \"tag\", 1, 2.5, \"payload\"] with")
print("byte strings, as a Perl node sends it (\(messageBytes.readableBytes) bytes). Stream-decode: 1000 messages")
print("back to back through CBORStreamDecoder (Perl: incr_parse_multiple).")
