// Node-to-node benchmarks for issue #5: one-way small-message throughput and ping-pong round-trip
// time between two Swift node processes on loopback, plus the raw TCP ping-pong reference.
// Benchmarks/node-bench.sh runs every mode and the Erlang reference (Benchmarks/erlang/bench.erl).
//
//   NodeBenchmarks serve  <port> [framing] [lifetime-s]          the server node "bench-server"
//   NodeBenchmarks drive  <port> [framing] [messages] [round-trips]   the driver node
//   NodeBenchmarks sizes  [framing] [round-trips]                encoded ping/pong sizes on the wire
// framing: cbor (default) or json, optionally with "+autocork" (both nodes coalesce writes per tick)
// and then "+metrics" (both nodes report to a real swift-metrics backend, swift-prometheus); a
// "+busypoll" before all of them makes both nodes poll 300 µs after each message (`busy_poll`).
//   NodeBenchmarks rawtcp-server <port> <ping-bytes> <pong-bytes> [lifetime-s]
//   NodeBenchmarks rawtcp-client <port> <ping-bytes> <pong-bytes> [round-trips]
//   NodeBenchmarks nio-server|nio-client ...   the same ping-pong on plain SwiftNIO channels (diagnostic)
//
// Every result is one line on stdout: `RESULT key=value ...`; diagnostics go to stderr.
//
// Workload (the same in the Erlang reference):
// - throughput: the driver sends `messages` one-way messages `[i, <32-byte text>]` to a sink port on
//   the server, then `["done", replyport]`; the sink answers with its count. Timed from the first
//   send to the count's arrival.
// - round trips: the driver sends `[replyport, seq]` to an echo port, which answers `[seq]` to
//   `replyport`; the next ping leaves when the pong arrives (on the driver's event loop).
import AEMP
import AEMPCodecs
import Foundation
import Metrics
import NIOCore
import NIOPosix
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

let serverNodeID = "bench-server"
let driverNodeID = "bench-driver"
let secret = "aemp-bench-secret"
/// The one-way message payload: 32 bytes of ASCII text (as a Perl string or an Erlang binary).
let payload = "payload of thirty-two bytes 0123"
/// Messages sent per event loop tick by the driver before it yields to the loop.
let sendSlice = 1024

/// Writes one line to stdout, unbuffered (the script reads it while the process runs).
func emit(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("NodeBenchmarks: \(message)\n".utf8))
    exit(2)
}

func argument(_ index: Int) -> String? {
    CommandLine.arguments.count > index ? CommandLine.arguments[index] : nil
}

func intArgument(_ index: Int, default value: Int) -> Int {
    guard let text = argument(index) else { return value }
    guard let number = Int(text), number > 0 else { fail("argument \(index) must be a positive integer: \(text)") }
    return number
}

/// A framing argument: `cbor` or `json`, optionally followed by `+autocork` (Perl's `autocork`
/// on both nodes: writes coalesced per loop tick instead of one `write` per message).
struct Variant {
    var framing: Framing
    var autocork: Bool
    /// `+busypoll`: both nodes' `busyPoll` (zero: off).
    var busyPoll: Duration = .zero
    /// The argument as given; printed as `framing=` in result lines.
    var label: String
}

func variantArgument(_ index: Int) -> Variant {
    let label = argument(index) ?? "cbor"
    var name = Substring(label)
    if name.hasSuffix("+metrics") {
        // A real metrics backend (swift-prometheus) in this process: the node reports to it.
        name = name.dropLast("+metrics".count)
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()))
    }
    var busyPoll = Duration.zero
    if name.hasSuffix("+busypoll") {
        name = name.dropLast("+busypoll".count)
        busyPoll = .microseconds(300)
    }
    var autocork = false
    if name.hasSuffix("+autocork") {
        name = name.dropLast("+autocork".count)
        autocork = true
    }
    let framing = Framing(rawValue: String(name))
    guard framing.isSupported else { fail("unknown framing \(label) (cbor or json, optionally +autocork)") }
    return Variant(framing: framing, autocork: autocork, busyPoll: busyPoll, label: label)
}

