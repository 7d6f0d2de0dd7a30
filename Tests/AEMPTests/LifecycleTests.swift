import AEMP
import AEMPCodecs
import AEMPTestSupport
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

@testable import AEMP

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener that never accepts: connections complete in the kernel's backlog and then hear
/// nothing.
struct SilentListenerError: Error {}

final class SilentListener {
    let descriptor: Int32
    let address: String

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else { throw SilentListenerError() }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.address = "127.0.0.1:\(UInt16(bigEndian: address.sin_port))"
    }

    func close() {
        _ = Glibc.close(descriptor)
    }
}

/// Graceful shutdown, the node as a swift-service-lifecycle `Service`, and ``NodeStatistics``.
/// Real nodes on loopback; the real-process versions (SIGTERM, a Prometheus scrape) are in
/// aempCLITests/OperationsTests.swift.
@Suite("Lifecycle: graceful shutdown, Service, statistics")
struct LifecycleTests {
    static func pair(_ name: String) async throws -> (stopping: Node, peer: Node) {
        let suffix = UInt32.random(in: 0...UInt32.max)
        let stopping = try await Node.start(NodeNetworkTests.configuration("\(name)-stopping-\(suffix)"))
        let peer = try await Node.start(NodeNetworkTests.configuration("\(name)-peer-\(suffix)", seeds: stopping.listenerAddresses))
        try await NodeNetworkTests.waitUntil {
            let seen = await stopping.state(of: peer.nodeID)
            let seenBack = await peer.state(of: stopping.nodeID)
            return seen == .up && seenBack == .up
        }
        return (stopping, peer)
    }

    /// Watches `node`'s node events.
    static func downs(_ node: Node) -> (MonitorGuard, Inbox<(NodeID, KillReason)>) {
        let inbox = Inbox<(NodeID, KillReason)>()
        let watcher = node.monitorNodes { id, up, reason in if !up { inbox.put((id, reason)) } }
        return (watcher, inbox)
    }

    @Test("graceful shutdown: queued messages arrive, remote monitors get the shutdown reason, the peer sees a clean down", .timeLimit(.minutes(1)))
    func gracefulShutdown() async throws {
        let (stopping, peer) = try await Self.pair("graceful")
        let received = Atomic<Int>(0)
        let sink = peer.port { _, _ in received.add(1, ordering: .relaxed) }
        let watched = stopping.port { _, _ in }
        let localReasons = Inbox<KillReason>()
        let local = stopping.monitor(watched) { localReasons.put($0) }
        let remoteReasons = Inbox<KillReason>()
        let remote = peer.monitor(watched) { remoteReasons.put($0) }
        let (watcher, downs) = Self.downs(peer)
        // The peer's mon1 has reached the stopping node once a round trip through it came back.
        _ = try await peer.call(PortID("\(stopping.nodeID.rawValue)#")!, ["time"], timeout: .seconds(5))

        // 20 000 messages of 1 KiB, then at once the shutdown: they are queued when it begins.
        let payload = Value.text(String(repeating: "x", count: 1024))
        for index in 0..<20_000 { stopping.send(sink, [.int(Int64(index)), payload]) }
        let summary = await stopping.shutdown(gracePeriod: .seconds(20), reason: "maintenance")

        #expect(summary.completed, "\(summary)")
        #expect(summary.portsKilled == 1 && summary.connectionsClosed == 1, "\(summary)")
        #expect(summary.description.contains("nothing dropped"))
        try await NodeNetworkTests.waitUntil { received.load(ordering: .relaxed) == 20_000 }
        let expected = KillReason.shutdown(node: stopping.nodeID, message: "maintenance")
        #expect(try await localReasons.next(within: .seconds(5)) == expected)
        #expect(try await remoteReasons.next(within: .seconds(5)) == expected)
        let (down, reason) = try await downs.next(within: .seconds(5))
        #expect(down == stopping.nodeID)
        #expect(reason == .transportError(node: stopping.nodeID, message: "maintenance"))
        // Afterwards the node is down for good: calls are ignored, a second shutdown returns at once.
        let again = await stopping.shutdown(gracePeriod: .seconds(5))
        #expect(again.portsKilled == 0)
        _ = (local, remote, watcher)
        await peer.shutdown()
    }

