// Flow control (issue #5): a producer node outruns a slow consumer node. With fire-and-forget `send`
// the producer's write buffer (its memory) grows with everything the consumer has not read yet; with
// `await send(to:)` it stays at the high-water mark.
//
//   NodeBenchmarks flow-serve <port> [lifetime-s]                 consumer: 20 µs of work per message
//   NodeBenchmarks flow-drive <port> <paced|unpaced> [messages]   producer: 1 KiB messages, RSS sampled
//
// Prints `RESULT impl=swift metric=flow mode=... rss_start_kib=... rss_max_kib=... rss_growth_kib=...
// queued_max_bytes=... seconds=...`.

import AEMP
import AEMPCodecs
import Foundation
import NIOCore

let flowServerID = "flow-consumer"

/// The resident set size of this process in KiB (Linux `/proc/self/statm`).
func residentKiB() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

func flowServe() async throws {
    let port = intArgument(2, default: 4041)
    let lifetime = intArgument(3, default: 600)
    let node = try await Node.start(NodeConfiguration(nodeID: flowServerID, binds: ["127.0.0.1:\(port)"], secret: secret))
    node.registerFunction("bench::slow_sink") { context, _ in
        guard let me = context.port else { return }
        let state = LoopState()
        context.node.receive(me) { context, message in
            if message.count == 2, message[0].stringValue == "done", let reply = message[1].stringValue.flatMap(PortID.init) {
                context.node.send(reply, [.int(Int64(state.count))])
                state.count = 0
                return
            }
            state.count += 1
            usleep(20)  // the consumer is slow
        }
    }
    emit("READY impl=swift node=\(node.nodeID) listen=\(node.listenerAddresses.joined(separator: ","))")
    try await Task.sleep(for: .seconds(lifetime))
    await node.shutdown()
}

func flowDrive() async throws {
    let port = intArgument(2, default: 4041)
    let paced = argument(3) != "unpaced"
    let messages = intArgument(4, default: 100_000)
    let node = try await Node.start(NodeConfiguration(
        nodeID: "flow-producer", binds: [], seeds: ["127.0.0.1:\(port)"], secret: secret, sendHighWaterMark: 1 << 20))
    let server = NodeID(flowServerID)!
    let deadline = now() + 20_000_000_000
    while await node.state(of: server) != .up {
        guard now() < deadline else { throw NodeBenchError("the consumer node did not come up within 20 s") }
        try await Task.sleep(for: .milliseconds(10))
    }
    let sink = node.spawn(on: server, function: "bench::slow_sink")
    let payload = Value.bytes(ByteBuffer(repeating: 0x61, count: 1024))
    let start = now()
    let rssStart = residentKiB()
    var rssMax = rssStart
    var queuedMax = 0
    for index in 0..<messages {
        let message: [Value] = [.int(Int64(index)), payload]
        if paced {
            await node.send(to: sink, message)
        } else {
            node.send(sink, message)
        }
        if index % 2000 == 0 {
            rssMax = max(rssMax, residentKiB())
            queuedMax = max(queuedMax, await node.queuedBytes(to: server))
        }
    }
    // Wait until the consumer has everything (its count proves delivery).
    let reply = try await node.call(sink, ["done"], timeout: .seconds(300))
    rssMax = max(rssMax, residentKiB())
    let seconds = Double(now() - start) / 1e9
    guard reply.first == .int(Int64(messages)) else { throw NodeBenchError("the consumer counted \(reply) of \(messages)") }
    emit("RESULT impl=swift metric=flow mode=\(paced ? "paced" : "unpaced") n=\(messages) rss_start_kib=\(rssStart)"
        + " rss_max_kib=\(rssMax) rss_growth_kib=\(rssMax - rssStart) queued_max_bytes=\(queuedMax)"
        + " seconds=\(String(format: "%.2f", seconds))")
    await node.shutdown()
}