/// Monotonic nanoseconds.
@inline(__always)
func now() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
}

/// The `p`-th percentile (0...100) of sorted samples, nearest rank.
func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64 {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

func microseconds(_ nanoseconds: UInt64) -> String {
    String(format: "%.1f", Double(nanoseconds) / 1000)
}

func printRTT(_ implementation: String, framing: String, samples: [UInt64]) {
    let sorted = samples.sorted()
    let mean = sorted.reduce(0, +) / UInt64(max(sorted.count, 1))
    emit("RESULT impl=\(implementation) framing=\(framing) metric=rtt n=\(sorted.count)"
        + " p50_us=\(microseconds(percentile(sorted, 50))) p99_us=\(microseconds(percentile(sorted, 99)))"
        + " mean_us=\(microseconds(mean)) min_us=\(microseconds(sorted.first ?? 0))")
}

/// Loop-confined mutable state of a benchmark port (touched only on its node's event loop).
final class LoopState: @unchecked Sendable {
    var count = 0
    var sent = 0
    var index = 0
    var start: UInt64 = 0
    var samples: [UInt64] = []
}

// MARK: Server node

func serve() async throws {
    let port = intArgument(2, default: 4040)
    let variant = variantArgument(3)
    let lifetime = intArgument(4, default: 600)
    var configuration = NodeConfiguration(
        nodeID: serverNodeID, binds: ["127.0.0.1:\(port)"], secret: secret, framingFormats: [variant.framing],
        autocork: variant.autocork)
    configuration.busyPoll = variant.busyPoll
    let node = try await Node.start(configuration)
    // The sink counts messages; `["done", replyport]` answers `[count]` and starts counting again.
    node.registerFunction("bench::sink") { context, _ in
        guard let me = context.port else { return }
        let state = LoopState()
        context.node.receive(me) { context, message in
            if message.count == 2, message[0].stringValue == "done" {
                if let reply = message[1].stringValue.flatMap(PortID.init) {
                    context.node.send(reply, [.int(Int64(state.count))])
                }
                state.count = 0
            } else {
                state.count += 1
            }
        }
    }
    // The echo port answers `[replyport, seq]` with `[seq]` to `replyport`.
    node.registerFunction("bench::echo") { context, _ in
        guard let me = context.port else { return }
        context.node.receive(me) { context, message in
            guard message.count == 2, let reply = message[0].stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, [message[1]])
        }
    }
    emit("READY impl=swift node=\(node.nodeID) listen=\(node.listenerAddresses.joined(separator: ","))")
    try await Task.sleep(for: .seconds(lifetime))
    await node.shutdown()
}

// MARK: Driver node

/// Sends `total` one-way messages to `sink` in slices of ``sendSlice`` per loop tick, then `done`.
func blast(_ node: Node, to sink: PortID, total: Int, done reply: PortID, state: LoopState) {
    let text = Value.text(payload)
    let end = min(state.sent + sendSlice, total)
    while state.sent < end {
        node.send(sink, [.int(Int64(state.sent)), text])
        state.sent += 1
    }
    if state.sent < total {
        node.eventLoop.execute { blast(node, to: sink, total: total, done: reply, state: state) }
    } else {
        node.send(sink, [.text("done"), .text(reply.description)])
    }
}

/// One throughput run: returns (count the sink reported, seconds).
func throughput(_ node: Node, sink: PortID, messages: Int) async throws -> (Int, Double) {
    let promise = node.eventLoop.makePromise(of: Int.self)
    let state = LoopState()
    let reply = node.port { _, message in
        promise.succeed(Int(message.first?.int64Value ?? -1))
    }
    defer { node.kill(reply) }
    let timeout = node.eventLoop.scheduleTask(in: .seconds(120)) {
        promise.fail(NodeBenchError("no count from the sink within 120 s"))
    }
    defer { timeout.cancel() }
    node.eventLoop.execute {
        state.start = now()
        blast(node, to: sink, total: messages, done: reply, state: state)
    }
    let count = try await promise.futureResult.get()
    let elapsed = now() - state.start
    return (count, Double(elapsed) / 1e9)
}

