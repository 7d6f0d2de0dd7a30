import AEMP
import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Testing

/// `send(to:_:)` waits for room: a fast producer stays within the high-water mark of a slow consumer.
@Suite("Node: flow-controlled send")
struct NodeFlowControlTests {
    @Test func producerStaysUnderTheHighWaterMark() async throws {
        let mark = 64 * 1024
        let size = 16 * 1024
        let count = 400
        let seed = try await Node.start(
            NodeConfiguration(nodeID: "flow-consumer", binds: ["127.0.0.1:0"], secret: "flow"))
        let producer = try await Node.start(
            NodeConfiguration(
                nodeID: "flow-producer", binds: [], seeds: seed.listenerAddresses, secret: "flow",
                sendHighWaterMark: mark))
        let done = Inbox<String>()
        // A slow consumer: its loop blocks for every message, so TCP pushes back.
        let sink = seed.port { _, message in
            usleep(1000)
            if message.first == .int(Int64(count - 1)) { done.put(message[1].stringValue ?? "") }
        }
        let payload = Value.bytes(ByteBuffer(repeating: 0x61, count: size))

        // Fire and forget: the queue grows far beyond the mark (the pressure is real).
        for index in 0..<count { producer.send(sink, [.int(Int64(index)), "unpaced", payload]) }
        var unpaced = 0
        for _ in 0..<50 {
            unpaced = max(unpaced, await producer.queuedBytes(to: seed.nodeID))
            if unpaced > 4 * mark { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(unpaced > 4 * mark)
        #expect(try await done.next(within: .seconds(30)) == "unpaced")

        // Flow-controlled: never more than the mark (plus the message that crossed it) waits.
        var worst = 0
        for index in 0..<count {
            await producer.send(to: sink, [.int(Int64(index)), "paced", payload])
            worst = max(worst, await producer.queuedBytes(to: seed.nodeID))
        }
        #expect(worst <= mark + size + 64)
        #expect(try await done.next(within: .seconds(30)) == "paced")
        await producer.shutdown()
        await seed.shutdown()
    }
}
