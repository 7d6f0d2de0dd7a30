import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPTestSupport
import NIOCore
import Synchronization
import Testing

/// A bulk transfer on a data connection beside a quiet node link: the link is probed and answered
/// as usual and never taken for dead, even with a short liveness timeout.
@Suite("DataConn: bulk transfers beside the liveness check")
struct DataConnLivenessTests {
    @Test(.timeLimit(.minutes(2)))
    func bulkBesideAQuietLink() async throws {
        func configuration(_ name: String, seeds: [String] = []) -> NodeConfiguration {
            var configuration = NodeConfiguration(
                nodeID: "\(name)-\(UInt32.random(in: 0...UInt32.max))", binds: ["127.0.0.1:0"], seeds: seeds,
                secret: DataConnTests.secret)
            configuration.livenessTimeout = .milliseconds(600)
            return configuration
        }
        let seed = try await Node.start(configuration("dc-live-seed"))
        let client = try await Node.start(configuration("dc-live-client", seeds: seed.listenerAddresses))
        let downs = Mutex<[String]>([])
        let watchers = [seed, client].map { node in
            node.monitorNodes { id, up, reason in if !up { downs.withLock { $0.append("\(id) \(reason)") } } }
        }
        let received = Mutex(0)
        let target = Mutex(Int.max)
        let finished = Inbox<Int>()
        seed.registerDataConnFunction("dc::sink") { _, _, handle in
            handle.onError { _, _ in }
            func next() {
                // The writer sends whole MiB blocks, so 64 KiB pieces add up exactly.
                handle.pushRead(.chunk(64 << 10)) { _, chunk in
                    let count = received.withLock { value -> Int in
                        value += chunk.readableBytes
                        return value
                    }
                    if count >= target.withLock({ $0 }) { finished.put(count) } else { next() }
                }
            }
            next()
        }
        let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dc::sink")
        // Bulk for 3 s, five liveness timeouts.
        let started = ContinuousClock.now
        let block = ByteBuffer(repeating: 0xA5, count: 1 << 20)
        var total = 0
        while ContinuousClock.now - started < .seconds(3) {
            try await handle.write(block)
            total += block.readableBytes
        }
        target.withLock { $0 = total }
        if received.withLock({ $0 }) >= total { finished.put(total) }
        #expect(try await finished.next(within: .seconds(30)) >= total)
        let elapsed = ContinuousClock.now - started
        // Quiet links stay up for a while longer too.
        try await Task.sleep(for: .seconds(1))
        #expect(downs.withLock { $0 }.isEmpty, "\(downs.withLock { $0 }) during \(elapsed) of bulk")
        print("dataconn beside liveness: \(total >> 20) MiB in \(elapsed), no node-down")
        #expect(await client.state(of: seed.nodeID) == .up)
        _ = watchers
        handle.destroy()
        await client.shutdown()
        await seed.shutdown()
    }
}