    @Test("graceful shutdown: a peer that reads nothing costs the grace period, then the rest is dropped and counted", .timeLimit(.minutes(1)))
    func gracePeriodEnds() async throws {
        let node = try await Node.start(NodeNetworkTests.configuration("grace-\(UInt32.random(in: 0...UInt32.max))"))
        let peerID = NodeID("stuck-\(UInt32.random(in: 0...UInt32.max))")!
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        try await peer.handshake(as: peerID, secret: NodeNetworkTests.secret)
        try await NodeNetworkTests.waitUntil { await node.state(of: peerID) == .up }
        // 64 MiB for a peer that does not read: far more than the socket buffers hold.
        let chunk = Value.bytes(ByteBuffer(repeating: 0x61, count: 1 << 20))
        for _ in 0..<64 { node.send(PortID("\(peerID.rawValue)#sink")!, [chunk]) }
        let started = ContinuousClock.now
        let summary = await node.shutdown(gracePeriod: .milliseconds(300))
        let took = ContinuousClock.now - started
        #expect(!summary.completed)
        #expect(summary.bytesDropped > 0, "\(summary)")
        #expect(summary.description.contains("dropped \(summary.bytesDropped) unsent bytes"))
        #expect(took >= .milliseconds(300) && took < .seconds(3), "\(took)")
        peer.close()
    }

    @Test("graceful shutdown: messages for a node that never connects are dropped and counted", .timeLimit(.minutes(1)))
    func unconnectedMessagesAreCounted() async throws {
        // The only seed accepts TCP connections (the kernel's backlog) but never says a word, so
        // there is no master to look the ghost node up: its messages wait.
        let silent = try SilentListener()
        defer { silent.close() }
        let configuration = NodeNetworkTests.configuration(
            "unconnected-\(UInt32.random(in: 0...UInt32.max))", seeds: [silent.address], connectInterval: .seconds(30))
        let node = try await Node.start(configuration)
        let ghost = NodeID("ghost-\(UInt32.random(in: 0...UInt32.max))")!
        for index in 0..<5 { node.send(PortID("\(ghost.rawValue)#p")!, [.int(Int64(index))]) }
        let summary = await node.shutdown(gracePeriod: .milliseconds(200))
        #expect(summary.messagesDropped == 5, "\(summary)")
    }

    @Test("as a Service: graceful shutdown of the group shuts the node down gracefully; run() returns", .timeLimit(.minutes(1)))
    func serviceGracefulShutdown() async throws {
        let (stopping, peer) = try await Self.pair("service")
        let watched = stopping.port { _, _ in }
        let reasons = Inbox<KillReason>()
        let monitor = peer.monitor(watched) { reasons.put($0) }
        _ = try await peer.call(PortID("\(stopping.nodeID.rawValue)#")!, ["time"], timeout: .seconds(5))
        let group = ServiceGroup(services: [stopping], logger: .init(label: "test"))
        let run = Task { try await group.run() }
        try await Task.sleep(for: .milliseconds(50))
        await group.triggerGracefulShutdown()
        try await run.value
        #expect(try await reasons.next(within: .seconds(5)) == .shutdown(node: stopping.nodeID))
        let after = await stopping.state(of: peer.nodeID)
        #expect(after != .up)
        _ = monitor
        await peer.shutdown()
    }

    @Test("as a Service: run() returns when the node is shut down directly, and on cancellation", .timeLimit(.minutes(1)))
    func serviceEnds() async throws {
        let node = try await Node.start(NodeNetworkTests.configuration("service-direct-\(UInt32.random(in: 0...UInt32.max))"))
        let run = Task { try await node.run() }
        try await Task.sleep(for: .milliseconds(20))
        await node.shutdown()
        try await run.value

        let other = try await Node.start(NodeNetworkTests.configuration("service-cancel-\(UInt32.random(in: 0...UInt32.max))"))
        let cancelled = Task { try await other.run() }
        try await Task.sleep(for: .milliseconds(20))
        cancelled.cancel()
        try await cancelled.value
        // Cancelled means shut down: a port made now is dead at once.
        let port = other.port { _, _ in }
        let reasons = Inbox<KillReason>()
        let monitor = other.monitor(port) { reasons.put($0) }
        _ = monitor
        #expect(await other.statistics().ports == 0)
    }

