import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPTestSupport
import NIOCore
import Testing

/// Data connections between nodes in one process over loopback (and a socket pair on one node).
@Suite("DataConn: raw data connections between nodes")
struct DataConnTests {
    static let secret = "dataconn-test-secret"

    static func node(_ name: String, binds: [String] = ["127.0.0.1:0"], seeds: [String] = []) async throws -> Node {
        try await Node.start(NodeConfiguration(nodeID: name, binds: binds, seeds: seeds, secret: secret))
    }

    /// `seed` listens; `client` uses it as seed and may or may not listen itself.
    static func pair(clientListens: Bool) async throws -> (seed: Node, client: Node) {
        let seed = try await node("dc-seed-\(UInt32.random(in: 0...UInt32.max))")
        let client = try await node(
            "dc-client-\(UInt32.random(in: 0...UInt32.max))", binds: clientListens ? ["127.0.0.1:0"] : [],
            seeds: seed.listenerAddresses)
        let deadline = ContinuousClock.now + .seconds(10)
        while await client.state(of: seed.nodeID) != .up {
            if ContinuousClock.now > deadline { throw InboxTimeout(timeout: .seconds(10)) }
            try await Task.sleep(for: .milliseconds(5))
        }
        return (seed, client)
    }

    /// Registers `dc::echo` on `node`: reads lines and answers `echo: <line>`.
    static func registerEcho(on node: Node, events: Inbox<String>) {
        node.registerDataConnFunction("dc::echo") { context, arguments, handle in
            events.put("remote \(arguments)")
            handle.onError { _, _ in }
            // The read callbacks keep the handle alive while the peer talks.
            func next() {
                handle.pushRead(.line()) { _, line in
                    handle.pushWrite("echo: \(line.string)\n")
                    next()
                }
            }
            next()
        }
    }

    @Test(arguments: [true, false])
    func lineExchangeInBothDialDirections(initiatorListens: Bool) async throws {
        // The seed always listens. With `initiatorListens` the seed initiates towards its listening
        // client; otherwise the client without listeners initiates and dials the seed. (The dial-back
        // case, where only the initiator listens, is in DataConnScenarioTests.)
        let (seed, client) = try await Self.pair(clientListens: initiatorListens)
        let (initiator, target) = initiatorListens ? (seed, client) : (client, seed)
        let events = Inbox<String>()
        Self.registerEcho(on: target, events: events)
        let handle = try await initiator.dataConnection(
            to: target.nodeID.rawValue, timeout: .seconds(5), function: "dc::echo", arguments: ["one", 1])
        #expect(try await events.next() == "remote [\"one\", 1]")
        try await handle.write("hello dataconn\n")
        let line = try await handle.read(.line())
        #expect(line.string == "echo: hello dataconn")
        handle.destroy()
        await client.shutdown()
        await seed.shutdown()
    }

    @Test func sameNodeUsesASocketPair() async throws {
        let node = try await Self.node("dc-self", binds: [])
        let events = Inbox<String>()
        Self.registerEcho(on: node, events: events)
        let loops = Inbox<Bool>()
        node.registerDataConnFunction("dc::where") { _, _, handle in
            loops.put(handle.eventLoop !== node.eventLoop && handle.eventLoop.inEventLoop)
            handle.destroy()
        }
        let handle = try await node.dataConnection(to: node.nodeID.rawValue, timeout: .seconds(5), function: "dc::echo")
        #expect(try await events.next() == "remote []")
        // Both ends live on the data loop, not the node's, and the receiver runs there.
        #expect(handle.eventLoop !== node.eventLoop)
        let other = try await node.dataConnection(to: node.nodeID.rawValue, timeout: .seconds(5), function: "dc::where")
        #expect(try await loops.next())
        #expect(other.eventLoop === handle.eventLoop)
        other.destroy()
        try await handle.write("local\n")
        #expect(try await handle.read(.line()).string == "echo: local")
        handle.destroy()
        await node.shutdown()
    }

    @Test func unknownNodeTimesOutWithThePerlMessage() async throws {
        let node = try await Self.node("dc-lonely")
        await #expect(throws: DataConnError("nosuchnode: unable to establish connection within 1 seconds")) {
            _ = try await node.dataConnection(to: "nosuchnode", timeout: .seconds(1), function: "dc::echo")
        }
        await node.shutdown()
    }

    @Test func callbackFormKillsTheCallingPortOnFailure() async throws {
        let node = try await Self.node("dc-callback")
        let reasons = Inbox<KillReason>()
        let caller = node.port { _, _ in }
        let g = node.monitor(caller) { reasons.put($0) }
        node.connectData(to: "nosuchnode#port", timeout: .milliseconds(300), function: "dc::echo", port: caller) { _ in
            reasons.put(.user(["unexpected success"]))
        }
        #expect(
            try await reasons.next().values == [
                "AnyEvent::MP::DataConn", "nosuchnode: unable to establish connection within 0.3 seconds",
            ])
        _ = g
        await node.shutdown()
    }

    /// Registers `dc::sink` on `node`: counts the bytes of a data connection and reports the count to
    /// `done` once `total` arrived.
    static func registerSink(on node: Node, total: Int, done: Inbox<Int>) {
        node.registerDataConnFunction("dc::sink") { _, _, handle in
            var received = 0
            handle.onError { _, _ in }
            // The closure keeps the handle alive (as the Perl idiom does) until the transfer is complete.
            handle.onRead { _ in
                received += handle.readBuffer.readableBytes
                handle.consumeAll()
                if received >= total {
                    done.put(received)
                    handle.destroy()
                }
            }
        }
    }

    @Test func bulkTransferArrivesComplete() async throws {
        let (seed, client) = try await Self.pair(clientListens: false)
        let total = 2 << 30  // 2 GiB: multi-GiB scale, bounded by the 60 s limit below
        let done = Inbox<Int>()
        Self.registerSink(on: seed, total: total, done: done)
        let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dc::sink")
        let chunk = ByteBufferAllocator().buffer(repeating: 0x78, count: 1 << 20)
        for _ in 0..<(total >> 20) { try await handle.write(chunk) }
        #expect(try await done.next(within: .seconds(60)) == total)
        handle.destroy()
        await client.shutdown()
        await seed.shutdown()
    }
}