/// `roundTrips` ping-pongs, each started when the previous pong arrives; returns the samples (ns).
/// With `variant`, first prints the encoded sizes of the messages it sends and receives.
func pingPong(_ node: Node, echo: PortID, roundTrips: Int, variant: Variant? = nil) async throws -> [UInt64] {
    let promise = node.eventLoop.makePromise(of: [UInt64].self)
    let state = LoopState()
    state.samples.reserveCapacity(roundTrips)
    let pongs = node.port()
    let replyText = Value.text(pongs.description)
    if let variant {
        reportSizes(variant, echo: echo, reply: pongs, roundTrips: roundTrips, measured: true)
    }
    node.receive(pongs) { context, _ in
        let arrived = now()
        state.samples.append(arrived - state.start)
        state.index += 1
        if state.index < roundTrips {
            state.start = now()
            context.node.send(echo, [replyText, .int(Int64(state.index))])
        } else {
            promise.succeed(state.samples)
        }
    }
    defer { node.kill(pongs) }
    let timeout = node.eventLoop.scheduleTask(in: .seconds(120)) {
        promise.fail(NodeBenchError("ping-pong did not finish within 120 s"))
    }
    defer { timeout.cancel() }
    node.eventLoop.execute {
        state.start = now()
        node.send(echo, [replyText, .int(0)])
    }
    return try await promise.futureResult.get()
}

struct NodeBenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func drive() async throws {
    let port = intArgument(2, default: 4040)
    let variant = variantArgument(3)
    let messages = intArgument(4, default: 200_000)
    let roundTrips = intArgument(5, default: 10_000)
    var configuration = NodeConfiguration(
        nodeID: driverNodeID, binds: ["127.0.0.1:0"], seeds: ["127.0.0.1:\(port)"], secret: secret,
        framingFormats: [variant.framing], autocork: variant.autocork)
    configuration.busyPoll = variant.busyPoll
    let node = try await Node.start(configuration)
    let server = NodeID(serverNodeID)!
    // Wait until the seed connection to the server is up (bounded).
    let deadline = now() + 20_000_000_000
    while await node.state(of: server) != .up {
        guard now() < deadline else { throw NodeBenchError("the server node did not come up within 20 s") }
        try await Task.sleep(for: .milliseconds(10))
    }
    let sink = node.spawn(on: server, function: "bench::sink")
    let echo = node.spawn(on: server, function: "bench::echo")

    // Warm-up (connection, allocator, caches), then the timed runs.
    _ = try await throughput(node, sink: sink, messages: max(messages / 10, 1))
    _ = try await pingPong(node, echo: echo, roundTrips: max(roundTrips / 10, 1))

    let (count, seconds) = try await throughput(node, sink: sink, messages: messages)
    guard count == messages else { throw NodeBenchError("the sink counted \(count) of \(messages) messages") }
    emit("RESULT impl=swift framing=\(variant.label) metric=throughput n=\(messages)"
        + " seconds=\(String(format: "%.4f", seconds)) msgs_per_s=\(Int((Double(messages) / seconds).rounded()))")
    let samples = try await pingPong(node, echo: echo, roundTrips: roundTrips, variant: variant)
    printRTT("swift", framing: variant.label, samples: samples)
    await node.shutdown()
}

// MARK: Sizes

/// Encodes a data-phase message (`[portname, elements...]`) as the transport puts it on the wire.
func encodedSize(_ message: [Value], framing: Framing) -> Int {
    var buffer = ByteBufferAllocator().buffer(capacity: 256)
    if framing == .json {
        do {
            return try buffer.writeJSONMessage(message)
        } catch {
            fail("cannot encode \(message) as JSON: \(error)")
        }
    }
    return buffer.writeCBOR(.array(message))
}

