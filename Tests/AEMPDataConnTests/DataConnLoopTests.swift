import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import AEMPSocket
import AEMPTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Which event loop a data connection lives on: the node's data loop (a loop of its data group), so
/// that a bulk transfer does not hold up the node's messages, whether the node dialled it or accepted
/// it (an accepted one moves there after the peer's greeting). The receiver and the callback run on
/// the handle's loop.
@Suite("DataConn: event loops")
struct DataConnLoopTests {
    /// Where a handle turned up: whether its loop is its node's loop, and whether the code that got it
    /// ran on the handle's loop.
    struct Placement: Sendable, Equatable {
        var onNodeLoop: Bool
        var ranOnHandleLoop: Bool

        /// Where `handle` is, seen from the code running now, relative to `nodeLoop`.
        static func of(_ handle: Handle, nodeLoop: any EventLoop) -> Placement {
            Placement(onNodeLoop: handle.eventLoop === nodeLoop, ranOnHandleLoop: handle.eventLoop.inEventLoop)
        }
    }

    static func pair(
        on group: any EventLoopGroup, dataGroup: (any EventLoopGroup)? = nil, clientListens: Bool
    ) async throws -> (seed: Node, client: Node) {
        let seed = try await Node.start(
            NodeConfiguration(nodeID: "dcl-seed-\(UInt32.random(in: 0...UInt32.max))", binds: ["127.0.0.1:0"], secret: DataConnTests.secret),
            group: group, dataGroup: dataGroup)
        let client = try await Node.start(
            NodeConfiguration(
                nodeID: "dcl-client-\(UInt32.random(in: 0...UInt32.max))", binds: clientListens ? ["127.0.0.1:0"] : [],
                seeds: seed.listenerAddresses, secret: DataConnTests.secret),
            group: group, dataGroup: dataGroup)
        let deadline = ContinuousClock.now + .seconds(10)
        while await client.state(of: seed.nodeID) != .up {
            if ContinuousClock.now > deadline { throw InboxTimeout(timeout: .seconds(10)) }
            try await Task.sleep(for: .milliseconds(5))
        }
        return (seed, client)
    }

