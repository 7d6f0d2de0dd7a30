import AEMP
import AEMPCodecs
import AEMPTestSupport
import Synchronization
import Testing

/// The async forms of the callback API: message ports, tag streams, waiting for a port's death, node
/// events and database changes. Real nodes on loopback.
@Suite("Async API: message ports, tag streams, deaths, node events, database changes")
struct AsyncAPITests {
    @Test("a message port delivers every message in order with its source node", .timeLimit(.minutes(1)))
    func messagePortInOrder() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let inbox = seed.messagePort()
        for index in 0..<500 { client.send(inbox.id, [.int(Int64(index)), "hello"]) }
        var received: [Int64] = []
        for await message in inbox.messages {
            #expect(message.source == client.nodeID)
            received.append(message.values.first?.intValue.map(Int64.init) ?? -1)
            if received.count == 500 { break }
        }
        #expect(received == (0..<500).map(Int64.init))
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("a full buffer kills the port with the overflow reason; the buffered messages still arrive", .timeLimit(.minutes(1)))
    func overflowKillsThePort() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let inbox = seed.messagePort(limit: 10)
        let reasons = Inbox<KillReason>()
        let monitor = client.monitor(inbox.id) { reasons.put($0) }
        _ = try await client.call(PortID("\(seed.nodeID.rawValue)#")!, ["time"], timeout: .seconds(5))
        for index in 0..<100 { client.send(inbox.id, [.int(Int64(index))]) }
        let reason = try await reasons.next(within: .seconds(5))
        #expect(reason == .user(["overflow", "10 messages not taken"]))
        var received: [Int64] = []
        for await message in inbox.messages { received.append(message.values.first?.intValue.map(Int64.init) ?? -1) }
        #expect(received == (0..<10).map(Int64.init), "the sequence ends after what was buffered")
        _ = monitor
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("dropNewest counts what it drops and keeps the port", .timeLimit(.minutes(1)))
    func dropNewestCounts() async throws {
        let node = try await Node.start(NodeNetworkTests.configuration("async-drop-\(UInt32.random(in: 0...UInt32.max))"))
        let inbox = node.messagePort(limit: 5, overflow: .dropNewest)
        for index in 0..<20 { node.send(inbox.id, [.int(Int64(index))]) }
        try await NodeNetworkTests.waitUntil { inbox.droppedMessages == 15 }
        var iterator = inbox.messages.makeAsyncIterator()
        #expect(await iterator.next()?.values == [0])
        node.send(inbox.id, ["still alive"])
        for _ in 1..<5 { _ = await iterator.next() }
        #expect(await iterator.next()?.values == ["still alive"])
        inbox.finish()
        #expect(await iterator.next() == nil)
        await node.shutdown()
    }

