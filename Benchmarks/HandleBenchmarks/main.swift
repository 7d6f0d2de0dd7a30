// Handle throughput over loopback TCP next to Perl's AnyEvent::Handle doing the same work against
// the same sender, and next to iperf3 (single stream) for bulk transfer.
//
//   swift run -c release --package-path Benchmarks HandleBenchmarks [lines] [bulk-MiB] [rounds]
//
// The sender is a plain blocking socket on its own thread that writes as fast as the reader takes;
// each reader (Swift Handle on a NIO-connected channel, then Perl with `connect =>`) is timed from
// the moment it is connected to its last read.
import AEMPHandle
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

let lineCount = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1_000_000 : 1_000_000
let bulkMiB = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 4096 : 4096
let bulkBytes = bulkMiB << 20
let rounds = CommandLine.arguments.count > 3 ? max(1, Int(CommandLine.arguments[3]) ?? 3) : 3
let chunkSize = 65536
let perlScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("perl/handle_bench.pl").path

// MARK: Sender

/// Listens on 127.0.0.1, accepts one connection and writes `total` bytes of `block` repeated.
func startSender(block: [UInt8], total: Int) -> Int {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            precondition(bind(listener, $0, length) == 0 && listen(listener, 1) == 0)
            precondition(getsockname(listener, $0, &length) == 0)
        }
    }
    let thread = Thread {
        let fd = accept(listener, nil, nil)
        close(listener)
        precondition(fd >= 0, "accept failed")
        var left = total
        block.withUnsafeBytes { raw in
            while left > 0 {
                let count = min(left, raw.count)
                let written = write(fd, raw.baseAddress!, count)
                if written <= 0 { break }
                left -= written
            }
        }
        close(fd)
    }
    thread.start()
    return Int(UInt16(bigEndian: address.sin_port))
}

let lineBlock: [UInt8] = {
    var line = [UInt8](repeating: UInt8(ascii: "x"), count: 99)
    line.append(UInt8(ascii: "\n"))
    return Array((0..<10_000).map { _ in line }.joined())
}()
let bulkBlock = [UInt8](repeating: 0x5a, count: 1 << 20)

// MARK: Swift Handle

final class Counter { var value = 0; var start = NIODeadline.now() }

/// Keeps the benchmark's handle alive; touched only on the loop.
final class Holder: @unchecked Sendable { var handle: Handle? }

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()

/// Reads `total` units with `reader` (re-queued after each read); returns seconds from on_connect.
func swiftRun<R: HandleReader & Sendable>(
    port: Int, total: Int, reader: R, units: @escaping @Sendable (R.Output) -> Int
) -> Double {
    let promise = loop.makePromise(of: Double.self)
    let holder = Holder()
    // A plain NIO connect: the AEMPSocket resolver path is not what is measured here.
    let channel = try! ClientBootstrap(group: loop)
        .channelOption(ChannelOptions.autoRead, value: false)
        .connect(host: "127.0.0.1", port: port).wait()
    try! loop.submit {
        let counter = Counter()
        var options = HandleOptions()
        options.onError = { _, error in fatalError("handle error: \(error)") }
        let handle = Handle(channel: channel, options: options)
        func next(_ handle: Handle) {
            handle.pushRead(reader) { handle, output in
                counter.value += units(output)
                if counter.value >= total {
                    let elapsed = Double((NIODeadline.now() - counter.start).nanoseconds) / 1e9
                    handle.destroy()
                    holder.handle = nil
                    promise.succeed(elapsed)
                } else {
                    next(handle)
                }
            }
        }
        counter.start = .now()
        next(handle)
        holder.handle = handle
    }.wait()
    return try! promise.futureResult.wait()
}

// MARK: Perl and iperf3

func run(_ executable: String, _ arguments: [String]) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try! process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

func perlRun(_ mode: String, port: Int, total: Int) -> Double {
    let output = run("/usr/bin/perl", [perlScript, mode, "127.0.0.1", String(port), String(total)])
    let fields = output.split(separator: " ")
    guard fields.count >= 2, let seconds = Double(fields[1]) else { fatalError("perl said: \(output)") }
    return seconds
}

