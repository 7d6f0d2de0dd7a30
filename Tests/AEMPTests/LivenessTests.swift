import AEMP
import AEMPCodecs
import AEMPTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import AEMP

/// The liveness check of node connections (``NodeConfiguration/livenessTimeout``): the probe a Perl
/// node answers, silence declared as a lost connection, and no false alarms on busy links.
@Suite("Node: liveness of connections", .serialized)
struct LivenessTests {
    static let secret = "liveness-test-secret"

    static func configuration(_ name: String, liveness: Duration, seeds: [String] = []) -> NodeConfiguration {
        var configuration = NodeConfiguration(
            nodeID: "\(name)-\(UInt32.random(in: 0...UInt32.max))", binds: ["127.0.0.1:0"], seeds: seeds, secret: secret)
        configuration.livenessTimeout = liveness
        return configuration
    }

    /// Two nodes, each on a loop of its own (so one can be blocked), connected through the seed.
    static func pair(liveness: Duration) async throws -> (a: Node, b: Node, groups: [MultiThreadedEventLoopGroup]) {
        let groups = [MultiThreadedEventLoopGroup(numberOfThreads: 1), MultiThreadedEventLoopGroup(numberOfThreads: 1)]
        let a = try await Node.start(configuration("live-a", liveness: liveness), group: groups[0])
        let b = try await Node.start(
            configuration("live-b", liveness: liveness, seeds: a.listenerAddresses), group: groups[1])
        try await NodeNetworkTests.waitUntil {
            let aSees = await a.state(of: b.nodeID)
            let bSees = await b.state(of: a.nodeID)
            return aSees == .up && bSees == .up
        }
        return (a, b, groups)
    }

    static func stop(_ nodes: [Node], _ groups: [MultiThreadedEventLoopGroup]) async {
        for node in nodes { await node.shutdown() }
        for group in groups { try? await group.shutdownGracefully() }
    }

    /// Node up/down events of one node, with the time they arrived.
    final class NodeEvents: Sendable {
        struct Event: Sendable {
            var node: NodeID
            var up: Bool
            var reason: KillReason
            var at: ContinuousClock.Instant
        }
        private let storage = Mutex<[Event]>([])
        func put(_ event: Event) { storage.withLock { $0.append(event) } }
        var all: [Event] { storage.withLock { $0 } }
        func downs(of node: NodeID) -> [Event] { all.filter { $0.node == node && !$0.up } }
    }

    static func watch(_ node: Node, into events: NodeEvents) -> MonitorGuard {
        node.monitorNodes { id, up, reason in events.put(.init(node: id, up: up, reason: reason, at: .now)) }
    }

    // MARK: Settings

    @Test("liveness_timeout: default 10 s, 0 disables, bad values refused")
    func setting() throws {
        #expect(NodeConfiguration().livenessTimeout == .seconds(10))
        #expect(try NodeConfiguration(perlArguments: [("liveness_timeout", "3")]).livenessTimeout == .seconds(3))
        #expect(try NodeConfiguration(perlArguments: [("liveness_timeout", 2.5)]).livenessTimeout == .milliseconds(2500))
        #expect(try NodeConfiguration(perlArguments: [("liveness_timeout", 0)]).livenessTimeout == .zero)
        for bad: Value in ["-1", "soon", .array([])] {
            #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(perlArguments: [("liveness_timeout", bad)]) }
        }
        #expect(NodeConfiguration.perlKeys.contains("liveness_timeout"))
        var node = NodeConfiguration()
        node.livenessTimeout = .seconds(4)
        #expect(HandshakeConfiguration(node: node, nodeID: NodeID("n")!).livenessTimeout == .seconds(4))
    }

    @Test("the reason names the silence", arguments: [
        (Duration.seconds(10), "no data for 10 s"), (.milliseconds(2500), "no data for 2.5 s"),
        (.milliseconds(900), "no data for 0.9 s"), (.seconds(120), "no data for 120 s"),
    ])
    func silenceMessage(timeout: Duration, text: String) {
        #expect(TransportConnection.silenceMessage(timeout) == text)
    }

    // MARK: Against a Perl-shaped peer

