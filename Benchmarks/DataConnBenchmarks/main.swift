// DataConn throughput and message latency between two node processes on loopback.
//
//   DataConnBenchmarks serve <port> [cert.pem]
//   DataConnBenchmarks drive <port> <MiB> [cert.pem]
//
// `serve` runs node `dc-bench-serve` listening on 127.0.0.1:<port>, with a DataConn receiver that
// counts bytes and a function that answers pings. `drive` runs a node without listeners seeded with
// it, measures the idle message round trip (node message there, node message back), then sends
// <MiB> MiB over a DataConn while it keeps measuring the round trip, and prints one result line:
//
//   RESULT bytes=<n> seconds=<s> rate=<bytes/s> idle_p50_us=... idle_p99_us=... bulk_p50_us=... bulk_p99_us=... bulk_samples=<n> cpu_us=<n>
//
// (`cpu_us`: the sending process's CPU time, all threads, during the transfer; `serve` prints the
// receiving process's as `SINKCPU cpu_us=<n> bytes=<n>`.)
//
// With a certificate (PEM key + certificate + CA, Perl's `cert`) both nodes use TLS and the DataConn
// is encrypted. Run through Benchmarks/dataconn-bench.sh, which adds iperf3 and the ratios.
//
// Environment of `drive`: DATACONN_BENCH_PASS (bytes queued per pass of the loop-driven writer,
// default 262144), DATACONN_BENCH_PAUSE_US (µs between passes, default 5),
// DATACONN_BENCH_WRITER=async (write from a task with `try await handle.write`, as `aemp sendfile`
// does, in DATACONN_BENCH_CHUNK-byte writes, default 1 MiB), DATACONN_BENCH_TRACE=1 (both processes:
// each round trip's two legs and event-loop timer lateness over 5 ms, on stderr),
// DATACONN_BENCH_DATA_PRIORITY=node|normal|background|0…19 (both processes: where the data
// connections live, see makeDataGroup; unset: the library's default background data group).
import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import Foundation
import NIOCore
import NIOPosix
import Synchronization

let secret = "dataconn-bench-secret"
/// DATACONN_BENCH_DATA_PRIORITY: the data group of both nodes. Unset: the library's default
/// (`Node.defaultDataGroup`, background priority); `node`: the node's own group (data connections
/// on its second loop, normal priority); `normal`, `background` or a nice value 0…19: a one-thread
/// group from `Node.makeDataGroup` at that priority.
func makeDataGroup(nodeGroup: any EventLoopGroup) async throws -> (any EventLoopGroup)? {
    guard let text = ProcessInfo.processInfo.environment["DATACONN_BENCH_DATA_PRIORITY"] else { return nil }
    switch text {
    case "node": return nodeGroup
    case "normal": return try await Node.makeDataGroup(priority: .normal)
    case "background": return try await Node.makeDataGroup(priority: .background)
    default:
        guard let nice = Int32(text) else { fail("DATACONN_BENCH_DATA_PRIORITY: node, normal, background or 0…19") }
        return try await Node.makeDataGroup(priority: .nice(nice))
    }
}

/// DATACONN_BENCH_TRACE=1: the drive prints each round trip's two legs to stderr.
let asyncChunk = Int(ProcessInfo.processInfo.environment["DATACONN_BENCH_CHUNK"] ?? "") ?? (1 << 20)
let trace = ProcessInfo.processInfo.environment["DATACONN_BENCH_TRACE"] == "1"
nonisolated(unsafe) var traceStart: Int64 = 0

/// Trace mode: reports every time `loop` runs a 1 ms timer more than 5 ms late.
func watchLoopLag(_ loop: any EventLoop, name: String) {
    guard trace else { return }
    let expected = NIODeadline.now() + .milliseconds(1)
    loop.scheduleTask(deadline: expected) {
        let late = (NIODeadline.now() - expected).nanoseconds / 1000
        if late > 5000 {
            FileHandle.standardError.write(Data("LAG \(name) t=\(Int64(NIODeadline.now().uptimeNanoseconds) / 1000)us late=\(late)us\n".utf8))
        }
        watchLoopLag(loop, name: name)
    }
}
let serveNode = "dc-bench-serve"
let arguments = CommandLine.arguments

