import NIOCore
import NIOPosix
import Testing

@testable import AEMPSocket

private func ip(_ text: String) -> IPAddress { parseIP(text)! }

/// Lookups against a real DNS server (dnsmasq).
@Suite(.enabled(if: DNSMasqServer.isAvailable, "needs dnsmasq (apt-get install -y dnsmasq)"))
struct DNSResolverDNSMasqTests {
    @Test func aOnly() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        #expect(try await resolver.addresses(for: "v4only.aemp.test") == [ip("192.0.2.1")])
    }

    @Test func aaaaOnly() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        #expect(try await resolver.addresses(for: "V6ONLY.aemp.test.") == [ip("2001:db8::1")])
    }

    @Test func bothFamiliesIPv4First() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        #expect(try await resolver.addresses(for: "both.aemp.test") == [ip("192.0.2.2"), ip("2001:db8::2")])
    }

    @Test(arguments: ["alias.aemp.test", "alias2.aemp.test"])
    func cnameChains(_ name: String) async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        #expect(try await resolver.addresses(for: name) == [ip("192.0.2.2"), ip("2001:db8::2")])
    }

    @Test func nxdomainIsENXIO() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        await #expect(throws: SocketError(.noSuchAddress)) { try await resolver.addresses(for: "missing.aemp.test") }
    }

    @Test func noDataIsENXIO() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        let error = await #expect(throws: SocketError(.noSuchAddress)) {
            try await resolver.addresses(for: "txt.aemp.test")
        }
        #expect(error?.message.contains("txt.aemp.test") == true)
    }

    @Test func truncatedUDPReplyIsRetriedOverTCP() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        let addresses = try await resolver.addresses(for: "many.aemp.test")
        #expect(Set(addresses) == Set(DNSMasqServer.manyAddresses.map(ip)))
        #expect(addresses.count == DNSMasqServer.manyAddresses.count)
    }

    @Test func searchList() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver(search: ["nothing.aemp.test", "aemp.test"])
        #expect(try await resolver.addresses(for: "v4only") == [ip("192.0.2.1")])
        await #expect(throws: SocketError(.noSuchAddress)) { try await resolver.addresses(for: "v4only.") }
    }

    @Test func srvOrderedByPriorityWithWeightsWithin() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        var firsts: Set<String> = []
        for _ in 0..<20 {
            let records = try await resolver.srv(service: "multi", host: "aemp.test")
            #expect(records.count == 3)
            #expect(records.map(\.priority) == [10, 10, 20])
            #expect(records.last == SRVRecord(priority: 20, weight: 0, port: 1003, target: "t3.aemp.test"))
            #expect(Set(records.prefix(2).map(\.port)) == [1001, 1002])
            firsts.insert(records[0].target)
        }
        #expect(firsts.isSubset(of: ["t1.aemp.test", "t2.aemp.test"]))
    }

    @Test func srvAbsentAndUnavailable() async throws {
        let resolver = try await DNSMasqServer.shared.value.resolver()
        #expect(try await resolver.srv(service: "absent", host: "aemp.test").isEmpty)
        #expect(try await resolver.srvLookup(service: "absent", proto: "tcp", host: "aemp.test") == .none)
        #expect(try await resolver.srv(service: "none", host: "aemp.test").isEmpty)
        #expect(try await resolver.srvLookup(service: "none", proto: "tcp", host: "aemp.test") == .unavailable)
    }
}

