import AEMP
import AEMPCodecs
import AEMPTestSupport
import Testing

/// A node that goes away and comes back with the same node ID (a crash and restart, a deploy): its
/// peers see it down, then up; the ports of the old incarnation stay dead; the new one's ports have
/// new names.
@Suite("Node: restart with the same node ID")
struct RestartTests {
    @Test(.timeLimit(.minutes(1)))
    func restartWithTheSameNodeID() async throws {
        let secret = NodeNetworkTests.secret
        let seed = try await Node.start(NodeNetworkTests.configuration("restart-seed-\(UInt32.random(in: 0...UInt32.max))"))
        let name = "restarted-\(UInt32.random(in: 0...UInt32.max))"
        let probe = try await Node.start(NodeConfiguration(nodeID: "probe", binds: ["127.0.0.1:0"], secret: secret))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()  // a free port for both incarnations
        func incarnation() async throws -> Node {
            try await Node.start(NodeConfiguration(nodeID: name, binds: [address], seeds: seed.listenerAddresses, secret: secret))
        }
        let events = LivenessTests.NodeEvents()
        let watcher = LivenessTests.watch(seed, into: events)

        let first = try await incarnation()
        let oldPort = first.port { _, _ in }
        try await NodeNetworkTests.waitUntil { await seed.state(of: first.nodeID) == .up }
        let oldReasons = Inbox<KillReason>()
        let oldMonitor = seed.monitor(oldPort) { oldReasons.put($0) }
        try await Task.sleep(for: .milliseconds(100))  // the mon1 reaches the first incarnation

        await first.shutdown()
        let lost = try await oldReasons.next()
        #expect(lost.values.first == .text(KillReason.transportErrorTag))
        #expect(lost.values.dropFirst().first == .text(name))
        try await NodeNetworkTests.waitUntil { !events.downs(of: first.nodeID).isEmpty }

        let second = try await incarnation()
        #expect(second.nodeID == first.nodeID)
        try await NodeNetworkTests.waitUntil { await seed.state(of: second.nodeID) == .up }
        let ups = events.all.filter { $0.node == second.nodeID }.map(\.up)
        #expect(ups == [true, false, true] || ups == [false, true], "\(ups)")

        // The old incarnation's port stays dead: a new monitor hears no_such_port, and a message
        // to it goes nowhere (the new incarnation has no such port and is not disturbed).
        let again = Inbox<KillReason>()
        let monitor = seed.monitor(oldPort) { again.put($0) }
        let reason = try await again.next()
        #expect(reason.values.first == .text(KillReason.noSuchPortTag), "\(reason)")
        seed.send(oldPort, "lost")
        let newPort = second.port { _, _ in }
        #expect(newPort.name != oldPort.name)
        let inbox = Inbox<[Value]>()
        let live = second.port { _, message in inbox.put(message) }
        seed.send(live, "to the new incarnation")
        #expect(try await inbox.next() == ["to the new incarnation"])
        _ = (watcher, oldMonitor, monitor)
        await second.shutdown()
        await seed.shutdown()
    }
}