    /// Runs `body` with a listening seed and a client without listeners on a group of `threads`
    /// loops, and shuts all of it down afterwards.
    static func withPair(
        threads: Int = 2, dataOnTheNodeGroup: Bool = false, _ body: (_ seed: Node, _ client: Node) async throws -> Void
    ) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let (seed, client) = try await pair(on: group, dataGroup: dataOnTheNodeGroup ? group : nil, clientListens: false)
        var failure: (any Error)?
        do {
            try await body(seed, client)
        } catch {
            failure = error
        }
        await client.shutdown()
        await seed.shutdown()
        try await group.shutdownGracefully()
        if let failure { throw failure }
    }

    /// The client (no listeners) initiates and dials the seed: its handle is dialled, the seed's is
    /// accepted.
    @Test func plainConnectionsLiveOnTheDataLoopOnBothSides() async throws {
        try await Self.withPair { seed, client in
            let remote = Inbox<Placement>()
            let seedLoop = seed.eventLoop
            seed.registerDataConnFunction("dcl::where") { _, _, handle in
                remote.put(Placement.of(handle, nodeLoop: seedLoop))
                handle.destroy()
            }
            let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::where")
            #expect(handle.eventLoop !== client.eventLoop)
            #expect(try await remote.next() == Placement(onNodeLoop: false, ranOnHandleLoop: true))
            handle.destroy()

            // The callback form runs on the handle's loop too.
            let local = Inbox<Placement>()
            let caller = client.port { _, _ in }
            let clientLoop = client.eventLoop
            client.connectData(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::where", port: caller) { handle in
                local.put(Placement.of(handle, nodeLoop: clientLoop))
                handle.destroy()
            }
            #expect(try await local.next() == Placement(onNodeLoop: false, ranOnHandleLoop: true))
            #expect(try await remote.next() == Placement(onNodeLoop: false, ranOnHandleLoop: true))
        }
    }

    /// A target without listeners dials back; the initiator accepts. Early bytes survive the move.
    @Test func aDialBackEndsOnTheDataLoopsToo() async throws {
        // The seed (it listens) initiates; the client, the target, has no listeners and dials back.
        try await Self.withPair { seed, client in
            let remote = Inbox<Placement>()
            let clientLoop = client.eventLoop
            client.registerDataConnFunction("dcl::where") { _, _, handle in
                remote.put(Placement.of(handle, nodeLoop: clientLoop))
                handle.pushWrite("hello\n")
            }
            let handle = try await seed.dataConnection(to: client.nodeID.rawValue, timeout: .seconds(5), function: "dcl::where")
            #expect(handle.eventLoop !== seed.eventLoop)
            #expect(try await remote.next() == Placement(onNodeLoop: false, ranOnHandleLoop: true))
            #expect(try await handle.read(.line()).string == "hello")
            handle.destroy()
        }
    }

    /// By default data connections live on the process's background data group, on both sides.
    @Test func byDefaultTheDataGroupIsTheBackgroundOne() async throws {
        let shared = Array(Node.defaultDataGroup.makeIterator())
        try await Self.withPair { seed, client in
            let remote = Inbox<Bool>()
            seed.registerDataConnFunction("dcl::where") { _, _, handle in
                remote.put(shared.contains { $0 === handle.eventLoop })
                handle.destroy()
            }
            let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::where")
            #expect(shared.contains { $0 === handle.eventLoop })
            #expect(try await remote.next())
            #if os(Linux)
            #expect(try await handle.eventLoop.submit { sched_getscheduler(0) }.get() == 5)  // SCHED_IDLE
            #endif
            handle.destroy()
        }
    }

    /// The node's own group as data group: the data connections take its other loop.
    @Test func theNodeGroupAsDataGroupGivesTheOtherLoop() async throws {
        try await Self.withPair(dataOnTheNodeGroup: true) { seed, client in
            seed.registerDataConnFunction("dcl::where") { _, _, handle in handle.destroy() }
            let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::where")
            #expect(handle.eventLoop !== client.eventLoop)
            #if os(Linux)
            #expect(try await handle.eventLoop.submit { sched_getscheduler(0) }.get() == 0)  // SCHED_OTHER
            #endif
            handle.destroy()
        }
    }

    /// The node's own group of one loop as data group: everything stays on the node's loop.
    @Test func aGroupOfOneLoopKeepsEverythingOnTheNodeLoop() async throws {
        try await Self.withPair(threads: 1, dataOnTheNodeGroup: true) { seed, client in
            seed.registerDataConnFunction("dcl::where") { _, _, handle in handle.destroy() }
            let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::where")
            #expect(handle.eventLoop === client.eventLoop)
            handle.destroy()
        }
    }

    /// Shutting a node down stops its upgrade dials on the data loop: the half-done handshake's
    /// connection is closed, and nobody is told of a failure afterwards.
    @Test func shutdownStopsAnUpgradeDialInProgress() async throws {
        let events = Inbox<String>()
        let accepted = Mutex<[Handle]>([])
        // Accepts and reads the greeting, never answers: the handshake stays pending.
        let server = try tcpServer(host: "127.0.0.1", port: 0) { connection in
            let handle = Handle(channel: connection.channel)
            accepted.withLock { $0.append(handle) }
            handle.onError { handle, _ in
                events.put("closed")
                handle.destroy()
            }
            handle.onEof { handle in
                events.put("closed")
                handle.destroy()
            }
            handle.onRead { handle in
                if handle.readBuffer.readableBytes > 0 { events.put("greeted") }
                handle.consumeAll()
            }
        }
        defer { server.cancel() }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let node = try await Node.start(NodeConfiguration(nodeID: "dcl-dialer", binds: [], secret: DataConnTests.secret), group: group)
        node.onLoop { context in
            context.dialUpgrade(address: "127.0.0.1:\(server.localPort)", protocolName: "aemp-dataconn", dataConnID: "b") {
                events.put("failed \($0)")
            }
        }
        #expect(try await events.next() == "greeted")
        await node.shutdown()
        #expect(try await events.next() == "closed")
        try await Task.sleep(for: .milliseconds(100))
        #expect(events.snapshot.isEmpty)  // no failure reported after the shutdown
        for handle in accepted.withLock({ $0 }) { handle.destroy() }
        try await group.shutdownGracefully()
    }

    /// A TLS connection that came in on the listener moves to the data loop after the peer's
    /// greeting, before TLS starts: its TLS state is made there.
    @Test func anAcceptedTLSConnectionMovesBeforeTLSStarts() async throws {
        let certificates = try NodeCertificates.shared.get()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let seed = try await Node.start(
            NodeConfiguration(
                nodeID: "dcl-tls-seed-\(UInt32.random(in: 0...UInt32.max))", binds: ["127.0.0.1:0"], secret: DataConnTests.secret,
                certificate: certificates.nodeA),
            group: group)
        let client = try await Node.start(
            NodeConfiguration(
                nodeID: "dcl-tls-client-\(UInt32.random(in: 0...UInt32.max))", binds: [], seeds: seed.listenerAddresses,
                secret: DataConnTests.secret, certificate: certificates.nodeB),
            group: group)
        let remote = Inbox<Placement>()
        let seedLoop = seed.eventLoop
        seed.registerDataConnFunction("dcl::where") { _, _, handle in
            #expect(handle.isTLS)
            remote.put(Placement.of(handle, nodeLoop: seedLoop))
            handle.pushWrite("over tls\n")
        }
        let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(10), function: "dcl::where")
        #expect(try await handle.eventLoop.submit { handle.isTLS }.get())
        #expect(handle.eventLoop !== client.eventLoop)
        #expect(try await remote.next() == Placement(onNodeLoop: false, ranOnHandleLoop: true))
        #expect(try await handle.read(.line()).string == "over tls")
        handle.destroy()
        await client.shutdown()
        await seed.shutdown()
        try await group.shutdownGracefully()
    }

    /// A receiver that keeps no reference to its handle (its callbacks use their parameter only)
    /// still gets the whole stream: the connection stays open until the handle is destroyed.
    @Test func handlesStayOpenUntilDestroyedWithoutAReference() async throws {
        try await Self.withPair { seed, client in
            let counts = Inbox<Int>()
            seed.registerDataConnFunction("dcl::count") { _, _, handle in
                var received = 0
                handle.onError { handle, _ in handle.destroy() }
                handle.onRead { handle in
                    received += handle.readBuffer.readableBytes
                    handle.consumeAll()
                    if received >= 1 << 20 {
                        counts.put(received)
                        handle.destroy()
                    }
                }
            }
            let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::count")
            try await Task.sleep(for: .milliseconds(50))  // time for a wrongly released handle to close
            try await handle.write(ByteBuffer(repeating: 0x61, count: 1 << 20))
            #expect(try await counts.next() == 1 << 20)
            // The receiver destroyed its end: this end reads the close.
            await #expect(throws: HandleError.self) { _ = try await handle.read(.chunk(1)) }
        }
    }

    /// A data group given to `Node.start` holds the data connections of both sides.
    @Test func aDataGroupHoldsTheDataConnections() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let dataGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let dataLoop = dataGroup.next()
        let (seed, client) = try await Self.pair(on: group, dataGroup: dataGroup, clientListens: false)
        let remote = Inbox<Bool>()
        seed.registerDataConnFunction("dcl::where") { _, _, handle in
            remote.put(handle.eventLoop === dataLoop && handle.eventLoop.inEventLoop)
            handle.destroy()
        }
        let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::where")
        #expect(handle.eventLoop === dataLoop)
        #expect(try await remote.next())
        handle.destroy()
        await client.shutdown()
        await seed.shutdown()
        try await group.shutdownGracefully()
        try await dataGroup.shutdownGracefully()
    }
}

