// The cost model of issue #16: fixed workloads whose user-space instructions Benchmarks/cost-model.sh
// counts with `valgrind --tool=callgrind`, so that a change can be judged without a quiet machine.
//
//   CostModel peer    <port> <framing> [cert.pem]       the other node, run natively ("cost-peer")
//   CostModel measure <port> <framing> <workload> <count> [cert.pem]
//
// `measure` starts node "cost-measure" seeded with the peer, waits until the peer is up, runs the
// workload once with a tenth of `count` (warm-up: lazy initialisation, caches) and once with
// `count`, and exits. The script runs it under callgrind with two counts and divides the
// difference of the two instruction totals by the difference of the counts, so start-up,
// handshake, warm-up and shutdown cancel out. Workloads:
//
// - `send`: `count` one-way messages `[i, <32-byte text>]` to the peer's sink (1024 per loop tick,
//   as NodeBenchmarks sends them), then `["done", reply]`, whose answer ends the run;
// - `receive`: the peer sends `count` such messages to this node (its `cost::blast`);
// - `roundtrip`: `count` ping-pongs `[reply, seq]` → `[seq]`, each sent when the previous answer
//   arrives (both the ping's send and the pong's receive are this node's);
// - `dataconn-send`, `dataconn-receive`: `count` KiB over one DataConn to or from the peer (256 KiB
//   writes, at most 1 MiB queued; TLS when a certificate is given, as both nodes then use it);
// - `nio-roundtrip` (the reference, no node): `count` ping-pongs of the node's CBOR round trip's
//   byte counts (40 bytes there, 15 back) on plain SwiftNIO channels, with the peer's echo listener
//   on <port> + 100: the floor for anything on SwiftNIO's event loop.
//
// This executable has a synchronous main (the work runs in a detached task while the main thread
// waits): valgrind 3.19 dies in processes whose main thread ends in `dispatch_main`, which an
// `async` main does.
import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import Dispatch
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

let secret = "aemp-cost-model-secret"
let peerNodeID = "cost-peer"
/// The one-way message payload, as in NodeBenchmarks: 32 bytes of text.
let payload = Value.text("payload of thirty-two bytes 0123")
/// Messages sent per loop tick by a sender before it yields to the loop.
let sendSlice = 1024
/// DataConn write size and the most a writer keeps queued.
let chunkSize = 256 << 10
let maxQueued = 1 << 20

/// Writes one line to a file descriptor, unbuffered.
func writeLine(_ text: String, to descriptor: Int32 = 1) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(descriptor, bytes.baseAddress, bytes.count) }
}

func fail(_ message: String) -> Never {
    writeLine("CostModel: \(message)", to: 2)
    exit(2)
}

func argument(_ index: Int) -> String? {
    CommandLine.arguments.count > index ? CommandLine.arguments[index] : nil
}

func framingArgument(_ index: Int) -> Framing {
    let framing = Framing(rawValue: argument(index) ?? "cbor")
    guard framing.isSupported else { fail("unknown framing \(argument(index) ?? "") (cbor or json)") }
    return framing
}

