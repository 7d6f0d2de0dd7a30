import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPTestSupport
import NIOCore
import Testing

/// The requirements of issue #6 beyond the basic exchange: security modes, who listens, refusal,
/// rendezvous timeouts on either side, quiescent handles, and message flow beside a bulk transfer.
@Suite("DataConn: security, rendezvous cases and errors")
struct DataConnScenarioTests {
    static let secret = DataConnTests.secret

    static func node(_ name: String, binds: [String], seeds: [String] = [], certificate: String? = nil) async throws -> Node {
        try await Node.start(
            NodeConfiguration(
                nodeID: "\(name)-\(UInt32.random(in: 0...UInt32.max))", binds: binds, seeds: seeds, secret: secret,
                certificate: certificate))
    }

    /// A listening seed and a client without listeners, connected.
    static func pair(certificates: NodeCertificates.Set? = nil) async throws -> (seed: Node, client: Node) {
        let seed = try await node("dc-seed", binds: ["127.0.0.1:0"], certificate: certificates?.nodeA)
        let client = try await node(
            "dc-client", binds: [], seeds: seed.listenerAddresses, certificate: certificates?.nodeB)
        try await waitUp(client, seed.nodeID)
        return (seed, client)
    }

    static func waitUp(_ node: Node, _ other: NodeID) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while await node.state(of: other) != .up {
            if ContinuousClock.now > deadline { throw InboxTimeout(timeout: .seconds(10)) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// A node that is its own seed (hence global), listening on a fresh loopback port.
    static func globalNode(_ name: String, exactName: Bool = false) async throws -> Node {
        let probe = try await Node.start(NodeConfiguration(nodeID: "\(name)-probe", binds: ["127.0.0.1:0"], secret: secret))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()
        return try await Node.start(
            NodeConfiguration(
                nodeID: exactName ? name : "\(name)-\(UInt32.random(in: 0...UInt32.max))", binds: [address],
                seeds: [address], secret: exactName ? CapturedConnection.secret : secret))
    }

    static func localPort(_ handle: Handle) async throws -> Int? {
        try await handle.eventLoop.submit { handle.channel?.localAddress?.port }.get()
    }

    /// TLS and HMAC-only, with the target listening (the initiator dials) and with only the
    /// initiator listening (the target dials back after `_connect`).
    @Test(arguments: [false, true], [true, false])
    func securityModesAndWhoListens(tls: Bool, targetListens: Bool) async throws {
        let certificates = tls ? try NodeCertificates.shared.get() : nil
        let (seed, client) = try await Self.pair(certificates: certificates)
        let (initiator, target) = targetListens ? (client, seed) : (seed, client)
        let remoteHandles = Inbox<Handle>()
        let remoteTLS = Inbox<Bool>()
        target.registerDataConnFunction("dc::echo") { _, _, handle in
            remoteTLS.put(handle.isTLS)
            remoteHandles.put(handle)
            handle.onError { _, _ in }
            func next() {
                handle.pushRead(.line()) { _, line in
                    handle.pushWrite("echo: \(line.string)\n")
                    next()
                }
            }
            next()
        }
        let handle = try await initiator.dataConnection(
            to: target.nodeID.rawValue, timeout: .seconds(5), function: "dc::echo")
        let remote = try await remoteHandles.next()
        #expect(try await remoteTLS.next() == tls)
        #expect(try await handle.eventLoop.submit { handle.isTLS }.get() == tls)
        try await handle.write("secret payload\n")
        #expect(try await handle.read(.line()).string == "echo: secret payload")
        // The accepting side's socket is its listener's: proves who dialled.
        let seedPort = seed.listenerAddresses.first.flatMap { $0.split(separator: ":").last }.flatMap { Int($0) }
        #expect(try await Self.localPort(targetListens ? remote : handle) == seedPort)
        handle.destroy()
        remote.destroy()
        await client.shutdown()
        await seed.shutdown()
    }

    /// A target whose listener does not speak `aemp-dataconn` fails the handshake: the calling port
    /// dies with `("AnyEvent::MP::DataConn", <handshake error>)` long before the timeout.
    @Test func targetRefusingTheHandshakeKillsTheCallingPort() async throws {
        // The seed never loaded DataConn, so its listener refuses `aemp-dataconn` greetings.
        let (seed, client) = try await Self.pair()
        let reasons = Inbox<KillReason>()
        let caller = client.port { _, _ in }
        let monitor = client.monitor(caller) { reasons.put($0) }
        client.connectData(to: seed.nodeID.rawValue, timeout: .seconds(30), function: "dc::echo", port: caller) { _ in
            reasons.put(.user(["unexpected success"]))
        }
        let reason = try await reasons.next(within: .seconds(15))
        #expect(reason.tag == KillReason.dataConnTag)
        #expect(reason.values.count == 2)
        let message = try #require(reason.string(at: 1))
        #expect(!message.isEmpty)
        #expect(!message.contains("unable to establish connection"))
        _ = monitor
        await client.shutdown()
        await seed.shutdown()
    }

    /// Spec §9.3, target side: `_expect` arrived but no connection came within its timeout, so the
    /// target kills the caller's port remotely with `("AnyEvent::MP::DataConn", undef)`.
    @Test func targetTimeoutKillsTheCallerRemotelyWithNull() async throws {
        let target = try await Self.globalNode("dc-target")
        let ran = Inbox<String>()
        target.registerDataConnFunction("dc::echo") { _, _, handle in
            ran.put("receiver ran")
            handle.destroy()
        }
        let peer = try await ScriptedPeer.connect(to: target.listenerAddresses[0])
        try await peer.handshake(as: NodeID("dc-ghost")!, secret: Self.secret, framings: [.cbor])
        try await peer.send([
            "", "AnyEvent::MP::DataConn::_expect", "b@dc-ghost", "dc-ghost#Pcaller", .float(0.3), "dc::echo", "x",
        ])
        let kill = try await peer.receive { $0.count > 1 && $0[1] == "kil1" }
        #expect(kill == ["", "kil1", "Pcaller", "AnyEvent::MP::DataConn", .null])
        #expect(ran.snapshot.isEmpty)
        peer.close()
        await target.shutdown()
    }

    /// Spec §9.3, initiator side: the target (without listeners) is asked to dial back and never
    /// does; the calling port dies with Perl's timeout text, and the target saw the captured shapes.
    @Test func initiatorTimeoutWhenTheTargetNeverConnects() async throws {
        let initiator = try await Self.globalNode("dc-initiator")
        let peer = try await ScriptedPeer.connect(to: initiator.listenerAddresses[0])
        let silent = NodeID("dc-silent")!
        try await peer.handshake(as: silent, secret: Self.secret, framings: [.cbor])
        try await Self.waitUp(initiator, silent)
        let reasons = Inbox<KillReason>()
        let caller = initiator.port { _, _ in }
        let monitor = initiator.monitor(caller) { reasons.put($0) }
        initiator.connectData(
            to: "dc-silent#someport", timeout: .milliseconds(500), function: "x::receiver", arguments: ["arg", 7],
            port: caller
        ) { _ in reasons.put(.user(["unexpected success"])) }

        let expect = try await peer.receive { $0.count > 1 && $0[1] == "AnyEvent::MP::DataConn::_expect" }
        let id = try #require(expect[2].stringValue)
        #expect(id.hasSuffix("@\(initiator.nodeID.rawValue)"))
        #expect(Array(expect[3...]) == [.text(caller.description), .float(0.5), "x::receiver", "arg", 7])
        let snd = try await peer.receive { $0.count > 1 && $0[1] == "snd" }
        let relay = try #require(snd.last?.stringValue.flatMap(PortID.init))
        try await peer.send([.text(relay.name)])
        let connect = try await peer.receive { $0.count > 1 && $0[1] == "AnyEvent::MP::DataConn::_connect" }
        #expect(connect == ["", "AnyEvent::MP::DataConn::_connect", .text(id), .text(initiator.nodeID.rawValue)])

        let reason = try await reasons.next()
        #expect(reason.values == ["AnyEvent::MP::DataConn", "dc-silent: unable to establish connection within 0.5 seconds"])
        _ = monitor
        peer.close()
        await initiator.shutdown()
    }

    /// Both handles are quiescent: bytes written by either side before the other sets its handle up
    /// wait for it and are not lost.
    @Test func handlesAreQuiescentAndKeepEarlyBytes() async throws {
        let (seed, client) = try await Self.pair()
        let remoteHandles = Inbox<Handle>()
        seed.registerDataConnFunction("dc::idle") { _, _, handle in
            // Written at once; the initiator reads it only later.
            handle.pushWrite("from target\n")
            // No callbacks, no reads: the test sets the handle up later.
            remoteHandles.put(handle)
        }
        let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dc::idle")
        let remote = try await remoteHandles.next()
        try await handle.write("early line\n")
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await remote.eventLoop.submit { remote.isDestroyed }.get() == false)
        #expect(try await remote.read(.line()).string == "early line")
        #expect(try await handle.read(.line()).string == "from target")
        handle.destroy()
        remote.destroy()
        await client.shutdown()
        await seed.shutdown()
    }

    /// While a DataConn moves bulk data between two nodes, node messages between the same nodes
    /// keep being delivered, all of them and in order (the benchmark measures their latency).
    @Test func messagesFlowInOrderBesideABulkTransfer() async throws {
        let (seed, client) = try await Self.pair()
        let total = 32 << 20
        let done = Inbox<Int>()
        DataConnTests.registerSink(on: seed, total: total, done: done)
        let sequence = Inbox<Int>()
        let sink = seed.port { _, message in
            if let number = message.first?.intValue { sequence.put(number) }
        }
        let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dc::sink")
        let count = 200
        let chunk = ByteBufferAllocator().buffer(repeating: 0x78, count: 1 << 20)
        async let bulk: Void = {
            for _ in 0..<(total >> 20) { try await handle.write(chunk) }
        }()
        for number in 0..<count {
            client.send(sink, [.int(Int64(number))])
            if number % 20 == 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        try await bulk
        #expect(try await sequence.next(count, within: .seconds(30)) == Array(0..<count))
        #expect(try await done.next(within: .seconds(60)) == total)
        handle.destroy()
        await client.shutdown()
        await seed.shutdown()
    }
}