/// Within one machine a data connection's send buffer is capped; across machines the kernel sizes it.
@Suite("DataConn: send buffer within one machine")
struct DataConnSendBufferTests {
    static func sendBuffer(of handle: Handle) async throws -> Int {
        try await handle.eventLoop.submit { () throws -> Int in
            guard let channel = handle.channel, let options = channel.syncOptions else { return -1 }
            return Int(try options.getOption(.socketOption(.so_sndbuf)))
        }.get()
    }

    @Test func bothEndsOfALoopbackConnectionGetTheSmallSendBuffer() async throws {
        try await DataConnLoopTests.withPair { seed, client in
            let remote = Inbox<Handle>()
            seed.registerDataConnFunction("dcl::keep") { _, _, handle in remote.put(handle) }
            let handle = try await client.dataConnection(to: seed.nodeID.rawValue, timeout: .seconds(5), function: "dcl::keep")
            let other = try await remote.next()
            // Linux reports twice the size set (its bookkeeping share); the default grows to 4 MiB.
            #expect(try await Self.sendBuffer(of: handle) == 2 * 256 << 10)
            #expect(try await Self.sendBuffer(of: other) == 2 * 256 << 10)
            // Bulk still flows both ways.
            async let written: Void = other.write(ByteBuffer(repeating: 0x62, count: 4 << 20))
            var received = 0
            for _ in 0..<4 { received += try await handle.read(.chunk(1 << 20)).readableBytes }
            try await written
            #expect(received == 4 << 20)
            handle.destroy()
            other.destroy()
        }
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1", true), ("127.0.0.1", "127.0.0.2", true), ("::1", "::1", true),
        ("10.1.2.3", "10.1.2.3", true), ("10.1.2.3", "10.1.2.4", false), ("fd00::1", "fd00::2", false),
        ("fd00::1", "fd00::1", true),
    ])
    func sameHostIsLoopbackOrOurOwnAddress(_ local: String, _ remote: String, _ same: Bool) throws {
        let localAddress = try SocketAddress(ipAddress: local, port: 4040)
        let remoteAddress = try SocketAddress(ipAddress: remote, port: 50000)
        #expect(DataConnProtocol.isSameHost(local: localAddress, remote: remoteAddress) == same)
    }

    @Test func aPeerWithoutAnIPAddressIsNotOnThisHost() throws {
        let unix = try SocketAddress(unixDomainSocketPath: "/tmp/x")
        #expect(!DataConnProtocol.isSameHost(local: unix, remote: unix))
        #expect(!DataConnProtocol.isSameHost(local: nil, remote: nil))
    }
}