func certificate(at index: Int) -> String? {
    guard let path = argument(index) else { return nil }
    guard let file = fopen(path, "r") else { fail("cannot open certificate \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Loop-confined counters of one workload.
final class LoopState: @unchecked Sendable {
    var count = 0
    var sent = 0
}

/// Sends `total` one-way messages to `target`, ``sendSlice`` per loop tick, then `last`.
func blast(_ node: Node, to target: PortID, total: Int, then last: [Value], state: LoopState) {
    let end = min(state.sent + sendSlice, total)
    while state.sent < end {
        node.send(target, [.int(Int64(state.sent)), payload])
        state.sent += 1
    }
    if state.sent < total {
        node.eventLoop.execute { blast(node, to: target, total: total, then: last, state: state) }
    } else {
        node.send(target, last)
    }
}

/// Writes `total` bytes to `handle` in ``chunkSize`` writes with at most ``maxQueued`` queued,
/// refilling when the handle drains. Loop only.
final class BulkWriter: @unchecked Sendable {
    private let chunk: ByteBuffer
    private var left: Int
    private var filling = false

    init(_ handle: Handle, total: Int) {
        chunk = handle.allocator.buffer(repeating: 0x78, count: chunkSize)
        left = total
    }

    func start(_ handle: Handle) {
        handle.onDrain { handle in
            if !self.filling { handle.eventLoop.execute { self.fill(handle) } }
        }
        fill(handle)
    }

    private func fill(_ handle: Handle) {
        filling = true
        while left > 0, handle.writeBufferLength < maxQueued {
            let count = min(left, chunk.readableBytes)
            handle.pushWrite(count == chunk.readableBytes ? chunk : chunk.getSlice(at: 0, length: count)!)
            left -= count
        }
        filling = false
        if left == 0 { handle.onDrain(nil) }
    }
}

/// Counts `total` bytes arriving on `handle`, then calls `done` with the count. Loop only.
func countBytes(_ handle: Handle, total: Int, done: @escaping @Sendable (Int) -> Void) {
    let state = LoopState()
    handle.onError { handle, _ in handle.destroy() }
    handle.onRead { handle in
        state.count += handle.readBuffer.readableBytes
        handle.consumeAll()
        if state.count >= total {
            handle.onRead(nil)
            done(state.count)
        }
    }
}

/// The plain SwiftNIO ping-pong of the `nio-roundtrip` reference: answers every `expected` bytes
/// with `answer` bytes; the client side starts, counts round trips and reports when done.
final class PingPongHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    static let ping = 40
    static let pong = 15

    let expected: Int
    let answer: ByteBuffer
    var pending = 0
    var left: Int?
    var done: EventLoopPromise<Void>?

    init(expected: Int, answer: Int) {
        self.expected = expected
        self.answer = ByteBuffer(repeating: 0x61, count: answer)
    }

    func channelActive(context: ChannelHandlerContext) {
        if left != nil { context.writeAndFlush(wrapOutboundOut(answer), promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += unwrapInboundIn(data).readableBytes
        while pending >= expected {
            pending -= expected
            guard let remaining = left else {
                context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
                continue
            }
            left = remaining - 1
            if remaining > 1 {
                context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
            } else {
                done?.succeed(())
                context.close(promise: nil)
            }
        }
    }
}

// MARK: peer

func peer() async throws {
    guard let port = argument(2).flatMap(Int.init) else { fail("peer needs <port>") }
    let node = try await Node.start(
        NodeConfiguration(
            nodeID: peerNodeID, binds: ["127.0.0.1:\(port)"], secret: secret, certificate: certificate(at: 4),
            framingFormats: [framingArgument(3)]))
    // cost::sink: counts messages; `["done", reply]` answers `[count]` and starts again.
    node.registerFunction("cost::sink") { context, _ in
        guard let me = context.port else { return }
        let state = LoopState()
        context.node.receive(me) { context, message in
            if message.count == 2, message[0] == "done", let reply = message[1].stringValue.flatMap(PortID.init) {
                context.node.send(reply, [.int(Int64(state.count))])
                state.count = 0
            } else {
                state.count += 1
            }
        }
    }
    // cost::echo: `[reply, seq]` → `[seq]` to reply.
    node.registerFunction("cost::echo") { context, _ in
        guard let me = context.port else { return }
        context.node.receive(me) { context, message in
            guard message.count == 2, let reply = message[0].stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, [message[1]])
        }
    }
    // cost::blast(reply, n): n one-way messages to reply, then `["done"]`.
    node.registerFunction("cost::blast") { context, arguments in
        guard let reply = arguments.first?.stringValue.flatMap(PortID.init), let total = arguments.dropFirst().first?.intValue
        else { return }
        blast(context.node, to: reply, total: total, then: ["done"], state: LoopState())
    }
    // DataConn cost::dsink(total, reply): counts bytes, answers `["done", n]`.
    node.registerDataConnFunction("cost::dsink") { context, arguments, handle in
        guard let total = arguments.first?.intValue, let reply = arguments.dropFirst().first?.stringValue.flatMap(PortID.init)
        else { return handle.destroy() }
        countBytes(handle, total: total) { count in
            context.node.send(reply, ["done", .int(Int64(count))])
            handle.destroy()
        }
    }
    // DataConn cost::dsource(total): writes total bytes.
    node.registerDataConnFunction("cost::dsource") { _, arguments, handle in
        guard let total = arguments.first?.intValue else { return handle.destroy() }
        handle.onError { handle, _ in handle.destroy() }
        BulkWriter(handle, total: total).start(handle)
    }
    _ = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
        .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(
                    PingPongHandler(expected: PingPongHandler.ping, answer: PingPongHandler.pong))
            }
        }
        .bind(host: "127.0.0.1", port: port + 100).get()
    writeLine("READY \(node.listenerAddresses.joined(separator: ","))")
    while true { try await Task.sleep(for: .seconds(3600)) }
}

// MARK: measure

struct Failure: Error, CustomStringConvertible {
    let description: String
}

/// Runs `body` on the node's loop with a promise it must complete within two minutes.
func onLoop<T: Sendable>(_ node: Node, _ what: String, _ body: @escaping @Sendable (EventLoopPromise<T>) -> Void) async throws -> T {
    let promise = node.eventLoop.makePromise(of: T.self)
    let timeout = node.eventLoop.scheduleTask(in: .seconds(120)) { promise.fail(Failure(description: "\(what): no end within 120 s")) }
    node.eventLoop.execute { body(promise) }
    defer { timeout.cancel() }
    return try await promise.futureResult.get()
}

func run(_ workload: String, count: Int, node: Node, peer: NodeID) async throws {
    switch workload {
    case "send":
        let sink = node.spawn(on: peer, function: "cost::sink")
        let counted: Int = try await onLoop(node, "send") { promise in
            let reply = node.port { _, message in promise.succeed(message.first?.intValue ?? -1) }
            blast(node, to: sink, total: count, then: ["done", .text(reply.description)], state: LoopState())
        }
        guard counted == count else { throw Failure(description: "the sink counted \(counted) of \(count)") }
        node.kill(sink)
    case "receive":
        let counted: Int = try await onLoop(node, "receive") { promise in
            let state = LoopState()
            let me = node.port { _, message in
                if message.first == "done" { promise.succeed(state.count) } else { state.count += 1 }
            }
            node.sendToFunction(on: peer, "cost::blast", [.text(me.description), .int(Int64(count))])
        }
        guard counted == count else { throw Failure(description: "received \(counted) of \(count)") }
    case "roundtrip":
        let echo = node.spawn(on: peer, function: "cost::echo")
        let _: Void = try await onLoop(node, "roundtrip") { promise in
            let state = LoopState()
            let me = node.port()
            let replyText = Value.text(me.description)
            node.receive(me) { context, _ in
                state.count += 1
                if state.count < count {
                    context.node.send(echo, [replyText, .int(Int64(state.count))])
                } else {
                    promise.succeed(())
                }
            }
            node.send(echo, [replyText, .int(0)])
        }
        node.kill(echo)
    case "dataconn-send":
        let total = count << 10
        let done = node.eventLoop.makePromise(of: Int.self)
        let reply = node.port { _, message in done.succeed(message.last?.intValue ?? -1) }
        let handle = try await node.dataConnection(
            to: peerNodeID, timeout: .seconds(20), function: "cost::dsink", arguments: [.int(Int64(total)), .text(reply.description)])
        handle.eventLoop.execute {
            handle.onError { _, error in done.fail(Failure(description: "DataConn: \(error)")) }
            BulkWriter(handle, total: total).start(handle)
        }
        let counted = try await done.futureResult.get()
        guard counted == total else { throw Failure(description: "the peer counted \(counted) of \(total) bytes") }
        handle.destroy()
    case "dataconn-receive":
        let total = count << 10
        let handle = try await node.dataConnection(
            to: peerNodeID, timeout: .seconds(20), function: "cost::dsource", arguments: [.int(Int64(total))])
        let done = handle.eventLoop.makePromise(of: Int.self)
        handle.eventLoop.execute { countBytes(handle, total: total) { done.succeed($0) } }
        let counted = try await done.futureResult.get()
        guard counted == total else { throw Failure(description: "received \(counted) of \(total) bytes") }
        handle.destroy()
    default:
        fail("unknown workload \(workload) (send, receive, roundtrip, dataconn-send, dataconn-receive)")
    }
}

/// The `nio-roundtrip` reference: count/10 + count ping-pongs on one plain SwiftNIO connection.
func nioRoundTrips(port: Int, count: Int) async throws {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    let done = loop.makePromise(of: Void.self)
    _ = try await ClientBootstrap(group: loop)
        .channelOption(.socketOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                let handler = PingPongHandler(expected: PingPongHandler.pong, answer: PingPongHandler.ping)
                handler.left = max(count / 10, 1) + count
                handler.done = done
                try channel.pipeline.syncOperations.addHandler(handler)
            }
        }
        .connect(host: "127.0.0.1", port: port + 100).get()
    try await done.futureResult.get()
}

