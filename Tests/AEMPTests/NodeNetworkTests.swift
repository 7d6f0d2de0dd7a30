import AEMP
import AEMPCodecs
import AEMPTestSupport
import Testing

/// Several nodes in one process, talking over real loopback connections.
@Suite("Node: nodes talking over loopback")
struct NodeNetworkTests {
    static let secret = "node-test-secret"

    static func configuration(
        _ name: String, seeds: [String] = [], secret: String = secret, framings: [Framing] = Framing.supported,
        connectInterval: Duration = .seconds(2)
    ) -> NodeConfiguration {
        NodeConfiguration(
            nodeID: name, binds: ["127.0.0.1:0"], seeds: seeds, secret: secret, framingFormats: framings,
            connectInterval: connectInterval)
    }

    /// A seed node and a node using it as seed, waiting until they are connected.
    static func pair(
        seedFramings: [Framing] = Framing.supported, clientFramings: [Framing] = Framing.supported
    ) async throws -> (seed: Node, client: Node) {
        let seed = try await Node.start(configuration("seed-\(UInt32.random(in: 0...UInt32.max))", framings: seedFramings))
        let client = try await Node.start(
            configuration("client-\(UInt32.random(in: 0...UInt32.max))", seeds: seed.listenerAddresses, framings: clientFramings))
        try await waitUntil {
            let clientSees = await client.state(of: seed.nodeID)
            let seedSees = await seed.state(of: client.nodeID)
            return clientSees == .up && seedSees == .up
        }
        return (seed, client)
    }