/// Prints the encoded sizes of one ping (driver → echo) and one pong (echo → driver).
func reportSizes(_ variant: Variant, echo: PortID, reply: PortID, roundTrips: Int, measured: Bool) {
    let framing = variant.framing
    let seq = Value.int(Int64(roundTrips - 1))
    let ping = encodedSize([.text(echo.name), .text(reply.description), seq], framing: framing)
    let pong = encodedSize([.text(reply.name), seq], framing: framing)
    let oneWay = encodedSize([.text(echo.name), .int(Int64(roundTrips - 1)), .text(payload)], framing: framing)
    emit("SIZES framing=\(variant.label) ping_bytes=\(ping) pong_bytes=\(pong) oneway_bytes=\(oneWay)"
        + (measured ? " source=driver" : " source=model"))
}

/// The sizes the driver's messages will have: its port names come from the same generator, in the
/// same order (two spawned ports, then two local ports).
func sizes() {
    let variant = variantArgument(2)
    let roundTrips = intArgument(3, default: 10_000)
    var names = PortNameGenerator(nodeIDRandomised: false, runiq: RemoteUnique.generate())
    let echoName = names.nextRemoteName()
    _ = names.nextRemoteName()
    _ = names.nextLocalName()
    let replyName = names.nextLocalName()
    reportSizes(variant,
                echo: PortID(node: NodeID(serverNodeID)!, name: echoName),
                reply: PortID(node: NodeID(driverNodeID)!, name: replyName),
                roundTrips: roundTrips, measured: false)
}

// MARK: Raw TCP reference

func setNoDelay(_ fd: Int32) {
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
}

func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return address
}

/// Reads exactly `count` bytes; false on EOF or error.
func readFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Bool {
    var done = 0
    while done < count {
        let got = read(fd, buffer + done, count - done)
        if got <= 0 {
            if got < 0, errno == EINTR { continue }
            return false
        }
        done += got
    }
    return true
}

/// Writes exactly `count` bytes; false on error.
func writeFully(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Bool {
    var done = 0
    while done < count {
        let put = write(fd, buffer + done, count - done)
        if put <= 0 {
            if put < 0, errno == EINTR { continue }
            return false
        }
        done += put
    }
    return true
}

/// Accepts one connection and answers every `ping` bytes with `pong` bytes until EOF.
func rawServer() {
    let port = intArgument(2, default: 4041)
    let ping = intArgument(3, default: 64)
    let pong = intArgument(4, default: 32)
    let lifetime = intArgument(5, default: 600)
    alarm(UInt32(lifetime))
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = loopbackAddress(port: port)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard bound == 0, listen(listener, 1) == 0 else { fail("cannot listen on 127.0.0.1:\(port)") }
    emit("READY impl=rawtcp listen=127.0.0.1:\(port)")
    let fd = accept(listener, nil, nil)
    guard fd >= 0 else { fail("accept failed") }
    close(listener)
    setNoDelay(fd)
    let input = UnsafeMutableRawPointer.allocate(byteCount: ping, alignment: 8)
    let output = UnsafeMutableRawPointer.allocate(byteCount: pong, alignment: 8)
    output.initializeMemory(as: UInt8.self, repeating: 0x61, count: pong)
    while readFully(fd, input, ping) {
        guard writeFully(fd, output, pong) else { break }
    }
    close(fd)
}

/// Connects, then does `round-trips` blocking ping-pongs (after a tenth as warm-up).
func rawClient() {
    let port = intArgument(2, default: 4041)
    let ping = intArgument(3, default: 64)
    let pong = intArgument(4, default: 32)
    let roundTrips = intArgument(5, default: 10_000)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopbackAddress(port: port)
    var connected: Int32 = -1
    for _ in 0..<200 {
        connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if connected == 0 { break }
        usleep(10_000)
    }
    guard connected == 0 else { fail("cannot connect to 127.0.0.1:\(port)") }
    setNoDelay(fd)
    let output = UnsafeMutableRawPointer.allocate(byteCount: ping, alignment: 8)
    output.initializeMemory(as: UInt8.self, repeating: 0x62, count: ping)
    let input = UnsafeMutableRawPointer.allocate(byteCount: pong, alignment: 8)
    var samples: [UInt64] = []
    samples.reserveCapacity(roundTrips)
    let warmUp = max(roundTrips / 10, 1)
    for index in 0..<(warmUp + roundTrips) {
        let start = now()
        guard writeFully(fd, output, ping), readFully(fd, input, pong) else { fail("the raw TCP server went away") }
        if index >= warmUp { samples.append(now() - start) }
    }
    close(fd)
    emit("RESULT impl=rawtcp framing=- metric=rtt_bytes ping_bytes=\(ping) pong_bytes=\(pong)")
    printRTT("rawtcp", framing: "-", samples: samples)
}

// MARK: NIO TCP reference (diagnostic)

/// Counts incoming bytes and answers every `ping` bytes with `pong` bytes (server side), or sends
/// the next ping when `pong` bytes arrived (client side), on a plain SwiftNIO channel: the floor
/// for a node built on SwiftNIO's event loop (epoll wake-up, one read, one write per message).
final class NIOPingPongHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let expected: Int
    let answer: ByteBuffer
    var pending = 0
    /// Client side: the remaining round trips, the samples and where to report them.
    var client: (total: Int, warmUp: Int, promise: EventLoopPromise<[UInt64]>)?
    var index = 0
    var start: UInt64 = 0
    var samples: [UInt64] = []

    init(expected: Int, answer: Int) {
        self.expected = expected
        self.answer = ByteBuffer(repeating: 0x61, count: answer)
    }

    func channelActive(context: ChannelHandlerContext) {
        guard client != nil else { return }
        start = now()
        context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += unwrapInboundIn(data).readableBytes
        while pending >= expected {
            pending -= expected
            guard let client else {
                context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
                continue
            }
            let arrived = now()
            if index >= client.warmUp { samples.append(arrived - start) }
            index += 1
            if index < client.total {
                start = now()
                context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
            } else {
                client.promise.succeed(samples)
                context.close(promise: nil)
            }
        }
    }
}