/// Lookups against hand-made servers: silence, garbage, wrong ids, truncation.
@Suite struct DNSResolverFaultTests {
    @Test func silentServerTimesOut() async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = server.resolver(timeout: .milliseconds(200), attempts: 2)
        let error = await #expect(throws: SocketError(.timedOut)) { try await resolver.addresses(for: "x.aemp.test") }
        #expect(error?.message.contains("did not answer") == true)
        // Two attempts each for A and AAAA.
        #expect(try await server.queryCount() == 4)
    }

    @Test func refusedPortFailsFast() async throws {
        // UDP port 1 on loopback: below the ephemeral range, so no parallel test can be bound there.
        let resolver = DNSResolver(
            configuration: .init(nameservers: [.init(.ipv4Loopback, port: 1)], timeout: .seconds(5), attempts: 1)
        )
        // ICMP port unreachable comes back at once on a connected UDP socket.
        await #expect(throws: SocketError(.connectionRefused)) { try await resolver.addresses(for: "x.aemp.test") }
    }

    @Test func garbageRepliesAreReportedAsProtocolErrors() async throws {
        let server = try await FakeUDPNameserver.start { _ in [[1, 2, 3], [0xFF, 0xFF, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12]] }
        defer { Task { await server.stop() } }
        let error = await #expect(throws: SocketError(.protocolError)) {
            try await server.resolver().addresses(for: "x.aemp.test")
        }
        #expect(error?.message.contains("no valid DNS reply") == true)
    }

    @Test func wrongIDIsSkippedAndTheRightReplyUsed() async throws {
        let server = try await FakeUDPNameserver.start { query in
            let id = UInt16(query[0]) << 8 | UInt16(query[1])
            let address = FakeReply.type(of: query) == 1 ? [ip("192.0.2.77")] : []
            return [
                FakeReply.answer(query, addresses: [ip("192.0.2.66")], id: id &+ 1),
                [0, 1, 2],
                FakeReply.answer(query, addresses: address),
            ]
        }
        defer { Task { await server.stop() } }
        #expect(try await server.resolver().addresses(for: "x.aemp.test") == [ip("192.0.2.77")])
    }

    @Test func serverFailureIsENXIOAfterAllTries() async throws {
        let server = try await FakeUDPNameserver.start { query in
            var reply = FakeReply.answer(query, addresses: [])
            reply[3] = 0x82  // SERVFAIL
            return [reply]
        }
        defer { Task { await server.stop() } }
        let error = await #expect(throws: SocketError(.noSuchAddress)) {
            try await server.resolver(attempts: 2).addresses(for: "x.aemp.test")
        }
        #expect(error?.message.contains("response code 2") == true)
        #expect(try await server.queryCount() == 4)
    }

    @Test func secondServerAnswersWhenFirstIsSilent() async throws {
        let silent = try await FakeUDPNameserver.start()
        let good = try await FakeUDPNameserver.start { query in
            [FakeReply.answer(query, addresses: FakeReply.type(of: query) == 28 ? [ip("2001:db8::5")] : [])]
        }
        defer { Task { await silent.stop(); await good.stop() } }
        let resolver = DNSResolver(
            configuration: .init(nameservers: [silent.nameserver, good.nameserver], timeout: .milliseconds(150), attempts: 1)
        )
        #expect(try await resolver.addresses(for: "x.aemp.test") == [ip("2001:db8::5")])
    }

    @Test func truncatedReplyRetriesOverTCP() async throws {
        // UDP says "truncated"; a TCP listener on the same port gives the full answer.
        let (udp, tcp) = try await truncatingServerWithTCP(garbage: false)
        defer { Task { await udp.stop() } }
        defer { tcp.close(promise: nil) }
        #expect(try await udp.resolver().addresses(for: "x.aemp.test") == [ip("192.0.2.88")])
    }

    @Test func cnameWithoutTargetIsFollowedByANewQuery() async throws {
        let server = try await FakeUDPNameserver.start { query in
            switch (FakeReply.name(of: query), FakeReply.type(of: query)) {
            case ("start.example", _): [(try? FakeReply.cnameAnswer(query, target: "Middle.Example.")) ?? []]
            case ("middle.example", _): [(try? FakeReply.cnameAnswer(query, target: "end.example")) ?? []]
            case ("end.example", 1): [FakeReply.answer(query, addresses: [ip("192.0.2.44")])]
            default: [FakeReply.answer(query, addresses: [])]
            }
        }
        defer { Task { await server.stop() } }
        #expect(try await server.resolver().addresses(for: "start.example") == [ip("192.0.2.44")])
    }

    @Test func cnameLoopEndsWithENXIO() async throws {
        let server = try await FakeUDPNameserver.start { query in
            let target = FakeReply.name(of: query) == "a.example" ? "b.example" : "a.example"
            return [(try? FakeReply.cnameAnswer(query, target: target)) ?? []]
        }
        defer { Task { await server.stop() } }
        await #expect(throws: SocketError(.noSuchAddress)) { try await server.resolver().addresses(for: "a.example") }
        // a, b, then the loop is seen: two queries per family.
        #expect(try await server.queryCount() == 4)
    }

    @Test func ipv6Nameserver() async throws {
        let server = try await FakeUDPNameserver.start(host: "::1") { query in
            [FakeReply.answer(query, addresses: FakeReply.type(of: query) == 1 ? [ip("192.0.2.6")] : [])]
        }
        defer { Task { await server.stop() } }
        #expect(server.nameserver.address == .ipv6Loopback)
        #expect(try await server.resolver().addresses(for: "x.aemp.test") == [ip("192.0.2.6")])
    }

    @Test func malformedTCPReplyFailsAtOnce() async throws {
        let (udp, tcp) = try await truncatingServerWithTCP(garbage: true)
        defer { Task { await udp.stop() } }
        defer { tcp.close(promise: nil) }
        // A long timeout: the bad TCP reply must end the query without waiting for it.
        await #expect(throws: SocketError(.protocolError)) {
            try await udp.resolver(timeout: .seconds(30)).addresses(for: "x.aemp.test")
        }
    }

    @Test func searchSuffixesAreCaseInsensitive() async throws {
        let server = try await FakeUDPNameserver.start { query in
            [FakeReply.answer(query, addresses: FakeReply.type(of: query) == 1 ? [ip("192.0.2.3")] : [])]
        }
        defer { Task { await server.stop() } }
        let resolver = DNSResolver(
            configuration: .init(nameservers: [server.nameserver], timeout: .milliseconds(300), search: ["Mixed.Example"])
        )
        #expect(try await resolver.addresses(for: "Host") == [ip("192.0.2.3")])
    }

    @Test(arguments: ["", "."])
    func emptyNameIsEINVAL(_ name: String) async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        await #expect(throws: SocketError(.invalidArgument)) { try await server.resolver().addresses(for: name) }
        #expect(try await server.queryCount() == 0)
    }

    @Test func tcpFailureAfterTruncationIsReported() async throws {
        let udp = try await FakeUDPNameserver.start { query in
            [FakeReply.answer(query, addresses: [], truncated: true)]
        }
        defer { Task { await udp.stop() } }
        // Nothing listens on TCP at that port.
        await #expect(throws: SocketError(.connectionRefused)) { try await udp.resolver().addresses(for: "x.aemp.test") }
    }

    @Test func invalidNameIsEINVAL() async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        await #expect(throws: SocketError(.invalidArgument)) { try await server.resolver().addresses(for: "a..b") }
        #expect(try await server.queryCount() == 0)
    }

    @Test func cancellationStopsAWaitingQuery() async throws {
        let server = try await FakeUDPNameserver.start()
        defer { Task { await server.stop() } }
        let resolver = server.resolver(timeout: .seconds(30), attempts: 3)
        let task = Task { try await resolver.addresses(for: "x.aemp.test") }
        for _ in 0..<200 where try await server.queryCount() < 2 {
            try await Task.sleep(for: .milliseconds(10))
        }
        task.cancel()
        await #expect(throws: SocketError(.cancelled)) { try await task.value }
    }
}