func certificate(at index: Int) -> String? {
    guard arguments.count > index else { return nil }
    guard let text = try? String(contentsOfFile: arguments[index], encoding: .utf8) else {
        fatalError("cannot read certificate \(arguments[index])")
    }
    return text
}

/// CPU time (user + system, all threads) this process has used, in microseconds.
func cpuMicroseconds() -> Int {
    var usage = rusage()
    #if canImport(Glibc)
    getrusage(RUSAGE_SELF.rawValue, &usage)
    #else
    getrusage(RUSAGE_SELF, &usage)
    #endif
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000 + Int(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("DataConnBenchmarks: \(message)\n".utf8))
    exit(1)
}

guard arguments.count >= 3, let port = Int(arguments[2]) else {
    fail("usage: DataConnBenchmarks serve <port> [cert] | drive <port> <MiB> [cert]")
}

// MARK: serve

func serve(certificate: String?) async throws -> Never {
    let node = try await Node.start(
        NodeConfiguration(
            nodeID: serveNode, binds: ["127.0.0.1:\(port)"], seeds: ["127.0.0.1:\(port)"], secret: secret,
            certificate: certificate),
        dataGroup: try await makeDataGroup(nodeGroup: MultiThreadedEventLoopGroup.singleton))
    // bench::sink(total, replyPort, handle): counts bytes, reports when all arrived.
    node.registerDataConnFunction("bench::sink") { context, arguments, handle in
        guard let total = arguments.first?.intValue, let reply = arguments.dropFirst().first?.stringValue.flatMap(PortID.init)
        else {
            handle.destroy()
            return
        }
        var received = 0
        var cpuAtStart = 0
        handle.onError { handle, _ in handle.destroy() }
        handle.onRead { handle in
            if received == 0 { cpuAtStart = cpuMicroseconds() }
            received += handle.readBuffer.readableBytes
            handle.consumeAll()
            if received >= total {
                // The receiving process's CPU time for the transfer (the script reads it).
                FileHandle.standardOutput.write(Data("SINKCPU cpu_us=\(cpuMicroseconds() - cpuAtStart) bytes=\(received)\n".utf8))
                context.node.send(reply, ["done", .int(Int64(received))])
                handle.destroy()
            }
        }
    }
    // bench::ping(replyPort, sequence): one node message back.
    node.registerFunction("bench::ping") { context, arguments in
        guard let reply = arguments.first?.stringValue.flatMap(PortID.init) else { return }
        // The arrival time (CLOCK_MONOTONIC, shared by both processes) splits the round trip in two.
        context.node.send(reply, Array(arguments.dropFirst()) + [.int(Int64(NIODeadline.now().uptimeNanoseconds))])
    }
    watchLoopLag(node.eventLoop, name: "serve")
    FileHandle.standardOutput.write(Data("READY \(node.listenerAddresses.joined(separator: ","))\n".utf8))
    while true { try await Task.sleep(for: .seconds(3600)) }
}

// MARK: drive

/// Replies from the serve node, handed to whoever waits.
final class Mailbox: Sendable {
    private let state = Mutex<(items: [[Value]], waiter: CheckedContinuation<[Value], Never>?)>(([], nil))