    /// The probe is a kernel `snd` relay back to the prober's node port with the empty tag; a peer
    /// that answers it the way Perl's kernel does (`["",""]` to that node port) stays up as long as
    /// it answers, and is declared dead one timeout after it stops.
    @Test(
        "a peer answering the probe as Perl does stays up; silence ends the connection", .timeLimit(.minutes(1)),
        arguments: [Framing.cbor, .json])
    func perlShapedPeer(framing: Framing) async throws {
        let liveness = Duration.milliseconds(900)
        let node = try await Node.start(Self.configuration("prober", liveness: liveness))
        let peerID = NodeID("perl-peer-\(UInt32.random(in: 0...UInt32.max))")!
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        try await peer.handshake(as: peerID, secret: Self.secret, framings: [framing])
        try await NodeNetworkTests.waitUntil { await node.state(of: peerID) == .up }
        let events = NodeEvents()
        let watcher = Self.watch(node, into: events)
        let reasons = Inbox<KillReason>()
        let monitor = node.monitor(PortID("\(peerID.rawValue)#")!) { reasons.put($0) }

        let probe: [Value] = ["", "snd", .text("\(node.nodeID.rawValue)#"), ""]
        var lastAnswer = ContinuousClock.now
        for _ in 0..<6 {  // about 2 s of answered probes: 2.2 timeouts
            let message = try await peer.receive(framing: framing, until: { $0 == probe })
            #expect(message == probe)
            try await peer.send(["", ""], framing: framing)  // what Perl's kernel sends for `snd "<node>#", ""`
            lastAnswer = .now
        }
        #expect(await node.state(of: peerID) == .up)
        #expect(events.downs(of: peerID).isEmpty)

        // Now the peer says nothing more: one timeout later (plus at most a tenth) it is gone.
        #expect(await peer.closedByPeer(within: .seconds(5)))
        let reason = try await reasons.next(within: .seconds(5))
        let detected = ContinuousClock.now - lastAnswer
        #expect(reason == .transportError(node: peerID, message: "no data for 0.9 s"))
        #expect(detected >= liveness && detected < liveness + .milliseconds(600), "\(detected)")
        try await NodeNetworkTests.waitUntil { !events.downs(of: peerID).isEmpty }
        #expect(events.downs(of: peerID).first?.reason == .transportError(node: peerID, message: "no data for 0.9 s"))
        _ = (watcher, monitor)
        peer.close()
        await node.shutdown()
    }

    @Test("0 disables the check: a silent peer stays up", .timeLimit(.minutes(1)))
    func disabled() async throws {
        let node = try await Node.start(Self.configuration("unwatched", liveness: .zero))
        let peerID = NodeID("quiet-peer-\(UInt32.random(in: 0...UInt32.max))")!
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        try await peer.handshake(as: peerID, secret: Self.secret, framings: [.cbor])
        try await NodeNetworkTests.waitUntil { await node.state(of: peerID) == .up }
        try await Task.sleep(for: .milliseconds(1500))
        #expect(await node.state(of: peerID) == .up)
        // The connection still carries messages.
        let inbox = Inbox<[Value]>()
        let port = node.port { _, message in inbox.put(message) }
        try await peer.send([.text(port.name), "still here"])
        #expect(try await inbox.next(within: .seconds(5)) == ["still here"])
        peer.close()
        await node.shutdown()
    }

    // MARK: Swift nodes on both ends

    /// A node whose loop is blocked for most of the timeout answers late, but in time.
    @Test("a loop blocked for less than the timeout is not declared dead", .timeLimit(.minutes(1)))
    func shortBlockIsNoFault() async throws {
        let (a, b, groups) = try await Self.pair(liveness: .milliseconds(1500))
        let events = NodeEvents()
        let watchers = [Self.watch(a, into: events), Self.watch(b, into: events)]
        for _ in 0..<3 {
            // b's loop stops for 0.9 s (well past a probe interval of 0.5 s), three times in a row.
            _ = try await b.eventLoop.submit { usleep(900_000) }.get()
            try await Task.sleep(for: .milliseconds(300))
        }
        try await Task.sleep(for: .seconds(1))
        #expect(events.all.filter { !$0.up }.isEmpty, "\(events.all.map { "\($0.node) \($0.reason)" })")
        #expect(await a.state(of: b.nodeID) == .up)
        #expect(await b.state(of: a.nodeID) == .up)
        _ = watchers
        await Self.stop([b, a], groups)
    }

    /// A loop blocked past the timeout is a lost peer; once it runs again it sees the connection
    /// closed, cleans up, and the two reconnect through the seed.
    @Test("a loop blocked past the timeout is detected, and both recover", .timeLimit(.minutes(1)))
    func longBlockIsDetected() async throws {
        let liveness = Duration.milliseconds(800)
        let (a, b, groups) = try await Self.pair(liveness: liveness)
        let events = NodeEvents()
        let watchers = [Self.watch(a, into: events), Self.watch(b, into: events)]
        let port = a.port { _, _ in }
        let reasons = Inbox<KillReason>()
        let monitor = b.monitor(port) { reasons.put($0) }
        try await NodeNetworkTests.waitUntil { await b.state(of: a.nodeID) == .up }

        let stopped = ContinuousClock.now
        b.eventLoop.execute { usleep(2_000_000) }
        try await NodeNetworkTests.waitUntil(within: .seconds(5)) { !events.downs(of: b.nodeID).isEmpty }
        let down = try #require(events.downs(of: b.nodeID).first)
        #expect(down.reason == .transportError(node: b.nodeID, message: "no data for 0.8 s"))
        #expect(down.at - stopped < liveness + .milliseconds(700), "\(down.at - stopped)")

        // b wakes up: the closed connection is noticed, its monitor of a's port fires, and b
        // reconnects to its seed.
        let reason = try await reasons.next(within: .seconds(5))
        #expect(reason.values.first == .text(KillReason.transportErrorTag))
        try await NodeNetworkTests.waitUntil(within: .seconds(10)) {
            let aSees = await a.state(of: b.nodeID)
            let bSees = await b.state(of: a.nodeID)
            return aSees == .up && bSees == .up
        }
        // Messages flow again.
        let inbox = Inbox<[Value]>()
        let receiver = a.port { _, message in inbox.put(message) }
        b.send(receiver, "after")
        #expect(try await inbox.next(within: .seconds(5)) == ["after"])
        _ = (watchers, monitor)
        await Self.stop([b, a], groups)
    }