/// Answers every framed TCP query with A 192.0.2.88 (nothing for other types), or with junk.
private final class TCPAnswerer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let garbage: Bool

    init(garbage: Bool = false) { self.garbage = garbage }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let query = Array(unwrapInboundIn(data).readableBytesView)
        let reply = garbage
            ? [0xDE, 0xAD]
            : FakeReply.answer(query, addresses: FakeReply.type(of: query) == 1 ? [ip("192.0.2.88")] : [])
        var out = context.channel.allocator.buffer(capacity: reply.count + 2)
        out.writeInteger(UInt16(reply.count))
        out.writeBytes(reply)
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }
}

/// A UDP nameserver that always answers "truncated", plus a TCP answerer on the same port number.
///
/// The TCP bind needs the UDP server's port, which a concurrent test's TCP socket may hold at that
/// moment, so a few UDP ports are tried (bounded).
private func truncatingServerWithTCP(garbage: Bool) async throws -> (FakeUDPNameserver, any Channel) {
    for _ in 0..<10 {
        let udp = try await FakeUDPNameserver.start { query in
            [FakeReply.answer(query, addresses: [], truncated: true)]
        }
        let tcp = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(DNSTCPFrameDecoder()), TCPAnswerer(garbage: garbage)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: udp.port).get()
        if let tcp { return (udp, tcp) }
        await udp.stop()
    }
    throw FixtureError("no UDP port whose TCP twin was free")
}