    func put(_ message: [Value]) {
        let waiter: CheckedContinuation<[Value], Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.items.append(message)
            return nil
        }
        waiter?.resume(returning: message)
    }

    func next() async -> [Value] {
        await withCheckedContinuation { continuation in
            let ready: [Value]? = state.withLock { state in
                if !state.items.isEmpty { return state.items.removeFirst() }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Ping-pong driven from the node's loop: each answer sends the next ping, so the measured round
/// trip is node message there and back, without task hops of the harness. Loop-confined state.
final class Pinger: @unchecked Sendable {
    let node: Node
    let target: NodeID
    private var port: PortID?
    private var samples: [Double] = []
    private var wanted: Int?
    private var gap: TimeAmount = .zero
    private var stopping = false
    private var sentAt: NIODeadline = .now()
    private var sequence: Int64 = 0
    private var waiter: CheckedContinuation<[Double], Never>?

    init(node: Node, target: NodeID) {
        self.node = node
        self.target = target
    }

    /// Pings `count` times (`nil`: until ``stop()``), `gap` apart; returns the round trips in µs.
    func run(count: Int?, gap: TimeAmount) async -> [Double] {
        await withCheckedContinuation { continuation in
            node.eventLoop.execute {
                if self.port == nil { self.port = self.node.port { _, message in self.answer(message) } }
                self.samples = []
                self.wanted = count
                self.gap = gap
                self.stopping = false
                self.waiter = continuation
                self.ping()
            }
        }
    }

    /// Ends an open-ended ``run(count:gap:)`` after the ping in flight.
    func stop() {
        node.eventLoop.execute { self.stopping = true }
    }

    /// When the next ping is due; its round trip is counted from then, so time the message waits
    /// for a busy loop before it is sent counts too.
    private var due: NIODeadline?

    private func ping() {
        sequence += 1
        sentAt = due ?? .now()
        due = nil
        node.sendToFunction(on: target, "bench::ping", [.text(port!.description), .int(sequence)])
    }

    private func answer(_ message: [Value]) {
        let now = NIODeadline.now()
        precondition(message.first == .int(sequence), "ping answers out of order: \(message)")
        samples.append(Double((now - sentAt).nanoseconds) / 1000)
        if trace, traceStart != 0, let arrived = message.last?.intValue {
            let there = (Int64(arrived) - Int64(sentAt.uptimeNanoseconds)) / 1000
            let back = (Int64(now.uptimeNanoseconds) - Int64(arrived)) / 1000
            FileHandle.standardError.write(
                Data("TRACE t=\(Int64(now.uptimeNanoseconds) / 1000)us there=\(there)us back=\(back)us\n".utf8))
        }
        if stopping || samples.count == wanted {
            waiter?.resume(returning: samples)
            waiter = nil
        } else if gap == .zero {
            ping()
        } else {
            due = now + gap
            node.eventLoop.scheduleTask(in: gap) { self.ping() }
        }
    }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

/// Writes `total` bytes in 256 KiB chunks, keeping at most 1 MiB queued and queueing at most 256 KiB
/// per pass (`DATACONN_BENCH_PASS` bytes), passes 5 µs apart (`DATACONN_BENCH_PAUSE_US`). A pass
/// is the time the data thread keeps its core before it sleeps again (with TLS, encrypting 256 KiB
/// takes about 150 µs here), and a node loop that wakes meanwhile may have to wait for that core.
/// Loop-confined.
///
/// Loopback takes the data as fast as it comes: a write to an empty buffer goes to the socket at
/// once and `onDrain` runs inside `pushWrite`, so a sender that refills from `onDrain` (or from a
/// task queued there) never lets the loop poll its other channels, and the node connection's
/// messages wait behind the transfer. NIO runs every task that is due before it polls again (an
/// `execute` or a zero-delay task queued by a task runs in the same pass), so the next pass is a
/// timer a little in the future, armed when a pass ends: the loop polls while it waits.
final class BulkSender: @unchecked Sendable {
    private let chunk: ByteBuffer
    private var left: Int
    private var filling = false
    private var scheduled = false
    private static let perPass = Int(ProcessInfo.processInfo.environment["DATACONN_BENCH_PASS"] ?? "") ?? (256 << 10)
    private static let queued = 1 << 20
    private static let pause = TimeAmount.microseconds(Int64(ProcessInfo.processInfo.environment["DATACONN_BENCH_PAUSE_US"] ?? "") ?? 5)

    init(_ handle: Handle, total: Int) {
        chunk = handle.allocator.buffer(repeating: 0x78, count: 256 << 10)
        left = total
    }

    /// Starts sending. Loop only.
    func start(_ handle: Handle) {
        handle.onDrain { handle in
            if !self.filling { self.schedule(handle) }
        }
        fill(handle)
    }

    private func schedule(_ handle: Handle) {
        guard !scheduled, left > 0 else { return }
        scheduled = true
        handle.eventLoop.scheduleTask(in: Self.pause) {
            self.scheduled = false
            self.fill(handle)
        }
    }

    private func fill(_ handle: Handle) {
        filling = true
        var budget = Self.perPass
        while left > 0, budget > 0, handle.writeBufferLength < Self.queued {
            let count = min(left, chunk.readableBytes)
            handle.pushWrite(count == chunk.readableBytes ? chunk : chunk.getSlice(at: chunk.readerIndex, length: count)!)
            left -= count
            budget -= count
        }
        filling = false
        if left == 0 {
            handle.onDrain(nil)
        } else if handle.writeBufferLength < Self.queued {
            // Room left (the socket took everything): the next pass after a poll. Otherwise the
            // socket is full and onDrain arrives from the poll.
            schedule(handle)
        }
    }
}

func drive(mebibytes: Int, certificate: String?) async throws {
    let total = mebibytes << 20
    let node = try await Node.start(
        NodeConfiguration(
            nodeID: "dc-bench-drive", binds: [], seeds: ["127.0.0.1:\(port)"], secret: secret, certificate: certificate),
        dataGroup: try await makeDataGroup(nodeGroup: MultiThreadedEventLoopGroup.singleton))
    let target = NodeID(serveNode)!
    let deadline = ContinuousClock.now + .seconds(20)
    while await node.state(of: target) != .up {
        if ContinuousClock.now > deadline { fail("serve node not reachable on port \(port)") }
        try await Task.sleep(for: .milliseconds(10))
    }
    watchLoopLag(node.eventLoop, name: "drive")
    let pinger = Pinger(node: node, target: target)
    let doneBox = Mailbox()
    let donePort = node.port { _, message in doneBox.put(message) }
    let clock = ContinuousClock()

    // Idle round trips (after a warm-up), paced like the ones under bulk.
    _ = await pinger.run(count: 200, gap: .zero)
    let idle = await pinger.run(count: 1000, gap: .milliseconds(1)).sorted()

    // Bulk transfer, round trips measured alongside until the receiver reports completion.
    let handle: Handle
    do {
        handle = try await node.dataConnection(
            to: serveNode, timeout: .seconds(10), function: "bench::sink",
            arguments: [.int(Int64(total)), .text(donePort.description)])
    } catch {
        fail("DataConn failed: \(error)")
    }
    let tls = try await handle.eventLoop.submit { handle.isTLS }.get()
    let start = clock.now
    let cpuAtStart = cpuMicroseconds()
    traceStart = Int64(NIODeadline.now().uptimeNanoseconds)
    if ProcessInfo.processInfo.environment["DATACONN_BENCH_WRITER"] == "async" {
        // The async API from a task, as `aemp sendfile` writes: one 1 MiB write in flight at a time.
        try await handle.eventLoop.submit { handle.onError { _, error in fail("DataConn error: \(error)") } }.get()
        Task {
            let chunk = handle.allocator.buffer(repeating: 0x78, count: asyncChunk)
            var left = total
            while left > 0 {
                let count = min(left, chunk.readableBytes)
                try await handle.write(count == chunk.readableBytes ? chunk : chunk.getSlice(at: 0, length: count)!)
                left -= count
            }
        }
    } else {
        handle.eventLoop.execute {
            handle.onError { _, error in fail("DataConn error: \(error)") }
            BulkSender(handle, total: total).start(handle)
        }
    }
    async let finished: Duration = {
        let message = await doneBox.next()
        let elapsed = clock.now - start
        precondition(message.first == "done" && message.last?.intValue == total, "bad completion \(message)")
        return elapsed
    }()
    // A small gap between pings keeps the pinger from being a load of its own.
    async let bulkSamples = pinger.run(count: nil, gap: .milliseconds(1))
    let elapsed = await finished
    let cpu = cpuMicroseconds() - cpuAtStart
    pinger.stop()
    let bulk = await bulkSamples.sorted()
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    print(
        String(
            format:
                "RESULT tls=%d bytes=%ld seconds=%.3f rate=%.0f idle_p50_us=%.1f idle_p99_us=%.1f bulk_p50_us=%.1f bulk_p99_us=%.1f bulk_samples=%ld cpu_us=%ld",
            tls ? 1 : 0, total, seconds, Double(total) / seconds, percentile(idle, 0.5), percentile(idle, 0.99),
            percentile(bulk, 0.5), percentile(bulk, 0.99), bulk.count, cpu))
    handle.destroy()
    await node.shutdown()
}

switch arguments[1] {
case "serve":
    try await serve(certificate: certificate(at: 3))
case "drive":
    guard arguments.count >= 4, let mebibytes = Int(arguments[3]), mebibytes > 0 else { fail("drive needs <MiB>") }
    try await drive(mebibytes: mebibytes, certificate: certificate(at: 4))
default:
    fail("unknown mode \(arguments[1])")
}
