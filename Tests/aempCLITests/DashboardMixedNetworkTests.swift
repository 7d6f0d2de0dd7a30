import AEMP
import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

@testable import aemp

/// A client node shaped like a Perl AnyEvent::MP 2.x node, on a scripted connection to its seed: it
/// greets with `provider=AE-2.01`, registers an `'l` entry, and answers what the dashboard's survey
/// asks: `time`, and `eval` of `up_nodes` and of the summary expression the way Perl answers them
/// (numbers as strings, an undefined queue), any other `eval` with a Perl syntax error; in secure
/// mode no `eval` at all, as Perl refuses silently. Strings go out as CBOR byte strings, as from Perl.
final class PerlShapedClient: Sendable {
    let nodeID: NodeID
    let secure: Bool
    /// Nodes it claims to be connected to besides its seed.
    let extraConnections: [String]
    private let peer = Mutex<ScriptedPeer?>(nil)
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ name: String, secure: Bool = false, extraConnections: [String] = []) {
        self.nodeID = NodeID(name)!
        self.secure = secure
        self.extraConnections = extraConnections
    }

    func join(seed: String, secret: String) async throws {
        let peer = try await ScriptedPeer.connect(to: seed)
        let greeting = try Greeting(
            parsing:
                "aemp;1;\(nodeID);tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json,storable;gproto=1;provider=\(Greeting.perlProvider);mproto=1")
        let result = try await peer.handshake(as: nodeID, secret: secret, greeting: greeting)
        let listeners: Value = .map([(Self.bytes(nodeID.rawValue), .array([Self.bytes("127.0.0.1:1")]))])
        try await peer.send([Self.bytes(""), Self.bytes("g_slave"), .map([(Self.bytes("'l"), listeners)])], framing: result.sendFraming)
        self.peer.withLock { $0 = peer }
        let seedID = result.peerNodeID.rawValue
        task.withLock { $0 = Task { await self.answer(peer, result, seed: seedID) } }
    }

    private func answer(_ peer: ScriptedPeer, _ result: HandshakeResult, seed: String) async {
        while let message = try? await peer.receive(framing: result.receiveFraming) {
            guard message.first?.stringValue == "", let tag = message.dropFirst().first?.stringValue else { continue }
            let arguments = Array(message.dropFirst(2))
            var reply: [Value]
            var extra: [Value] = []
            switch tag {
            case "time":
                reply = arguments
                extra = [.float(Date().timeIntervalSince1970)]
            case "eval" where !secure:
                reply = Array(arguments.dropFirst())
                switch arguments.first?.stringValue ?? "" {
                case Node.upNodesExpression: extra = [Self.bytes("")] + ([seed] + extraConnections).map(Self.bytes)
                case Node.nodeSummaryExpression: extra = [Self.bytes(""), Self.bytes("1700000000"), Self.bytes("7"), .null]
                default: extra = [Self.bytes("syntax error at (eval 12) line 1.\n")]
                }
            default:
                continue
            }
            guard let target = reply.first?.stringValue.flatMap(PortID.init), target.node.rawValue == seed else { continue }
            try? await peer.send([Self.bytes(target.name)] + reply.dropFirst() + extra, framing: result.sendFraming)
        }
    }

    func stop() {
        task.withLock { $0?.cancel() }
        peer.withLock { $0?.close() }
    }

    static func bytes(_ text: String) -> Value { .bytes(ByteBuffer(string: text)) }
}

/// The dashboard in a mixed network: Perl-shaped nodes connected to the dashboard's node show as
/// Perl nodes, with the figures a Perl node's `eval` gives, a secure-mode node without them, and the
/// connections a Perl node names (a client without a listener included).
@Suite("Dashboard in a mixed network with Perl-shaped nodes", .serialized)
struct DashboardMixedNetworkTests {
    @Test("Perl nodes are marked, their summary and connections shown; a secure-mode Perl node shows as such", .timeLimit(.minutes(1)))
    func perlNodes() async throws {
        let served = try await DashboardEndpointTests.Served()
        let seed = served.node.listenerAddresses[0]
        let open = PerlShapedClient("perl-open", extraConnections: ["perl-client"])
        try await open.join(seed: seed, secret: DashboardEndpointTests.secret)
        defer { open.stop() }
        let locked = PerlShapedClient("perl-secure", secure: true)
        try await locked.join(seed: seed, secret: DashboardEndpointTests.secret)
        defer { locked.stop() }

        var snapshot: DashboardSnapshot?
        let complete = try await DashboardEndpointTests.waitUntil(.seconds(20)) {
            let body = try DashboardEndpointTests.http(served.base + "/snapshot.json").body
            snapshot = try? JSONDecoder().decode(DashboardSnapshot.self, from: Data(body.utf8))
            let nodes = snapshot?.nodes ?? []
            return nodes.contains { $0.id == "perl-open" && $0.ports != nil }
                && nodes.contains { $0.id == "perl-secure" && $0.connections == "secure" }
                && nodes.contains { $0.id == "perl-client" }
        }
        #expect(complete, "\(String(describing: snapshot))")
        let nodes = Dictionary(uniqueKeysWithValues: (snapshot?.nodes ?? []).map { ($0.id, $0) })
        let perl = try #require(nodes["perl-open"])
        #expect(perl.implementation == "perl" && perl.provider == Greeting.perlProvider && perl.state == "up")
        #expect(perl.startedAt == 1_700_000_000 && perl.ports == 7 && perl.queuedBytes == nil)
        #expect(perl.connections == "known")
        let secure = try #require(nodes["perl-secure"])
        #expect(secure.implementation == "perl" && secure.state == "up" && secure.ports == nil)
        #expect(nodes["perl-client"]?.state == "nolistener")
        let dashboard = try #require(nodes[served.node.nodeID.rawValue])
        #expect(dashboard.isSelf && dashboard.isGlobal && dashboard.implementation == "swift")
        let links = (snapshot?.links ?? []).map { (Set([$0.from, $0.to]), $0.own) }
        #expect(links.contains { $0.0 == [served.node.nodeID.rawValue, "perl-open"] && $0.1 }, "\(links)")
        #expect(links.contains { $0.0 == [served.node.nodeID.rawValue, "perl-secure"] && $0.1 }, "\(links)")
        #expect(links.contains { $0.0 == ["perl-open", "perl-client"] && !$0.1 }, "\(links)")

        // The Perl node goes away: the page says so, with the reason.
        open.stop()
        let down = try await DashboardEndpointTests.waitUntil(.seconds(5)) {
            let body = try DashboardEndpointTests.http(served.base + "/snapshot.json").body
            let later = try? JSONDecoder().decode(DashboardSnapshot.self, from: Data(body.utf8))
            return later?.nodes.contains { $0.id == "perl-open" && $0.state == "down" && $0.reason != nil } == true
                && later?.events.contains { $0.kind == "down" && $0.node == "perl-open" } == true
        }
        #expect(down)
        await served.stop()
    }
}