/// `nio-server <port> <ping> <pong> [lifetime]` / `nio-client <port> <ping> <pong> [round-trips]`.
func nioPingPong(server: Bool) async throws {
    let port = intArgument(2, default: 4042)
    let ping = intArgument(3, default: 64)
    let pong = intArgument(4, default: 32)
    let group = MultiThreadedEventLoopGroup.singleton
    if server {
        let lifetime = intArgument(5, default: 600)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOPingPongHandler(expected: ping, answer: pong))
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        emit("READY impl=nio listen=127.0.0.1:\(port)")
        try await Task.sleep(for: .seconds(lifetime))
        try await channel.close()
        return
    }
    let roundTrips = intArgument(5, default: 10_000)
    let loop = group.next()
    let promise = loop.makePromise(of: [UInt64].self)
    let warmUp = max(roundTrips / 10, 1)
    var lastError: (any Error)?
    for _ in 0..<200 {
        do {
            _ = try await ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let handler = NIOPingPongHandler(expected: pong, answer: ping)
                        handler.client = (warmUp + roundTrips, warmUp, promise)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
                .connect(host: "127.0.0.1", port: port).get()
            lastError = nil
            break
        } catch {
            lastError = error
            try await Task.sleep(for: .milliseconds(10))
        }
    }
    if let lastError { throw lastError }
    let samples = try await promise.futureResult.get()
    printRTT("nio", framing: "-", samples: samples)
}

// MARK: Main

switch argument(1) {
case "serve":
    do { try await serve() } catch { fail("serve: \(error)") }
case "drive":
    do { try await drive() } catch { fail("drive: \(error)") }
case "sizes":
    sizes()
case "rawtcp-server":
    rawServer()
case "rawtcp-client":
    rawClient()
case "nio-server":
    do { try await nioPingPong(server: true) } catch { fail("nio-server: \(error)") }
case "nio-client":
    do { try await nioPingPong(server: false) } catch { fail("nio-client: \(error)") }
case "flow-serve":
    do { try await flowServe() } catch { fail("flow-serve: \(error)") }
case "flow-drive":
    do { try await flowDrive() } catch { fail("flow-drive: \(error)") }
default:
    fail("usage: NodeBenchmarks serve|drive|sizes|rawtcp-server|rawtcp-client|nio-server|nio-client|flow-serve|flow-drive ..."
        + " (see the top of main.swift)")
}
exit(0)