    @Test("cancelling the consuming task kills the port normally; remote monitors hear it", .timeLimit(.minutes(1)))
    func cancellationKillsThePort() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let inbox = seed.messagePort()
        let reasons = Inbox<KillReason>()
        let monitor = client.monitor(inbox.id) { reasons.put($0) }
        _ = try await client.call(PortID("\(seed.nodeID.rawValue)#")!, ["time"], timeout: .seconds(5))
        let received = Inbox<Int>()
        let consumer = Task {
            var count = 0
            for await _ in inbox.messages {
                count += 1
                received.put(count)
            }
            return count
        }
        client.send(inbox.id, ["one"])
        // Cancelled once the message is in (a fixed sleep raced with a loaded machine).
        #expect(try await received.next(within: .seconds(5)) == 1)
        consumer.cancel()
        #expect(await consumer.value == 1)
        #expect(try await reasons.next(within: .seconds(5)) == .normal)
        _ = monitor
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("tag streams dispatch by the first element; an untagged message kills the port and ends them", .timeLimit(.minutes(1)))
    func tagStreams() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let port = seed.port()
        let greetings = await seed.messages(on: port, tag: "greet")
        let farewells = await seed.messages(on: port, tag: "bye")
        client.send(port, ["greet", "Alice"])
        client.send(port, ["bye", "Bob"])
        client.send(port, ["greet", "Carol"])
        var greeted: [Value] = []
        for await message in greetings {
            greeted.append(message.values[0])
            #expect(message.source == client.nodeID)
            if greeted.count == 2 { break }
        }
        #expect(greeted == ["Alice", "Carol"])
        var farewell = farewells.makeAsyncIterator()
        #expect(await farewell.next()?.values == ["Bob"])
        // Perl: a message no callback takes kills the port with unhandled_message; the streams end.
        let reasons = Inbox<KillReason>()
        let monitor = seed.monitor(port) { reasons.put($0) }
        _ = await seed.statistics()  // a round trip through the loop: the monitor is in place
        client.send(port, ["other"])
        #expect(try await reasons.next(within: .seconds(5)).tag == KillReason.unhandledMessageTag)
        _ = monitor
        #expect(await farewell.next() == nil)
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("deathOf: the kill reason, no_such_port for a missing port, CancellationError when cancelled", .timeLimit(.minutes(1)))
    func deathOf() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let port = seed.port { _, _ in }
        let waiting = Task { try await client.deathOf(port) }
        // The client's mon1 has reached the seed once the port has a remote watcher.
        try await NodeNetworkTests.waitUntil { await seed.statistics().monitors >= 1 }
        seed.kill(port, reason: .user(["done", "for today"]))
        #expect(try await waiting.value == .user(["done", "for today"]))

        let missing = PortID("\(seed.nodeID.rawValue)#nothing-here")!
        #expect(try await client.deathOf(missing) == .noSuchPort(missing))

        let alive = seed.port { _, _ in }
        let cancelled = Task { try await client.deathOf(alive) }
        try await Task.sleep(for: .milliseconds(50))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("node events: up, then down with the reason", .timeLimit(.minutes(1)))
    func nodeEvents() async throws {
        let seed = try await Node.start(NodeNetworkTests.configuration("async-events-\(UInt32.random(in: 0...UInt32.max))"))
        let events = seed.nodeEvents()
        let client = try await Node.start(
            NodeNetworkTests.configuration("async-client-\(UInt32.random(in: 0...UInt32.max))", seeds: seed.listenerAddresses))
        var iterator = events.makeAsyncIterator()
        let up = await iterator.next()
        #expect(up?.node == client.nodeID && up?.isUp == true)
        // The client tells only peers it sees up (the seed may see it up first).
        try await NodeNetworkTests.waitUntil { await client.state(of: seed.nodeID) == .up }
        await client.shutdown(gracePeriod: .seconds(2), reason: "bye")
        let down = await iterator.next()
        #expect(down?.node == client.nodeID && down?.isUp == false)
        #expect(down?.reason == .transportError(node: client.nodeID, message: "bye"))
        await seed.shutdown()
    }

    @Test("database changes: the family first, then each change", .timeLimit(.minutes(1)))
    func databaseChanges() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let family = "async-family-\(UInt32.random(in: 0...UInt32.max))"
        client.dbSet(family, "a", 1)
        try await NodeNetworkTests.waitUntil { (try? await seed.dbFamily(family, timeout: .seconds(1)))?["a"] == 1 }
        var changes = seed.databaseChanges(family).makeAsyncIterator()
        let first = await changes.next()
        #expect(first?.family == ["a": 1] && first?.added == ["a"])
        client.dbSet(family, "b", 2)
        let second = await changes.next()
        #expect(second?.added == ["b"] && second?.family == ["a": 1, "b": 2])
        client.dbDel(family, ["a"])
        let third = await changes.next()
        #expect(third?.deleted == ["a"] && third?.family == ["b": 2])
        await NodeNetworkTests.shutdown(client, seed)
    }
}
