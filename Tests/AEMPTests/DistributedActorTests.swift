import AEMP
import AEMPCodecs
import AEMPDistributed
import AEMPTestSupport
import Distributed
import NIOCore
import Testing

/// A job for the typed-argument tests: a CBOR map `{name, tries}` on the wire.
struct Job: Codable, Sendable, Equatable {
    var name: String
    var tries: Int
}

/// A `Codable` error: arrives as itself.
enum QueueError: Error, Codable, Equatable {
    case empty(queue: String)
}

/// An error that is not `Codable`: arrives as a `RemoteCallError` with its description.
struct OpaqueFailure: Error, CustomStringConvertible {
    var description: String { "the disk is on fire" }
}

distributed actor Greeter {
    typealias ActorSystem = NodeActorSystem

    private var greeted: [String] = []

    distributed func greet(name: String) -> String {
        greeted.append(name)
        return "Hello, \(name)!"
    }

    distributed func greet(times: Int, name: String) -> [String] {
        Array(repeating: "Hello, \(name)!", count: times)
    }

    distributed func history() -> [String] { greeted }

    distributed func forget() { greeted = [] }

    distributed func schedule(_ job: Job) -> Job { Job(name: job.name.uppercased(), tries: job.tries + 1) }

    distributed func take(from queue: String) throws -> Job { throw QueueError.empty(queue: queue) }

    distributed func burn() throws { throw OpaqueFailure() }

    distributed func sleep(milliseconds: Int) async throws -> Int {
        try await Task.sleep(for: .milliseconds(milliseconds))
        return milliseconds
    }

    /// Calls back the actor it is given: references travel as port IDs.
    distributed func introduce(to other: Greeter) async throws -> String {
        try await other.greet(name: "a friend of \(id)")
    }

    distributed func echo<T: Codable & Sendable>(_ value: T) -> T { value }
}

@Suite("Distributed actors on a node: calls, errors, lifetimes, the Perl shape")
struct DistributedActorTests {
    /// Two connected nodes, each with an actor system.
    static func systems(framing: Framing? = nil) async throws -> (server: NodeActorSystem, client: NodeActorSystem) {
        let framings = framing.map { [$0] } ?? Framing.supported
        let (seed, client) = try await NodeNetworkTests.pair(seedFramings: framings, clientFramings: framings)
        return (NodeActorSystem(node: seed), NodeActorSystem(node: client))
    }

    static func shutdown(_ systems: (server: NodeActorSystem, client: NodeActorSystem)) async {
        await NodeNetworkTests.shutdown(systems.client.node, systems.server.node)
    }

    @Test(
        "a remote call returns values, structs, arrays and Void; overloads are told apart", .timeLimit(.minutes(1)),
        arguments: [Framing.cbor, .json])
    func remoteCalls(framing: Framing) async throws {
        let systems = try await Self.systems(framing: framing)
        let greeter = Greeter(actorSystem: systems.server)
        #expect(greeter.id.node == systems.server.node.nodeID)
        let remote = try Greeter.resolve(id: greeter.id, using: systems.client)
        #expect(__isRemoteActor(remote))
        #expect(try await remote.greet(name: "Ann") == "Hello, Ann!")
        #expect(try await remote.greet(times: 2, name: "Bo") == ["Hello, Bo!", "Hello, Bo!"])
        #expect(try await remote.schedule(Job(name: "resize", tries: 2)) == Job(name: "RESIZE", tries: 3))
        #expect(try await remote.history() == ["Ann"])
        try await remote.forget()
        #expect(try await remote.history() == [])
        #expect(try await remote.echo([1, 2, 3]) == [1, 2, 3])
        #expect(try await remote.echo(Job(name: "generic", tries: 0)) == Job(name: "generic", tries: 0))
        await Self.shutdown(systems)
    }

    @Test("an actor on the node's loop (loopExecutor) serves calls there, in order, errors included", .timeLimit(.minutes(1)))
    func loopActor() async throws {
        let systems = try await Self.systems()
        let counter = LoopCounter(actorSystem: systems.server)
        let remote = try LoopCounter.resolve(id: counter.id, using: systems.client)
        #expect(try await remote.onLoop())
        for step in 1...100 { #expect(try await remote.increment(by: 1) == step) }
        await #expect(throws: QueueError.empty(queue: "loop")) { try await remote.fail() }
        // Concurrent callers: every increment is applied once.
        try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 { group.addTask { try await remote.increment(by: 2) } }
            var results: Set<Int> = []
            for try await result in group { results.insert(result) }
            #expect(results == Set((0..<50).map { 102 + 2 * $0 }))
        }
        await Self.shutdown(systems)
    }

    @Test("resolving a local ID gives the actor itself; another type is refused", .timeLimit(.minutes(1)))
    func localResolve() async throws {
        let node = try await Node.start(NodeNetworkTests.configuration("dist-local-\(UInt32.random(in: 0...UInt32.max))"))
        let system = NodeActorSystem(node: node)
        let greeter = Greeter(actorSystem: system)
        let resolved = try Greeter.resolve(id: greeter.id, using: system)
        #expect(resolved === greeter)
        #expect(!__isRemoteActor(resolved))
        let other = Counter(actorSystem: system)
        #expect(throws: RemoteCallError.self) { _ = try Greeter.resolve(id: other.id, using: system) }
        await node.shutdown()
    }