/// iperf3 single stream over loopback for `seconds`; returns bytes per second received.
func iperfRun(seconds: Int) -> Double? {
    let port = 20_000 + Int(getpid() % 20_000)
    let server = Process()
    server.executableURL = URL(fileURLWithPath: "/usr/bin/iperf3")
    server.arguments = ["-s", "-1", "-B", "127.0.0.1", "-p", String(port)]
    server.standardOutput = FileHandle.nullDevice
    guard (try? server.run()) != nil else { return nil }
    usleep(300_000)
    let output = run("/usr/bin/iperf3", ["-c", "127.0.0.1", "-p", String(port), "-t", String(seconds), "-J"])
    server.waitUntilExit()
    guard let json = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
        let end = json["end"] as? [String: Any], let received = end["sum_received"] as? [String: Any],
        let bits = received["bits_per_second"] as? Double
    else { return nil }
    return bits / 8
}

// MARK: Runs

func format(_ value: Double) -> String { String(format: "%.0f", value) }
func mb(_ bytesPerSecond: Double) -> String { String(format: "%.0f MB/s", bytesPerSecond / 1e6) }

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

// Interleaved rounds, medians reported: the machine is shared, so each figure is the median of
// `rounds` runs taken alternately with the others.
var swiftLineRuns: [Double] = [], perlLineRuns: [Double] = []
var swiftBulkRuns: [Double] = [], perlBulkRuns: [Double] = [], iperfRuns: [Double] = []
print("lines: \(lineCount) lines of 100 bytes, push_read(line) each; bulk: \(bulkMiB) MiB, push_read(chunk => \(chunkSize)) each; iperf3: 1 stream, 2 s; \(rounds) rounds")
for round in 1...rounds {
    let lineSeconds = swiftRun(
        port: startSender(block: lineBlock, total: lineCount * 100), total: lineCount, reader: .line(),
        units: { _ in 1 })
    swiftLineRuns.append(Double(lineCount) / lineSeconds)
    let perlLineSeconds = perlRun("line", port: startSender(block: lineBlock, total: lineCount * 100), total: lineCount)
    perlLineRuns.append(Double(lineCount) / perlLineSeconds)
    let bulkSeconds = swiftRun(
        port: startSender(block: bulkBlock, total: bulkBytes), total: bulkBytes, reader: .chunk(chunkSize),
        units: { $0.readableBytes })
    swiftBulkRuns.append(Double(bulkBytes) / bulkSeconds)
    let perlBulkSeconds = perlRun("chunk", port: startSender(block: bulkBlock, total: bulkBytes), total: bulkBytes)
    perlBulkRuns.append(Double(bulkBytes) / perlBulkSeconds)
    if let iperf = iperfRun(seconds: 2) { iperfRuns.append(iperf) }
    print("round \(round): line \(format(swiftLineRuns.last!)) vs \(format(perlLineRuns.last!)) lines/s; "
        + "bulk \(mb(swiftBulkRuns.last!)) vs \(mb(perlBulkRuns.last!)), iperf3 \(iperfRuns.last.map(mb) ?? "n/a")")
}
let swiftLines = median(swiftLineRuns), perlLines = median(perlLineRuns)
let swiftBulk = median(swiftBulkRuns), perlBulk = median(perlBulkRuns)
let iperf = iperfRuns.isEmpty ? nil : median(iperfRuns)

print("")
print("| workload | Swift Handle | Perl AnyEvent::Handle | Swift vs Perl | iperf3 (1 stream) | Swift vs iperf3 |")
print("|---|---|---|---|---|---|")
print("| line (100-byte lines) | \(format(swiftLines)) lines/s | \(format(perlLines)) lines/s | "
    + String(format: "%.2f×", swiftLines / perlLines) + " | n/a | n/a |")
print("| chunk (64 KiB reads) | \(mb(swiftBulk)) | \(mb(perlBulk)) | " + String(format: "%.2f×", swiftBulk / perlBulk)
    + " | \(iperf.map(mb) ?? "n/a") | " + (iperf.map { String(format: "%.0f%%", swiftBulk / $0 * 100) } ?? "n/a") + " |")
try? group.syncShutdownGracefully()
