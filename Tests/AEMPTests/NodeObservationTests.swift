import AEMP
import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Testing

/// What the dashboard asks of the library: the feed of port deaths and refused handshakes
/// (`Node.observations`), and the two Perl expressions a Swift node answers itself (the node
/// summary and the database's family names). Real nodes on loopback.
@Suite("Observations: port deaths, refused handshakes, node summaries, family names")
struct NodeObservationTests {
    /// The next observation matching `match`, within `limit`.
    static func next(
        _ stream: AsyncStream<NodeObservation>, within limit: Duration = .seconds(10), _ match: @escaping @Sendable (NodeObservation) -> Bool
    ) async -> NodeObservation? {
        await withTaskGroup(of: NodeObservation?.self) { group in
            group.addTask {
                for await observation in stream where match(observation) { return observation }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    @Test("a local port dying under a local monitor is observed once, with its reason", .timeLimit(.minutes(1)))
    func localPortDeath() async throws {
        let node = try await Node.start(NodeNetworkTests.configuration("observe-local-\(UInt32.random(in: 0...UInt32.max))"))
        let observations = node.observations()
        let port = node.port { _, _ in }
        let first = node.monitor(port) { _ in }
        let second = node.monitor(port) { _ in }
        let unwatched = node.port { _, _ in }
        node.kill(unwatched, reason: .user(["ignored"]))
        node.kill(port, reason: .user(["boom", "details"]))
        let seen = await Self.next(observations) { _ in true }
        #expect(seen == .portDied(port, .user(["boom", "details"])), "a port nobody here monitors is not reported")
        _ = (first, second)
        await node.shutdown()
    }

    @Test("a remote port's kil0 and a lost node are observed by the monitoring node", .timeLimit(.minutes(1)))
    func remotePortDeaths() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let observations = client.observations()
        let victim = seed.port { _, _ in }
        let survivor = seed.port { _, _ in }
        let monitors = [client.monitor(victim) { _ in }, client.monitor(survivor) { _ in }]
        _ = try await client.call(PortID.nodePort(of: seed.nodeID), ["time"], timeout: .seconds(5))
        seed.kill(victim, reason: .user(["killed", "remotely"]))
        let killed = await Self.next(observations) { _ in true }
        #expect(killed == .portDied(victim, .user(["killed", "remotely"])))
        await seed.shutdown()
        let lost = await Self.next(observations) { _ in true }
        guard case .portDied(let port, let reason)? = lost else {
            Issue.record("no observation for the lost node's port: \(String(describing: lost))")
            return
        }
        #expect(port == survivor)
        #expect(reason.isTransportError, "\(reason)")
        _ = monitors
        await client.shutdown()
    }

    @Test("a handshake refused for a wrong secret is observed with its category, never with the secret", .timeLimit(.minutes(1)))
    func refusedHandshake() async throws {
        let secret = "the-real-secret-\(UInt32.random(in: 0...UInt32.max))"
        let seed = try await Node.start(
            NodeNetworkTests.configuration("observe-seed-\(UInt32.random(in: 0...UInt32.max))", secret: secret))
        let observations = seed.observations()
        // Make sure the registration is in place before the stranger dials.
        _ = await seed.statistics()
        let stranger = try await Node.start(
            NodeNetworkTests.configuration(
                "observe-stranger-\(UInt32.random(in: 0...UInt32.max))", seeds: seed.listenerAddresses, secret: "another-secret"))
        let seen = await Self.next(observations) { observation in
            if case .handshakeFailed(let failure) = observation { return failure.category != "duplicate" }
            return false
        }
        guard case .handshakeFailed(let failure)? = seen else {
            Issue.record("no refused handshake observed")
            await NodeNetworkTests.shutdown(stranger, seed)
            return
        }
        #expect(failure.direction == .incoming)
        #expect(failure.category == "auth" || failure.category == "closed", "\(failure)")
        #expect(!failure.reason.isEmpty)
        #expect(!failure.reason.contains(secret) && !failure.reason.contains("another-secret"), "\(failure.reason)")
        #expect(failure.address?.hasPrefix("127.0.0.1:") == true, "\(failure)")
        await NodeNetworkTests.shutdown(stranger, seed)
    }

    @Test("a Swift node answers the summary expression itself: start time, ports, queued bytes", .timeLimit(.minutes(1)))
    func summaryExpression() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let ports = (0..<3).map { _ in seed.port { _, _ in } }
        let local = await seed.summary()
        #expect(local.ports == 3)
        let reply = try await client.call(
            PortID.nodePort(of: seed.nodeID), ["eval", .text(Node.nodeSummaryExpression)], timeout: .seconds(5))
        #expect(reply.first == "", "no eval error: \(reply)")
        let summary = try #require(NodeSummary(values: Array(reply.dropFirst())), "\(reply)")
        #expect(summary.ports == 3)
        #expect(summary.startedAt == local.startedAt)
        let now = Int64(Date.now.timeIntervalSince1970)
        #expect(summary.startedAt <= now && summary.startedAt > now - 600)
        #expect(summary.queuedBytes != nil)
        // What a Perl node sends: numbers as text or floats, an undefined queue.
        #expect(NodeSummary(values: ["1700000000", .float(4), .null]) == NodeSummary(startedAt: 1_700_000_000, ports: 4, queuedBytes: nil))
        #expect(
            NodeSummary(values: [.bytes(ByteBuffer(string: "1700000000")), .bytes(ByteBuffer(string: "12")), .int(64)])
                == NodeSummary(startedAt: 1_700_000_000, ports: 12, queuedBytes: 64))
        #expect(NodeSummary(values: ["yesterday", 1]) == nil)
        _ = ports
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("the two expressions are valid Perl: on Perl's own %PORT, %NODE and %GLOBAL_DB shapes they give what a Swift node gives")
    func expressionsInPerl() throws {
        let script = #"""
            use strict; use warnings;
            %AnyEvent::MP::Kernel::PORT = (a => 1, b => 2, c => 3);
            %AnyEvent::MP::Kernel::NODE = (
                x => bless({ transport => bless({ hdl => bless({ wbuf => "12345" }, "AnyEvent::Handle") }, "AnyEvent::MP::Transport") }, "AnyEvent::MP::Node::Remote"),
                y => bless({}, "AnyEvent::MP::Node::Remote"),
                z => bless({ transport => bless({ hdl => bless({}, "AnyEvent::Handle") }, "AnyEvent::MP::Transport") }, "AnyEvent::MP::Node::Remote"),
            );
            %AnyEvent::MP::Global::GLOBAL_DB = (workers => { k => 1 }, "'l" => {});
            my ($summary, $families) = split /\n/, do { local $/; <STDIN> };
            my @summary = do { package main; eval $summary }; die $@ if $@;
            print join(",", map { defined ? $_ : "undef" } @summary), "\n";
            my @families = sort(do { package main; eval $families }); die $@ if $@;
            print join(",", @families), "\n";
            """#
        let result = try ExternalTool.run(
            ["perl", "-e", script], input: Node.nodeSummaryExpression + "\n" + Node.databaseFamiliesExpression + "\n")
        #expect(result.status == 0, "\(result.error)")
        let lines = result.output.split(separator: "\n").map(String.init)
        let summary = lines.first?.split(separator: ",").map(String.init) ?? []
        #expect(summary.count == 3 && Int64(summary[0]) != nil && summary[1] == "3" && summary[2] == "5", "\(result.output)")
        #expect(lines.dropFirst().first == "'l,workers", "\(result.output)")
    }

    @Test("a global Swift node lists its database's family names when asked the families expression", .timeLimit(.minutes(1)))
    func familiesExpression() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        try await NodeNetworkTests.waitUntil { await client.databaseMaster() == seed.nodeID }
        client.dbSet("dashboard_test", "key", "value")
        var names: [String] = []
        try await NodeNetworkTests.waitUntil {
            let reply = try? await client.call(
                PortID.nodePort(of: seed.nodeID), ["eval", .text(Node.databaseFamiliesExpression)], timeout: .seconds(5))
            names = reply.map { Array($0.dropFirst()).compactMap(\.stringValue) } ?? []
            return names.contains("dashboard_test")
        }
        #expect(names.contains("'l"), "\(names)")
        // A node that is not global has no global database: an empty list, as from Perl.
        let reply = try await seed.call(
            PortID.nodePort(of: client.nodeID), ["eval", .text(Node.databaseFamiliesExpression)], timeout: .seconds(5))
        #expect(reply == [""])
        await NodeNetworkTests.shutdown(client, seed)
    }
}