    @Test("statistics: messages and bytes per peer, connections, ports, monitors, handshake failures by reason", .timeLimit(.minutes(1)))
    func statistics() async throws {
        let (node, peer) = try await Self.pair("statistics")
        let received = Atomic<Int>(0)
        let sink = peer.port { _, _ in received.add(1, ordering: .relaxed) }
        for index in 0..<100 { node.send(sink, [.int(Int64(index)), "some text"]) }
        try await NodeNetworkTests.waitUntil { received.load(ordering: .relaxed) == 100 }
        let watched = node.port { _, _ in }
        let monitor = node.monitor(watched) { _ in }

        let stats = await node.statistics()
        let traffic = try #require(stats.peers[peer.nodeID]).traffic
        #expect(traffic.messagesSent >= 100)
        #expect(traffic.bytesSent > 100 * 10 && traffic.bytesReceived > 0)
        #expect(stats.connectionsUp == 1)
        #expect(stats.ports == 1 && stats.monitors >= 1)
        let peerSide = try #require(await peer.statistics().peers[node.nodeID]).traffic
        #expect(peerSide.messagesReceived >= 100)

        // A node with the wrong secret: the failure is counted under `auth`.
        let intruder = try await Node.start(
            NodeNetworkTests.configuration(
                "statistics-intruder-\(UInt32.random(in: 0...UInt32.max))", seeds: node.listenerAddresses, secret: "wrong"))
        try await NodeNetworkTests.waitUntil { (await node.statistics().handshakeFailures["auth"] ?? 0) >= 1 }
        #expect((await intruder.statistics().connectionAttempts) >= 1)
        _ = monitor
        await NodeNetworkTests.shutdown(intruder, peer, node)
    }

    @Test("handshake failure categories stay within a small set", arguments: [
        ("authentication failure/shared secret mismatch", "auth"),
        ("TLS handshake failed: peer sent alert unknown CA (error:10000418)", "tls"),
        ("handshake timeout", "timeout"),
        ("Connection refused", "refused"),
        ("Unexpected end-of-file", "closed"),
        ("unparsable greeting", "protocol"),
        ("already connected", "duplicate"),
        ("something else entirely", "other"),
    ])
    func failureCategories(message: String, category: String) {
        #expect(NodeStatistics.failureCategory(message) == category)
    }
}

@Suite("Lifecycle: anonymous clients are forgotten")
struct AnonymousRetirementTests {
    @Test("a node serving 30 short-lived anonymous clients keeps no entry for them; their traffic stays counted", .timeLimit(.minutes(1)))
    func anonymousClientsAreForgotten() async throws {
        let server = try await Node.start(NodeNetworkTests.configuration("retire-server-\(UInt32.random(in: 0...UInt32.max))"))
        let watched = server.port { _, _ in }
        for _ in 0..<30 {
            let client = try await Node.start(
                NodeConfiguration(binds: [], seeds: server.listenerAddresses, secret: NodeNetworkTests.secret))
            #expect(client.nodeID.isAnonymous)
            // A call, and a monitor of a port on the server (its mon1 leaves a watch behind there).
            _ = try await client.call(PortID("\(server.nodeID.rawValue)#")!, ["time"], timeout: .seconds(5))
            let monitor = client.monitor(watched) { _ in }
            _ = try await client.call(PortID("\(server.nodeID.rawValue)#")!, ["time"], timeout: .seconds(5))
            await client.shutdown()
            _ = monitor
        }
        try await NodeNetworkTests.waitUntil { await server.statistics().peers.isEmpty }
        let stats = await server.statistics()
        #expect(stats.retiredAnonymousTraffic.messagesReceived >= 90, "\(stats.retiredAnonymousTraffic)")
        #expect(stats.totalTraffic.messagesReceived >= 90)
        #expect(stats.monitors == 0, "the clients' watches of the port are gone")
        await server.shutdown()
    }

    @Test("a named node that goes down is kept")
    func namedNodesStay() async throws {
        let (stopping, peer) = try await LifecycleTests.pair("retire-named")
        await stopping.shutdown()
        try await NodeNetworkTests.waitUntil { await peer.state(of: stopping.nodeID) != .up }
        #expect(await peer.statistics().peers[stopping.nodeID] != nil)
        await peer.shutdown()
    }
}