    static func waitUntil(within limit: Duration = .seconds(10), _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !(await condition()) {
            if ContinuousClock.now >= deadline { throw InboxTimeout(timeout: limit) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static func shutdown(_ nodes: Node...) async {
        for node in nodes { await node.shutdown() }
    }

    struct Received: Sendable, Equatable {
        var source: NodeID
        var message: [Value]
    }

    @Test(arguments: [
        ([Framing.cbor, .json], [Framing.cbor, .json]),
        ([Framing.json], [Framing.cbor, .json]),
        ([Framing.cbor, .json], [Framing.json]),
    ])
    func messagesBothWaysInOrder(seedFramings: [Framing], clientFramings: [Framing]) async throws {
        let (seed, client) = try await Self.pair(seedFramings: seedFramings, clientFramings: clientFramings)
        let atSeed = Inbox<Received>()
        let atClient = Inbox<Received>()
        let seedPort = seed.port { context, message in atSeed.put(Received(source: context.sourceNode, message: message)) }
        let clientPort = client.port { context, message in atClient.put(Received(source: context.sourceNode, message: message)) }
        let count = 2000
        for index in 0..<count {
            client.send(seedPort, [.int(Int64(index)), "hello", 2.5, ["a": "b"], [1, "two", .null]])
        }
        let received = try await atSeed.next(count)
        #expect(received.map { $0.message[0] } == (0..<count).map { Value.int(Int64($0)) })
        #expect(received.allSatisfy { $0.source == client.nodeID })
        #expect(received[0].message.dropFirst().elementsEqual(["hello", 2.5, ["a": "b"], [1, "two", .null]] as [Value]))
        seed.send(clientPort, "back")
        #expect(try await atClient.next() == Received(source: seed.nodeID, message: ["back"]))
        await Self.shutdown(client, seed)
    }

    @Test func remoteMonitorsKillsAndMissingPorts() async throws {
        let (seed, client) = try await Self.pair()
        let reasons = Inbox<KillReason>()
        let target = seed.port { _, _ in }
        let g1 = client.monitor(target) { reasons.put($0) }
        // A round trip makes sure the mon1 arrived before the kill.
        _ = try await client.call(PortID.nodePort(of: seed.nodeID), ["time"])
        client.kill(target, reason: .user(["test_reason", "killed remotely"]))
        #expect(try await reasons.next().values == ["test_reason", "killed remotely"])

        let missing = PortID(node: seed.nodeID, name: "nonexistent")
        let g2 = client.monitor(missing) { reasons.put($0) }
        #expect(
            try await reasons.next().values == ["no_such_port", "cannot monitor nonexistent port", .text(missing.description)])
        _ = (g1, g2)
        await Self.shutdown(client, seed)
    }

    @Test func callSpawnFunctionsAndEvalAcrossNodes() async throws {
        let (seed, client) = try await Self.pair()
        let inbox = Inbox<[Value]>()
        seed.registerFunction("main::stf_target") { context, arguments in
            inbox.put([.text(context.sourceNode.rawValue)] + arguments)
        }
        seed.registerFunction("main::spawn_echo") { context, arguments in
            let port = try #require(context.port)
            context.node.receive(port) { context, message in
                if let reply = message.first?.stringValue.flatMap(PortID.init) {
                    context.node.send(reply, Array(message.dropFirst()))
                }
            }
        }
        client.sendToFunction(on: seed.nodeID, "main::stf_target", ["x", 42])
        #expect(try await inbox.next() == [.text(client.nodeID.rawValue), "x", 42])

        let spawned = client.spawn(on: seed.nodeID, function: "main::spawn_echo")
        #expect(spawned.node == seed.nodeID)
        let reply = client.port { _, message in inbox.put(message) }
        client.send(spawned, .text(reply.description), "hi")
        #expect(try await inbox.next() == ["hi"])

        let time = try await client.call(PortID.nodePort(of: seed.nodeID), ["time"])
        #expect(time.count == 1 && (time[0].doubleValue ?? 0) > 1_700_000_000)

        client.evalOn(seed.nodeID, "1 + 2", reply: [.text(reply.description), "eval_result"])
        let refused = try await inbox.next()
        #expect(refused.first == "eval_result" && refused.count == 2)

        client.sendOn(seed.nodeID, [.text(reply.description), "relayed", "via snd_on"])
        #expect(try await inbox.next() == ["relayed", "via snd_on"])
        await Self.shutdown(client, seed)
    }

    @Test func nodeMonitorsAndTransportErrorsWhenAPeerGoesAway() async throws {
        let seed = try await Node.start(Self.configuration("seed-away"))
        let events = Inbox<String>()
        let nodes = seed.monitorNodes { node, up, reason in events.put("\(node) \(up) \(reason.values)") }
        let client = try await Node.start(Self.configuration("client-away", seeds: seed.listenerAddresses))
        #expect(try await events.next() == "client-away true []")
        #expect(await seed.upNodes() == [client.nodeID])

        let clientPort = client.port { _, _ in }
        let g = seed.monitor(clientPort) { events.put("monitor \($0.values)") }
        _ = try await seed.call(PortID.nodePort(of: client.nodeID), ["time"])
        await client.shutdown()
        // The monitor fires first, then the node-down event (spec §5.4).
        let first = try await events.next()
        let second = try await events.next()
        #expect(first.hasPrefix("monitor [\"transport_error\", \"client-away\""))
        #expect(second.hasPrefix("client-away false [\"transport_error\", \"client-away\""))
        #expect(await seed.state(of: client.nodeID) == .known)
        _ = (nodes, g)
        await seed.shutdown()
    }

    @Test func wrongSecretDeliversNothingAndTimesOut() async throws {
        let seed = try await Node.start(Self.configuration("seed-secret", connectInterval: .milliseconds(500)))
        let delivered = Inbox<[Value]>()
        let target = seed.port { _, message in delivered.put(message) }
        let client = try await Node.start(
            Self.configuration(
                "client-secret", seeds: seed.listenerAddresses, secret: "wrong", connectInterval: .milliseconds(500)))
        let reasons = Inbox<KillReason>()
        let g = client.monitor(target) { reasons.put($0) }
        client.send(target, "must not arrive")
        let reason = try await reasons.next()
        #expect(reason.isTransportError)
        #expect(delivered.snapshot.isEmpty)
        #expect(await client.state(of: seed.nodeID) != .up)
        _ = g
        await Self.shutdown(client, seed)
    }

    @Test func unknownNodeFailsWithNoKnownAddress() async throws {
        // A global node (its own seed) answers lookups from its database at once.
        let probe = try await Node.start(Self.configuration("port-probe-2"))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()
        let node = try await Node.start(
            NodeConfiguration(nodeID: "lonely", binds: [address], seeds: [address], secret: Self.secret))
        try await Task.sleep(for: .milliseconds(100))
        let reasons = Inbox<KillReason>()
        let g = node.monitor(PortID("nosuchnode#port")!) { reasons.put($0) }
        #expect(try await reasons.next().values == ["transport_error", "nosuchnode", "no known address"])
        _ = g
        await node.shutdown()
    }

    @Test func nodeWithoutMasterTimesOutConnecting() async throws {
        let node = try await Node.start(Self.configuration("no-master", connectInterval: .milliseconds(300)))
        let reasons = Inbox<KillReason>()
        let g = node.monitor(PortID("elsewhere#port")!) { reasons.put($0) }
        // No seed, so no database master to ask for the address (Perl says only "connect timeout").
        #expect(
            try await reasons.next().values
                == ["transport_error", "elsewhere", "connect timeout (no database master to look up its address: no seeds configured)"])
        #expect(await node.state(of: NodeID("elsewhere")!) == .known)
        _ = g
        await node.shutdown()
    }

    @Test func seedListContainingTheNodeItself() async throws {
        // Find a free port, then start a node whose only seed is its own listener: it dials itself, is
        // refused ("I refuse to talk to myself"), and goes on working.
        let probe = try await Node.start(Self.configuration("port-probe"))
        let address = probe.listenerAddresses[0]
        await probe.shutdown()
        let node = try await Node.start(
            NodeConfiguration(nodeID: "self-seed", binds: [address], seeds: [address], secret: Self.secret))
        let inbox = Inbox<[Value]>()
        let port = node.port { _, message in inbox.put(message) }
        try await Task.sleep(for: .milliseconds(100))
        node.send(port, "still working")
        #expect(try await inbox.next() == ["still working"])
        #expect(await node.upNodes() == [])
        await node.shutdown()
    }
}
