import AEMP
import AEMPCodecs
import AEMPHandle
import AEMPSocket
import AEMPTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

/// A node shaped like a Perl AnyEvent::MP 2.x node, on scripted connections: it greets with
/// `provider=AE-2.01`, registers its listener with a seed (`g_slave` with its `'l` entry, as Perl
/// does), and answers what `aemp trace` asks a Perl node: `time` and `eval` of
/// `AnyEvent::MP::Kernel::up_nodes` (not at all in secure mode, as Perl refuses silently), plus the
/// `snd` relays that liveness probes are. Strings go out as CBOR byte strings, as Perl sends them.
final class PerlShapedNode: Sendable {
    let nodeID: NodeID
    let secret: String
    let secure: Bool
    /// Nodes it claims to be connected to besides the ones it really is.
    let extraConnections: [String]
    private let connected = Mutex<Set<String>>([])
    private let server: Mutex<TCPServer?> = Mutex(nil)
    private let peers = Mutex<[ScriptedPeer]>([])

    init(_ name: String, secret: String, secure: Bool = false, extraConnections: [String] = []) {
        self.nodeID = NodeID(name)!
        self.secret = secret
        self.secure = secure
        self.extraConnections = extraConnections
    }

    var greeting: Greeting {
        try! Greeting(
            parsing:
                "aemp;1;\(nodeID);tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;gproto=1;provider=\(Greeting.perlProvider);mproto=1")
    }

    /// Listens on loopback and returns the address.
    func listen() throws -> String {
        let server = try tcpServer(host: "127.0.0.1", port: 0) { [self] connection in
            let peer = ScriptedPeer.adopt(Handle(channel: connection.channel))
            Task { await self.serve(peer) }
        }
        self.server.withLock { $0 = server }
        return "127.0.0.1:\(server.localPort)"
    }

    /// Dials the seed and registers `listeners` as this node's `'l` entry (and `ghosts`' too).
    func join(seed: String, listeners: [String], ghosts: [String: [String]] = [:]) async throws {
        let peer = try await ScriptedPeer.connect(to: seed)
        let result = try await peer.handshake(as: nodeID, secret: secret, greeting: greeting)
        var family: [(Value, Value)] = [(Self.bytes(nodeID.rawValue), .array(listeners.map(Self.bytes)))]
        for (ghost, addresses) in ghosts { family.append((Self.bytes(ghost), .array(addresses.map(Self.bytes)))) }
        try await peer.send(
            [Self.bytes(""), Self.bytes("g_slave"), .map([(Self.bytes("'l"), .map(family))])], framing: result.sendFraming)
        Task { await self.messages(on: peer, result) }
    }

    /// Runs the handshake on an accepted connection, then answers its messages.
    private func serve(_ peer: ScriptedPeer) async {
        guard let result = try? await peer.handshake(as: nodeID, secret: secret, greeting: greeting) else {
            peer.close()
            return
        }
        await messages(on: peer, result)
    }

    private func messages(on peer: ScriptedPeer, _ result: HandshakeResult) async {
        let remote = result.peerNodeID.rawValue
        peers.withLock { $0.append(peer) }
        connected.withLock { _ = $0.insert(remote) }
        defer { connected.withLock { _ = $0.remove(remote) } }
        while let message = try? await peer.receive(framing: result.receiveFraming) {
            guard message.first?.stringValue == "", let tag = message.dropFirst().first?.stringValue else { continue }
            let arguments = Array(message.dropFirst(2))
            var reply: [Value]?
            var extra: [Value] = []
            switch tag {
            case "time":
                reply = arguments
                extra = [.float(Date().timeIntervalSince1970)]
            case "eval" where !secure:
                reply = Array(arguments.dropFirst())
                let code = arguments.first?.stringValue ?? ""
                if code == Node.upNodesExpression {
                    let names = connected.withLock { $0.sorted() } + extraConnections
                    extra = [Self.bytes("")] + names.map(Self.bytes)
                } else {
                    extra = [Self.bytes("syntax error at (eval 12) line 1.\n")]
                }
            case "snd":
                reply = arguments
            default:
                continue
            }
            // `snd @reply, @extra`: only replies to ports on the asking node travel back here.
            guard let reply, let target = reply.first?.stringValue.flatMap(PortID.init), target.node.rawValue == remote
            else { continue }
            try? await peer.send([Self.bytes(target.name)] + reply.dropFirst() + extra, framing: result.sendFraming)
        }
    }

    func stop() {
        server.withLock { $0?.cancel() }
        for peer in peers.withLock({ $0 }) { peer.close() }
    }

    static func bytes(_ text: String) -> Value { .bytes(ByteBuffer(string: text)) }
}

@Suite("Node: network trace")
struct TraceTests {
    static let secret = "trace-test-secret"

    @Test func mixedNetworkWithPerlNodes() async throws {
        let probe = try await Node.start(NodeConfiguration(nodeID: "trace-probe", binds: ["127.0.0.1:0"], secret: "x"))
        let seedAddress = probe.listenerAddresses[0]
        await probe.shutdown()
        let seed = try await Node.start(
            NodeConfiguration(nodeID: "trace-seed", binds: [seedAddress], seeds: [seedAddress], secret: Self.secret))

        // A Perl node that answers everything, claiming two more connections: a node whose listener
        // is gone (a stale 'l entry) and a client without a listener.
        let ghostProbe = try await Node.start(NodeConfiguration(nodeID: "ghost-probe", binds: ["127.0.0.1:0"], secret: "x"))
        let deadAddress = ghostProbe.listenerAddresses[0]
        await ghostProbe.shutdown()
        let perl = PerlShapedNode("perl-open", secret: Self.secret, extraConnections: ["perl-ghost", "perl-client"])
        try await perl.join(seed: seedAddress, listeners: [try perl.listen()], ghosts: ["perl-ghost": [deadAddress]])
        defer { perl.stop() }
        // A Perl node in secure mode: it answers `time` but not `eval`.
        let secure = PerlShapedNode("perl-secure", secret: Self.secret, secure: true)
        try await secure.join(seed: seedAddress, listeners: [try secure.listen()])
        defer { secure.stop() }
        let deadline = ContinuousClock.now + .seconds(10)
        while await seed.upNodes().count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }

        let tracer = try await Node.start(
            NodeConfiguration(
                nodeID: "tracer", binds: ["127.0.0.1:0"], seeds: [seedAddress], secret: Self.secret,
                connectInterval: .milliseconds(800)))
        while await tracer.databaseMaster() == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }

        let trace = await tracer.traceNetwork(from: seed.nodeID, timeout: .seconds(2))
        #expect(trace.start == seed.nodeID && trace.tracer == tracer.nodeID && trace.listenersKnown)
        let byID = Dictionary(uniqueKeysWithValues: trace.nodes.map { ($0.nodeID.rawValue, $0) })
        #expect(trace.nodes.map(\.nodeID.rawValue) == ["trace-seed", "perl-open", "perl-secure", "perl-client", "perl-ghost"])

        let seedNode = try #require(byID["trace-seed"])
        #expect(seedNode.status == .reachable && seedNode.implementation == .swift && seedNode.isGlobal)
        #expect(seedNode.provider == Greeting.defaultProvider)
        #expect(seedNode.connections == .known([perl.nodeID, secure.nodeID]))
        #expect(seedNode.listeners == [seedAddress])

        let open = try #require(byID["perl-open"])
        #expect(open.status == .reachable && open.implementation == .perl && !open.isGlobal)
        #expect(open.provider == "AE-2.01")
        #expect(open.connections == .known(["perl-client", "perl-ghost", "trace-seed"].map { NodeID($0)! }))
        #expect(open.seenBy == [seed.nodeID])

        let locked = try #require(byID["perl-secure"])
        #expect(locked.status == .reachable && locked.implementation == .perl)
        #expect(locked.connections == .unknown("secure mode"))

        let client = try #require(byID["perl-client"])
        #expect(client.status == .noListener && client.connections == nil && client.seenBy == [perl.nodeID])

        let ghost = try #require(byID["perl-ghost"])
        if case .unreachable(let reason) = ghost.status {
            #expect(reason.hasPrefix("connect timeout (last attempt: ") && reason.contains("ECONNREFUSED"), "\(reason)")
        } else {
            Issue.record("perl-ghost: \(ghost.status)")
        }
        #expect(ghost.listeners == [deadAddress] && ghost.connections == nil)
        await tracer.shutdown()
        await seed.shutdown()
    }

    @Test func swiftNodeAnswersUpNodesWithoutAnEvaluator() async throws {
        let a = try await Node.start(NodeConfiguration(nodeID: "upnodes-a", binds: ["127.0.0.1:0"], secret: Self.secret))
        let b = try await Node.start(
            NodeConfiguration(nodeID: "upnodes-b", binds: ["127.0.0.1:0"], seeds: a.listenerAddresses, secret: Self.secret))
        let deadline = ContinuousClock.now + .seconds(10)
        while await a.upNodes().isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        for code in [Node.upNodesExpression, " AnyEvent::MP::Kernel::up_nodes(); "] {
            let reply = try await b.call(PortID.nodePort(of: a.nodeID), ["eval", .text(code)], timeout: .seconds(5))
            #expect(reply == ["", "upnodes-b"])
        }
        // Other code is still refused without an evaluator, and goes to the evaluator when there is one.
        let refused = try await b.call(PortID.nodePort(of: a.nodeID), ["eval", "1 + 1"], timeout: .seconds(5))
        #expect(refused.first?.stringValue?.hasPrefix("eval is not supported by this node") == true)
        a.setEvaluator { _ in .success([2]) }
        _ = await a.upNodes()  // the evaluator is in place once a call made after it has run on a's loop
        #expect(try await b.call(PortID.nodePort(of: a.nodeID), ["eval", "1 + 1"], timeout: .seconds(5)) == ["", 2])
        #expect(try await b.call(PortID.nodePort(of: a.nodeID), ["eval", .text(Node.upNodesExpression)], timeout: .seconds(5)) == ["", "upnodes-b"])

        let peer = try #require(await b.peerInfo(a.nodeID))
        #expect(peer.implementation == .swift && peer.direction == .outgoing && peer.address == a.listenerAddresses[0])
        #expect(await a.peerInfo(b.nodeID)?.direction == .incoming)
        #expect(await b.peers().map(\.nodeID) == [a.nodeID])
        #expect(await b.peerInfo(NodeID("nobody")!) == nil)
        await b.shutdown()
        await a.shutdown()
    }

    @Test func implementationFromProvider() {
        #expect(NodeImplementation(provider: "AE-2.01") == .perl)
        #expect(NodeImplementation(provider: "AE-1.30") == .perl)
        #expect(NodeImplementation(provider: Greeting.defaultProvider) == .swift)
        #expect(NodeImplementation(provider: "erlang-aemp/0.1") == .other("erlang-aemp/0.1"))
        #expect(NodeImplementation(provider: nil) == .unknown && NodeImplementation(provider: "") == .unknown)
        #expect(Greeting.defaultProvider == "swift-aemp/AE-2.01")
    }
}
