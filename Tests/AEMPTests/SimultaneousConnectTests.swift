import AEMP
import AEMPCodecs
import AEMPTestSupport
import NIOCore
import NIOPosix
import Testing

/// Two nodes that start talking to each other at the same moment dial each other at once. Both
/// sides must keep the same one of the two connections (the one dialled by the node with the smaller
/// ID), so that neither closes the connection the other kept: no node-down, no lost message.
@Suite("Node: simultaneous connect")
struct SimultaneousConnectTests {
    @Test(.timeLimit(.minutes(1)))
    func bothSidesKeepTheSameConnection() async throws {
        let groups = (0..<2).map { _ in MultiThreadedEventLoopGroup(numberOfThreads: 1) }
        let seed = try await Node.start(NodeNetworkTests.configuration("simul-seed-\(UInt32.random(in: 0...UInt32.max))"))
        var downs = 0
        for round in 0..<10 {
            let a = try await Node.start(
                NodeNetworkTests.configuration("simul-a\(round)-\(UInt32.random(in: 0...UInt32.max))", seeds: seed.listenerAddresses),
                group: groups[0])
            let b = try await Node.start(
                NodeNetworkTests.configuration("simul-b\(round)-\(UInt32.random(in: 0...UInt32.max))", seeds: seed.listenerAddresses),
                group: groups[1])
            let events = LivenessTests.NodeEvents()
            let watchers = [LivenessTests.watch(a, into: events), LivenessTests.watch(b, into: events)]
            let atA = Inbox<[Value]>()
            let atB = Inbox<[Value]>()
            let portA = a.port { _, message in atA.put(message) }
            let portB = b.port { _, message in atB.put(message) }
            // Both know each other's address (the seed's database), then both send at once.
            for node in [a, b] {
                try await NodeNetworkTests.waitUntil { (try? await node.dbKeys("'l", timeout: .seconds(1)).count) ?? 0 >= 3 }
            }
            a.eventLoop.execute { a.send(portB, "from a") }
            b.eventLoop.execute { b.send(portA, "from b") }
            #expect(try await atB.next() == ["from a"])
            #expect(try await atA.next() == ["from b"])
            try await Task.sleep(for: .milliseconds(200))
            downs += events.all.filter { !$0.up && ($0.node == a.nodeID || $0.node == b.nodeID) }.count
            _ = watchers
            await a.shutdown()
            await b.shutdown()
        }
        #expect(downs == 0, "\(downs) node-down events between the pair")
        await seed.shutdown()
        for group in groups { try? await group.shutdownGracefully() }
    }
}