func measure() async throws {
    guard let port = argument(2).flatMap(Int.init), let workload = argument(4), let count = argument(5).flatMap(Int.init),
        count > 0
    else { fail("measure needs <port> <framing> <workload> <count>") }
    if workload == "nio-roundtrip" {
        try await nioRoundTrips(port: port, count: count)
        writeLine("DONE workload=\(workload) count=\(count)")
        return
    }
    let node = try await Node.start(
        NodeConfiguration(
            nodeID: "cost-measure", binds: [], seeds: ["127.0.0.1:\(port)"], secret: secret,
            certificate: certificate(at: 6), framingFormats: [framingArgument(3)]))
    let peer = NodeID(peerNodeID)!
    var up = false
    for _ in 0..<2000 {
        up = await node.state(of: peer) == .up
        if up { break }
        try await Task.sleep(for: .milliseconds(10))
    }
    guard up else { throw Failure(description: "the peer did not come up within 20 s") }
    try await run(workload, count: max(count / 10, 1), node: node, peer: peer)
    try await run(workload, count: count, node: node, peer: peer)
    writeLine("DONE workload=\(workload) count=\(count)")
    await node.shutdown()
}

// A synchronous main: the work runs in a detached task (not on the main actor, which this thread
// holds while it waits).
let finished = DispatchSemaphore(value: 0)
nonisolated(unsafe) var failure: String?
Task.detached {
    do {
        switch argument(1) {
        case "peer": try await peer()
        case "measure": try await measure()
        default: fail("usage: CostModel peer <port> <framing> [cert] | measure <port> <framing> <workload> <count> [cert]")
        }
    } catch {
        failure = "\(error)"
    }
    finished.signal()
}
finished.wait()
if let failure { fail(failure) }
