import AEMP
import AEMPCodecs
import AEMPTestSupport
import Testing

/// A node without listeners or seeds: ports, monitors, the kernel on the own node port, calls.
@Suite("Node: ports, monitors and kernel on one node")
struct NodeLocalTests {
    static func makeNode(secure: Bool = false) async throws -> Node {
        try await Node.start(NodeConfiguration(nodeID: "local", binds: [], secure: secure))
    }

    struct Received: Sendable {
        var port: PortID
        var source: NodeID
        var message: [Value]
    }

    @Test func portReceivesMessagesInOrderWithContext() async throws {
        let node = try await Self.makeNode()
        defer { Task { await node.shutdown() } }
        let inbox = Inbox<Received>()
        let port = node.port { context, message in
            inbox.put(Received(port: context.port, source: context.sourceNode, message: message))
        }
        #expect(port.node == node.nodeID)
        for index in 0..<500 { node.send(port, [.int(Int64(index)), "x"]) }
        let all = try await inbox.next(500)
        #expect(all.map { $0.message[0] } == (0..<500).map { Value.int(Int64($0)) })
        #expect(all.allSatisfy { $0.port == port && $0.source == node.nodeID })
    }

    @Test func tagCallbacksGetTheRestAndDefaultGetsTheWhole() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<[Value]>()
        let port = node.port { _, message in inbox.put(["default"] + message) }
        node.receive(port, tag: "ping") { _, rest in inbox.put(["tag"] + rest) }
        node.send(port, "ping", 1)
        node.send(port, "other", 2)
        #expect(try await inbox.next(2) == [["tag", 1], ["default", "other", 2]])
        // Delivery to local ports is asynchronous (next loop tick); callbacks change at once.
        node.receive(port, tag: "ping", nil)
        node.send(port, "ping", 3)
        #expect(try await inbox.next() == ["default", "ping", 3])
        await node.shutdown()
    }

    @Test func unknownPortsDropSilently() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<[Value]>()
        node.send(PortID(node: node.nodeID, name: "nope"), "lost")
        let port = node.port { _, message in inbox.put(message) }
        node.send(port, "after")
        #expect(try await inbox.next() == ["after"])
        await node.shutdown()
    }

    /// The node remembers the port it delivered to last; alternating ports, a killed port and a
    /// port made after it are all delivered to (or dropped) correctly.
    @Test func deliveryAfterAlternatingAndKilledPorts() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<[Value]>()
        let first = node.port { _, message in inbox.put(["first"] + message) }
        let second = node.port { _, message in inbox.put(["second"] + message) }
        node.send(first, 1)
        node.send(second, 2)
        node.send(first, 3)
        #expect(try await inbox.next(3) == [["first", 1], ["second", 2], ["first", 3]])
        node.kill(first)
        node.send(first, "lost")
        let third = node.port { _, message in inbox.put(["third"] + message) }
        node.send(third, 4)
        node.send(first, "lost too")
        node.send(second, 5)
        #expect(try await inbox.next(2) == [["third", 4], ["second", 5]])
        await node.shutdown()
    }

    @Test func portWithoutCallbackIsKilledWithUnhandledMessage() async throws {
        let node = try await Self.makeNode()
        let reasons = Inbox<KillReason>()
        let port = node.port()
        let guardian = node.monitor(port) { reasons.put($0) }
        node.send(port, "some-tag-that-is-longer-than-thirty-characters", 1)
        let reason = try await reasons.next()
        #expect(reason.values == ["unhandled_message", "no callback found for message 'some-tag-that-is-longer-than-t'"])
        _ = guardian
        await node.shutdown()
    }

    struct Boom: Error, CustomStringConvertible {
        var description: String { "boom happened\n" }
    }

    @Test func throwingCallbackKillsThePortWithDie() async throws {
        let node = try await Self.makeNode()
        let reasons = Inbox<KillReason>()
        let port = node.port { _, _ in throw Boom() }
        let guardian = node.monitor(port) { reasons.put($0) }
        node.send(port, "x")
        #expect(try await reasons.next().values == ["die", "boom happened"])
        // The port is gone: a second message is dropped, its monitor does not fire again.
        node.send(port, "x")
        _ = guardian
        await node.shutdown()
    }

    @Test func monitorFormsAndReasons() async throws {
        let node = try await Self.makeNode()
        let events = Inbox<String>()
        let watched = node.port { _, _ in }
        let victim = node.port { _, _ in }
        let receiver = node.port { _, message in events.put("receiver \(message)") }
        let g1 = node.monitor(watched) { events.put("callback \($0.values)") }
        let g2 = node.monitor(watched, killing: victim)
        let g3 = node.monitor(watched, sending: ["died"], to: receiver)
        let g4 = node.monitor(victim) { events.put("victim \($0.values)") }
        node.kill(watched)  // normal: the kill form does not propagate
        #expect(try await events.next(2).sorted() == ["callback []", "receiver [\"died\"]"])

        let second = node.port { _, _ in }
        let g5 = node.monitor(second, killing: victim)
        node.kill(second, reason: .user(["oops", 42]))
        #expect(try await events.next() == "victim [\"oops\", 42]")
        _ = (g1, g2, g3, g4, g5)
        await node.shutdown()
    }

    @Test func contextMonitorKillsTheCurrentPortOnAbnormalDeath() async throws {
        let node = try await Self.makeNode()
        let reasons = Inbox<KillReason>()
        let watched = node.port { _, _ in }
        let holder = Inbox<MonitorGuard>()
        let watcher = node.port { context, _ in holder.put(context.monitor(watched)) }
        let g = node.monitor(watcher) { reasons.put($0) }
        node.send(watcher, "watch")
        let monitorGuard = try await holder.next()
        node.kill(watched, reason: .user(["crashed"]))
        #expect(try await reasons.next().values == ["crashed"])
        _ = (g, monitorGuard)
        await node.shutdown()
    }

    @Test func monitorOfMissingLocalPortFiresNoSuchPort() async throws {
        let node = try await Self.makeNode()
        let reasons = Inbox<KillReason>()
        let missing = PortID(node: node.nodeID, name: "missing")
        let guardian = node.monitor(missing) { reasons.put($0) }
        #expect(try await reasons.next().values == ["no_such_port", "cannot monitor nonexistent port", "local#missing"])
        _ = guardian
        await node.shutdown()
    }

    @Test func cancelledAndDroppedGuardsDoNotFire() async throws {
        let node = try await Self.makeNode()
        let events = Inbox<String>()
        let port = node.port { _, _ in }
        let cancelled = node.monitor(port) { _ in events.put("cancelled fired") }
        cancelled.cancel()
        cancelled.cancel()
        do {
            _ = node.monitor(port) { _ in events.put("dropped fired") }
        }
        let kept = node.monitor(port) { _ in events.put("kept fired") }
        node.kill(port)
        #expect(try await events.next() == "kept fired")
        _ = kept
        // A marker through the same loop: anything the cancelled monitors did would be before it.
        let marker = node.port { _, _ in events.put("marker") }
        node.send(marker, "m")
        #expect(try await events.next() == "marker")
        #expect(events.snapshot.isEmpty)
        await node.shutdown()
    }

    @Test func keepAliveHoldsObjectsUntilThePortDies() async throws {
        final class Token: Sendable {
            let inbox: Inbox<String>
            init(_ inbox: Inbox<String>) { self.inbox = inbox }
            deinit { inbox.put("released") }
        }
        let node = try await Self.makeNode()
        let events = Inbox<String>()
        let port = node.port { _, _ in }
        let guardian = node.keepAlive([Token(events)], whileAlive: port)
        node.kill(port)
        #expect(try await events.next() == "released")
        _ = guardian
        await node.shutdown()
    }

    @Test func portNamesAreNeverReused() async throws {
        let node = try await Self.makeNode()
        var seen = Set<String>()
        for _ in 0..<1000 {
            let port = node.port()
            #expect(seen.insert(port.name).inserted)
            node.kill(port)
        }
        await node.shutdown()
    }

    // MARK: Kernel on the own node port

    @Test func kernelTimeCanAndSnd() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<[Value]>()
        let reply = node.port { _, message in inbox.put(message) }
        let nodePort = PortID.nodePort(of: node.nodeID)
        node.send(nodePort, "time", .text(reply.description), "t")
        let time = try await inbox.next()
        #expect(time.first == "t")
        #expect((time.last?.doubleValue ?? 0) > 1_700_000_000)
        node.send(nodePort, "can", "eval", .text(reply.description), "can_eval")
        #expect(try await inbox.next() == ["can_eval", "1"])
        node.send(nodePort, "can", "no::such", .text(reply.description), "can_x")
        #expect(try await inbox.next() == ["can_x", ""])
        node.sendOn(node.nodeID, [.text(reply.description), "relayed", "via snd_on"])
        #expect(try await inbox.next() == ["relayed", "via snd_on"])
        node.send(nodePort, "devnull", 1)
        node.send(nodePort, "")
        await node.shutdown()
    }

    @Test func evalIsRefusedByDefaultAndPluggable() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<[Value]>()
        let reply = node.port { _, message in inbox.put(message) }
        node.evalOn(node.nodeID, "1 + 2", reply: [.text(reply.description), "r"])
        let refused = try await inbox.next()
        #expect(refused.count == 2 && refused[0] == "r")
        #expect(refused[1].stringValue?.contains("not supported") == true)
        node.setEvaluator { code in code == "1 + 2" ? .success([3]) : .failure(EvalError("syntax error\n")) }
        node.evalOn(node.nodeID, "1 + 2", reply: [.text(reply.description), "ok"])
        #expect(try await inbox.next() == ["ok", "", 3])
        node.evalOn(node.nodeID, "1 +", reply: [.text(reply.description), "bad"])
        #expect(try await inbox.next() == ["bad", "syntax error\n"])
        await node.shutdown()
    }

    @Test func secureModeRefusesEvalAndFunctions() async throws {
        let node = try await Self.makeNode(secure: true)
        let inbox = Inbox<[Value]>()
        let reply = node.port { _, message in inbox.put(message) }
        node.setEvaluator { _ in .success([1]) }
        node.registerFunction("MyApp::f") { _, _ in inbox.put(["function ran"]) }
        node.evalOn(node.nodeID, "1", reply: [.text(reply.description), "e"])
        node.sendToFunction(on: node.nodeID, "MyApp::f", [])
        node.send(PortID.nodePort(of: node.nodeID), "time", .text(reply.description), "marker")
        // Local delivery keeps order: the marker is the first thing to arrive.
        #expect(try await inbox.next().first == "marker")
        #expect(inbox.snapshot.isEmpty)
        await node.shutdown()
    }

    @Test func registeredFunctionsAndUnknownNames() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<String>()
        node.registerFunction("main::stf_target") { context, arguments in
            inbox.put("\(context.sourceNode) \(context.port.map(\.description) ?? "-") \(arguments)")
        }
        node.sendToFunction(on: node.nodeID, "no::such::function", [1])
        node.sendToFunction(on: node.nodeID, "main::stf_target", ["x", 42])
        #expect(try await inbox.next() == "local - [\"x\", 42]")
        await node.shutdown()
    }

    @Test func spawnRunsTheFunctionInTheNewPort() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<String>()
        let reasons = Inbox<KillReason>()
        node.registerFunction("main::spawn_echo") { context, arguments in
            let port = try #require(context.port)
            inbox.put("spawned \(port.name) \(arguments)")
            context.node.receive(port) { _, message in inbox.put("got \(message)") }
        }
        node.registerFunction("main::spawn_fail") { _, _ in throw Boom() }
        let spawned = node.spawn(on: node.nodeID, function: "main::spawn_echo", arguments: ["a"])
        #expect(try await inbox.next() == "spawned \(spawned.name) [\"a\"]")
        node.send(spawned, "hi")
        #expect(try await inbox.next() == "got [\"hi\"]")

        // A failing init function kills the new port at once with ("die", ...); a monitor requested
        // after the spawn is checked after the spawn ran, so it sees a port that no longer exists, as
        // a remote `mon1` following `_spawn` on the same connection does.
        let failing = node.spawn(on: node.nodeID, function: "main::spawn_fail")
        let g = node.monitor(failing) { reasons.put($0) }
        #expect(try await reasons.next().values.first == "no_such_port")
        let missing = node.spawn(on: node.nodeID, function: "main::nothing")
        let g2 = node.monitor(missing) { reasons.put($0) }
        #expect(try await reasons.next().values.first == "no_such_port")
        _ = (g, g2)
        await node.shutdown()
    }

    @Test func callGetsReplyTimeoutAndDeath() async throws {
        let node = try await Self.makeNode()
        let echo = node.port { context, message in
            guard let reply = message.last?.stringValue.flatMap(PortID.init) else { return }
            context.node.send(reply, Array(message.dropLast()))
        }
        #expect(try await node.call(echo, ["hello", 1]) == ["hello", 1])
        let silent = node.port { _, _ in }
        await #expect(throws: CallError.timeout(.milliseconds(50))) {
            try await node.call(silent, ["x"], timeout: .milliseconds(50))
        }
        let dying = node.port { context, _ in context.node.kill(context.port, reason: .user(["bye"])) }
        await #expect(throws: CallError.portDied(.user(["bye"]))) {
            try await node.call(dying, ["x"])
        }
        // The node port answers `time` through cal.
        let time = try await node.call(PortID.nodePort(of: node.nodeID), ["time"])
        #expect(time.count == 1)
        await node.shutdown()
    }

    @Test func afterSendsLater() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<[Value]>()
        let port = node.port { _, message in inbox.put(message) }
        node.after(.milliseconds(20), send: ["late"], to: port)
        #expect(try await inbox.next() == ["late"])
        await node.shutdown()
    }

    @Test func shutdownIgnoresLaterCalls() async throws {
        let node = try await Self.makeNode()
        let inbox = Inbox<[Value]>()
        let port = node.port { _, message in inbox.put(message) }
        await node.shutdown()
        node.send(port, "x")
        await #expect(throws: CallError.nodeShutDown) { try await node.call(port, ["x"]) }
        #expect(inbox.snapshot.isEmpty)
    }

    @Test func nodeIDTemplatesAndAnonymousNodes() async throws {
        let anonymous = try await Node.start(NodeConfiguration(binds: []))
        #expect(anonymous.nodeID.rawValue.hasPrefix("anon/"))
        // A randomised node ID gives port names without the UNIQ prefix (spec §1.2).
        #expect(anonymous.port().name == "b")
        await anonymous.shutdown()
        let templated = try await Node.start(NodeConfiguration(nodeID: "worker/", binds: []))
        #expect(templated.nodeID.rawValue.hasPrefix("worker/") && templated.nodeID.rawValue.count == 17)
        await templated.shutdown()
        await #expect(throws: NodeError.self) {
            _ = try await Node.start(NodeConfiguration(nodeID: "bad#id", binds: []))
        }
        await #expect(throws: NodeError.self) {
            _ = try await Node.start(NodeConfiguration(nodeID: "x", binds: ["not an address:::"]))
        }
    }

    @Test func nodeStateOfSelfAndUnknown() async throws {
        let node = try await Self.makeNode()
        #expect(await node.state(of: node.nodeID) == .up)
        #expect(await node.state(of: NodeID("unknown")!) == nil)
        #expect(await node.upNodes() == [])
        await node.shutdown()
    }
}