    /// A node whose own loop stops for longer than the timeout (a long callback, a paused VM) does
    /// not blame the peer for the time it was not running: with a peer that never probes (a Perl
    /// node, here a node with the check off) the connection survives.
    @Test("our own pause is not the peer's silence", .timeLimit(.minutes(1)))
    func ownPauseIsNoFault() async throws {
        let groups = [MultiThreadedEventLoopGroup(numberOfThreads: 1), MultiThreadedEventLoopGroup(numberOfThreads: 1)]
        let quiet = try await Node.start(Self.configuration("never-probes", liveness: .zero), group: groups[0])
        let watcher = try await Node.start(
            Self.configuration("pauses", liveness: .milliseconds(800), seeds: quiet.listenerAddresses), group: groups[1])
        try await NodeNetworkTests.waitUntil { await watcher.state(of: quiet.nodeID) == .up }
        let events = NodeEvents()
        let guards = [Self.watch(watcher, into: events), Self.watch(quiet, into: events)]
        _ = try await watcher.eventLoop.submit { usleep(2_000_000) }.get()
        try await Task.sleep(for: .seconds(2))
        #expect(events.all.filter { !$0.up }.isEmpty, "\(events.all.map { "\($0.node) \($0.reason)" })")
        #expect(await watcher.state(of: quiet.nodeID) == .up)
        _ = guards
        await Self.stop([watcher, quiet], groups)
    }

    /// The same over TLS: the probe and the silence work above the encryption.
    @Test("over TLS: a stopped peer is detected and both recover", .timeLimit(.minutes(1)))
    func overTLS() async throws {
        let certificates = try NodeCertificates.shared.get()
        let groups = [MultiThreadedEventLoopGroup(numberOfThreads: 1), MultiThreadedEventLoopGroup(numberOfThreads: 1)]
        var first = Self.configuration("tls-a", liveness: .milliseconds(800))
        first.certificate = certificates.nodeA
        let a = try await Node.start(first, group: groups[0])
        var second = Self.configuration("tls-b", liveness: .milliseconds(800), seeds: a.listenerAddresses)
        second.certificate = certificates.nodeB
        let b = try await Node.start(second, group: groups[1])
        try await NodeNetworkTests.waitUntil { await a.state(of: b.nodeID) == .up }
        let events = NodeEvents()
        let watchers = [Self.watch(a, into: events), Self.watch(b, into: events)]
        // Quiet for three timeouts: the probes keep the link up.
        try await Task.sleep(for: .milliseconds(2400))
        #expect(events.all.filter { !$0.up }.isEmpty, "\(events.all.map { "\($0.node) \($0.reason)" })")
        b.eventLoop.execute { usleep(2_000_000) }
        try await NodeNetworkTests.waitUntil(within: .seconds(5)) { !events.downs(of: b.nodeID).isEmpty }
        #expect(events.downs(of: b.nodeID).first?.reason == .transportError(node: b.nodeID, message: "no data for 0.8 s"))
        try await NodeNetworkTests.waitUntil(within: .seconds(10)) {
            let aSees = await a.state(of: b.nodeID)
            let bSees = await b.state(of: a.nodeID)
            return aSees == .up && bSees == .up
        }
        _ = watchers
        await Self.stop([b, a], groups)
    }

    /// A slow consumer: the receiving node's loop is busy with each large message for a while, so
    /// it answers no probe for a long stretch, but it keeps reading.
    @Test("large messages to a slow consumer are no fault", .timeLimit(.minutes(1)))
    func slowConsumerOfLargeMessages() async throws {
        let (a, b, groups) = try await Self.pair(liveness: .milliseconds(1000))
        let events = NodeEvents()
        let watchers = [Self.watch(a, into: events), Self.watch(b, into: events)]
        let received = Inbox<Int>()
        let port = b.port { _, message in
            usleep(250_000)  // a callback that takes its time on b's loop
            received.put(message.first?.bytesValue?.readableBytes ?? 0)
        }
        let chunk = Value.bytes(ByteBuffer(repeating: 0x5A, count: 8 << 20))
        for _ in 0..<8 { a.send(port, chunk) }  // 64 MiB, 2 s of callbacks
        let sizes = try await received.next(8, within: .seconds(20))
        #expect(sizes == Array(repeating: 8 << 20, count: 8))
        #expect(events.all.filter { !$0.up }.isEmpty, "\(events.all.map { "\($0.node) \($0.reason)" })")
        _ = watchers
        await Self.stop([b, a], groups)
    }
}
