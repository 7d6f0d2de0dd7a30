import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

/// `busy_poll`: the node's loop keeps polling after a message for the configured window, then stops.
@Suite("Busy polling after messages (busy_poll)")
struct BusyPollTests {
    @Test("busy_poll: default off, seconds like the other keys, bad values refused")
    func configureKey() throws {
        #expect(NodeConfiguration().busyPoll == .zero)
        #expect(try NodeConfiguration(perlArguments: [("busy_poll", "0.0003")]).busyPoll == .microseconds(300))
        #expect(try NodeConfiguration(perlArguments: [("busy_poll", 0.001)]).busyPoll == .milliseconds(1))
        #expect(try NodeConfiguration(perlArguments: [("busy_poll", 0)]).busyPoll == .zero)
        #expect(NodeConfiguration.perlKeys.contains("busy_poll"))
        for bad: Value in ["-1", "soon", [1]] {
            #expect(throws: NodeConfigurationError.self) { try NodeConfiguration(perlArguments: [("busy_poll", bad)]) }
        }
    }

    static func pair(busyPoll: Duration) async throws -> (Node, Node) {
        var seedConfiguration = NodeNetworkTests.configuration("poll-seed-\(UInt32.random(in: 0...UInt32.max))")
        seedConfiguration.busyPoll = busyPoll
        let seed = try await Node.start(seedConfiguration)
        var clientConfiguration = NodeNetworkTests.configuration(
            "poll-client-\(UInt32.random(in: 0...UInt32.max))", seeds: seed.listenerAddresses)
        clientConfiguration.busyPoll = busyPoll
        let client = try await Node.start(clientConfiguration)
        try await NodeNetworkTests.waitUntil { await client.state(of: seed.nodeID) == .up }
        return (seed, client)
    }

    @Test("round trips arrive in order while both loops poll; polling stops after the window", .timeLimit(.minutes(1)))
    func pollsThenSleeps() async throws {
        let (seed, client) = try await Self.pair(busyPoll: .milliseconds(2))
        let echo = seed.port { context, message in
            guard let reply = message.last?.stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, Array(message.dropLast()))
        }
        for index in 0..<300 {
            let reply = try await client.call(echo, [.int(Int64(index))], timeout: .seconds(5))
            #expect(reply == [.int(Int64(index))])
        }
        #expect(await seed.evaluate { $0.busyPolling }, "the seed polls right after a message")
        // A timer on the polling loop still fires on time: polling does not hold the loop.
        let started = ContinuousClock.now
        try await seed.eventLoop.scheduleTask(in: .milliseconds(1)) {}.futureResult.get()
        #expect(ContinuousClock.now - started < .milliseconds(200))
        try await NodeNetworkTests.waitUntil(within: .seconds(2)) {
            let seedPolls = await seed.evaluate { $0.busyPolling }
            let clientPolls = await client.evaluate { $0.busyPolling }
            return !seedPolls && !clientPolls
        }
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("off by default: no polling after messages", .timeLimit(.minutes(1)))
    func offByDefault() async throws {
        let (seed, client) = try await Self.pair(busyPoll: .zero)
        let echo = seed.port { context, message in
            guard let reply = message.last?.stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, Array(message.dropLast()))
        }
        _ = try await client.call(echo, ["ping"], timeout: .seconds(5))
        #expect(await !seed.evaluate { $0.busyPolling })
        #expect(await !client.evaluate { $0.busyPolling })
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("shutting down while polling stops the polling", .timeLimit(.minutes(1)))
    func shutdownWhilePolling() async throws {
        let (seed, client) = try await Self.pair(busyPoll: .seconds(5))
        let sink = seed.port { _, _ in }
        client.send(sink, ["wake up"])
        try await NodeNetworkTests.waitUntil { await seed.evaluate { $0.busyPolling } }
        await seed.shutdown()
        try await NodeNetworkTests.waitUntil(within: .seconds(2)) { await !seed.evaluate { $0.busyPolling } }
        await client.shutdown()
    }
}