    @Test("actor references travel as port IDs and can be called back", .timeLimit(.minutes(1)))
    func actorArguments() async throws {
        let systems = try await Self.systems()
        let server = Greeter(actorSystem: systems.server)
        let local = Greeter(actorSystem: systems.client)
        let remote = try Greeter.resolve(id: server.id, using: systems.client)
        #expect(try await remote.introduce(to: local) == "Hello, a friend of \(server.id)!")
        #expect(try await local.history() == ["a friend of \(server.id)"])
        await Self.shutdown(systems)
    }

    @Test("a Codable error arrives typed; any other error as a RemoteCallError with its text", .timeLimit(.minutes(1)))
    func thrownErrors() async throws {
        let systems = try await Self.systems()
        let greeter = Greeter(actorSystem: systems.server)
        let remote = try Greeter.resolve(id: greeter.id, using: systems.client)
        await #expect(throws: QueueError.empty(queue: "night")) { _ = try await remote.take(from: "night") }
        do {
            try await remote.burn()
            Issue.record("burn() returned")
        } catch let error as RemoteCallError {
            #expect(error.code == .remoteError)
            #expect(error.message == "the disk is on fire")
            #expect(error.errorType == String(reflecting: OpaqueFailure.self))
        }
        await Self.shutdown(systems)
    }

    @Test("a deinitialized actor kills its port: monitors fire, calls throw no_such_port", .timeLimit(.minutes(1)))
    func deinitKillsThePort() async throws {
        let systems = try await Self.systems()
        var greeter: Greeter? = Greeter(actorSystem: systems.server)
        let id = greeter!.id
        let remote = try Greeter.resolve(id: id, using: systems.client)
        #expect(try await remote.greet(name: "first") == "Hello, first!")
        let reasons = Inbox<KillReason>()
        let monitor = systems.client.node.monitor(id) { reasons.put($0) }
        _ = try await systems.client.node.call(PortID("\(id.node.rawValue)#")!, ["time"], timeout: .seconds(5))
        greeter = nil
        #expect(try await reasons.next(within: .seconds(5)) == .normal)
        do {
            _ = try await remote.greet(name: "again")
            Issue.record("a call to a dead actor returned")
        } catch let error as CallError {
            guard case .portDied(let reason) = error else { throw error }
            #expect(reason.tag == KillReason.noSuchPortTag)
        }
        _ = monitor
        await Self.shutdown(systems)
    }

    @Test("a slow method times out with the call timeout; a lost node fails calls with transport_error", .timeLimit(.minutes(1)))
    func timeoutsAndLostNodes() async throws {
        let systems = try await Self.systems()
        let greeter = Greeter(actorSystem: systems.server)
        let remote = try Greeter.resolve(id: greeter.id, using: systems.client)
        let started = ContinuousClock.now
        await #expect(throws: CallError.timeout(.milliseconds(200))) {
            try await NodeActorSystem.withCallTimeout(.milliseconds(200)) {
                _ = try await remote.sleep(milliseconds: 3_000)
            }
        }
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(try await remote.sleep(milliseconds: 10) == 10)

        let pending = Task { try await remote.sleep(milliseconds: 10_000) }
        try await Task.sleep(for: .milliseconds(100))
        await systems.server.node.shutdown()
        do {
            _ = try await pending.value
            Issue.record("a call to a lost node returned")
        } catch let error as CallError {
            guard case .portDied(let reason) = error else { throw error }
            #expect(reason.tag == KillReason.transportErrorTag)
        }
        await systems.client.node.shutdown()
    }

    @Test("a plain cal (the Perl shape) calls by base name or selector and gets (1, result) or (0, message, ...)", .timeLimit(.minutes(1)))
    func perlShapeThroughCall() async throws {
        let systems = try await Self.systems()
        let greeter = Greeter(actorSystem: systems.server)
        let node = systems.client.node
        #expect(try await node.call(greeter.id, ["history"], timeout: .seconds(5)) == [1, .array([])])
        #expect(try await node.call(greeter.id, ["greet(name:)", "Ann"], timeout: .seconds(5)) == [1, "Hello, Ann!"])
        #expect(try await node.call(greeter.id, ["forget"], timeout: .seconds(5)) == [1])
        #expect(
            try await node.call(greeter.id, ["schedule", ["name": "x", "tries": 1]], timeout: .seconds(5))
                == [1, ["name": "X", "tries": 2]])

        // "greet" has two overloads: the error lists both selectors.
        let ambiguous = try await node.call(greeter.id, ["greet", "Ann"], timeout: .seconds(5))
        #expect(ambiguous.first == 0)
        #expect(ambiguous[1].stringValue?.contains("choose one of greet(name:), greet(times:name:)") == true)
        let unknown = try await node.call(greeter.id, ["fly"], timeout: .seconds(5))
        #expect(unknown.first == 0)
        #expect(unknown[1].stringValue?.hasPrefix("AEMPTests.Greeter has no distributed method \"fly\"") == true)
        let missing = try await node.call(greeter.id, ["schedule"], timeout: .seconds(5))
        #expect(missing.first == 0)
        #expect(missing[1].stringValue?.contains("argument 1 (Job) is missing") == true)
        let wrongType = try await node.call(greeter.id, ["schedule", "not a job"], timeout: .seconds(5))
        #expect(wrongType[1].stringValue?.contains("argument 1 is not a Job") == true)
        let thrown = try await node.call(greeter.id, ["take", "night"], timeout: .seconds(5))
        #expect(thrown.count == 5)
        #expect(thrown[0] == 0)
        #expect(thrown[2] == .text(String(reflecting: QueueError.self)))
        #expect(thrown[4] == ["empty": ["queue": "night"]])
        await Self.shutdown(systems)
    }

    @Test("Swift typed errors for protocol failures: unknown method, bad arguments", .timeLimit(.minutes(1)))
    func protocolErrorsAreTyped() async throws {
        let systems = try await Self.systems()
        let counter = Counter(actorSystem: systems.server)
        // A Greeter reference to a Counter: the method is unknown there.
        let wrong = try Greeter.resolve(id: counter.id, using: systems.client)
        do {
            _ = try await wrong.history()
            Issue.record("an unknown method returned")
        } catch let error as RemoteCallError {
            #expect(error.code == .unknownMethod)
            #expect(error.message.contains("choose one of increment(by:)"))
        }
        await Self.shutdown(systems)
    }

    @Test("actors register in a global database family and are found from another node until they die", .timeLimit(.minutes(1)))
    func discovery() async throws {
        let systems = try await Self.systems()
        let family = "greeters-\(UInt32.random(in: 0...UInt32.max))"
        let finder = Task { try await systems.client.firstActor(Greeter.self, in: family, timeout: .seconds(10)) }
        try await Task.sleep(for: .milliseconds(50))
        var greeter: Greeter? = Greeter(actorSystem: systems.server)
        let id = greeter!.id
        systems.server.register(greeter!, in: family, value: "v1")
        let found = try await finder.value
        #expect(found.id == id)
        #expect(try await found.greet(name: "finder") == "Hello, finder!")
        #expect(try await systems.client.actors(Greeter.self, in: family, timeout: .seconds(5)).map(\.id) == [id])
        greeter = nil
        try await NodeNetworkTests.waitUntil {
            (try? await systems.client.actors(Greeter.self, in: family, timeout: .seconds(5)).isEmpty) == true
        }
        await #expect(throws: CallError.timeout(.milliseconds(300))) {
            _ = try await systems.client.firstActor(Greeter.self, in: family, timeout: .milliseconds(300))
        }
        await Self.shutdown(systems)
    }

    @Test(
        "a scripted Perl-shaped peer calls an actor with cal's frame and mon's it",
        .timeLimit(.minutes(1)), arguments: [Framing.cbor, .json])
    func scriptedPerlPeer(framing: Framing) async throws {
        let node = try await Node.start(NodeNetworkTests.configuration("dist-perl-\(UInt32.random(in: 0...UInt32.max))"))
        let system = NodeActorSystem(node: node)
        var greeter: Greeter? = Greeter(actorSystem: system)
        let id = greeter!.id
        let peerID = NodeID("perl-caller-\(UInt32.random(in: 0...UInt32.max))")!
        let peer = try await ScriptedPeer.connect(to: node.listenerAddresses[0])
        try await peer.handshake(as: peerID, secret: NodeNetworkTests.secret, framings: [framing])
        // Perl: mon $greeter (the kernel's mon1), then cal $greeter, "greet", "Perl", $cb
        try await peer.send(["", "mon1", .text(id.name)], framing: framing)
        try await peer.send([.text(id.name), "greet(name:)", "Perl", .text("\(peerID.rawValue)#r1")], framing: framing)
        let reply = try await peer.receive(framing: framing, until: { $0.first == "r1" })
        #expect(reply == ["r1", 1, "Hello, Perl!"])
        greeter = nil
        let kill = try await peer.receive(framing: framing, until: { $0.count >= 2 && $0[1] == "kil0" })
        #expect(kill == ["", "kil0", .text(id.name)])
        peer.close()
        await node.shutdown()
    }
}

/// An actor on its node's event loop.
distributed actor LoopCounter {
    typealias ActorSystem = NodeActorSystem
    nonisolated var unownedExecutor: UnownedSerialExecutor { actorSystem.loopExecutor }
    private var count = 0
    distributed func increment(by step: Int) -> Int {
        count += step
        return count
    }
    /// Whether the method runs on the node's loop thread.
    distributed func onLoop() -> Bool { actorSystem.node.eventLoop.inEventLoop }
    distributed func fail() throws { throw QueueError.empty(queue: "loop") }
}

distributed actor Counter {
    typealias ActorSystem = NodeActorSystem
    private var count = 0
    distributed func increment(by step: Int) -> Int {
        count += step
        return count
    }
}
