import AEMP
import AEMPCodecs
import Foundation
import Testing

@testable import aemp

/// `aemp trace`: arguments and output, against a recorded trace.
@Suite("aemp trace command")
struct TraceCommandTests {
    static let trace = NetworkTrace(
        start: NodeID("a")!, tracer: NodeID("anon/TRACERTRAC")!,
        nodes: [
            TracedNode(
                nodeID: NodeID("a")!, status: .reachable, provider: Greeting.defaultProvider, isGlobal: true,
                listeners: ["127.0.0.1:4040"], connections: .known([NodeID("b")!, NodeID("c")!, NodeID("d")!]),
                seenBy: [NodeID("b")!]),
            TracedNode(
                nodeID: NodeID("b")!, status: .reachable, provider: "AE-2.01", listeners: ["127.0.0.1:4041"],
                connections: .known([NodeID("a")!]), seenBy: [NodeID("a")!]),
            TracedNode(
                nodeID: NodeID("c")!, status: .reachable, provider: "AE-2.01", listeners: ["127.0.0.1:4042"],
                connections: .unknown("secure mode"), seenBy: [NodeID("a")!]),
            TracedNode(
                nodeID: NodeID("d")!, status: .unreachable("connect timeout"), listeners: ["127.0.0.1:4043"],
                seenBy: [NodeID("a")!]),
            TracedNode(nodeID: NodeID("e")!, status: .noListener, seenBy: [NodeID("b")!]),
        ], listenersKnown: true)

    @Test func textOutput() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend(traced: Self.trace)
        try await sandbox.run(["trace", "a"], environment: ["AEMP_CONFIG": "{\"secret\":\"s\"}"], backend: backend)
        #expect(
            sandbox.output.lines == [
                "a  (swift, global)  reachable",
                "  -> b, c, d",
                "b  (perl)  reachable",
                "  -> a",
                "c  (perl)  reachable",
                "  connections unknown (secure mode)",
                "d  unreachable (connect timeout)",
                "  <- a",
                "e  no listener (not asked)",
                "  <- b",
                "",
                "5 nodes: 3 reachable, 1 unreachable, 1 without listener; 2 perl, 1 swift, 2 unknown; 1 global",
            ])
        let call = try #require(backend.recorded.last)
        #expect(call.command == "trace" && call.target == "a" && call.message == [.text("\(Duration.seconds(5))")])
        #expect(call.configuration.seeds == ["127.0.0.1:4040"] && call.configuration.nodeID == "anon/")
    }

    @Test func jsonOutput() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend(traced: Self.trace)
        try await sandbox.run(["trace", "--json"], environment: ["AEMP_CONFIG": "{\"secret\":\"s\"}"], backend: backend)
        #expect(backend.recorded.last?.target == "")  // no node: the backend starts at the master
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(sandbox.output.text.utf8)) as? [String: Any])
        #expect(object["start"] as? String == "a" && object["tracer"] as? String == "anon/TRACERTRAC")
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["node"] as? String } == ["a", "b", "c", "d", "e"])
        #expect(nodes[0]["implementation"] as? String == "swift" && nodes[0]["global"] as? Bool == true)
        #expect(nodes[0]["provider"] as? String == "swift-aemp/AE-2.01")
        #expect(nodes[0]["connections"] as? [String] == ["b", "c", "d"] && nodes[0]["listeners"] as? [String] == ["127.0.0.1:4040"])
        #expect(nodes[1]["implementation"] as? String == "perl" && nodes[1]["global"] as? Bool == false)
        #expect(nodes[2]["connections"] is NSNull && nodes[2]["connections_unknown"] as? String == "secure mode")
        #expect(nodes[3]["status"] as? String == "unreachable" && nodes[3]["reason"] as? String == "connect timeout")
        #expect(nodes[3]["implementation"] as? String == "unknown" && nodes[3]["provider"] is NSNull)
        #expect(nodes[3]["seen_by"] as? [String] == ["a"])
        #expect(nodes[4]["status"] as? String == "no_listener" && nodes[4]["listeners"] is NSNull)
        // Every node object has the same keys.
        #expect(Set(nodes.map { $0.keys.sorted() }).count == 1)
        let summary = try #require(object["summary"] as? [String: Int])
        #expect(
            summary == [
                "nodes": 5, "reachable": 3, "unreachable": 1, "no_listener": 1, "perl": 2, "swift": 1, "other": 0,
                "unknown": 2, "global": 1,
            ])
    }

    @Test func arguments() throws {
        let plain = try NodeCommands.traceRequest([])
        #expect(plain.start == nil && !plain.json && plain.timeout == .seconds(5))
        let full = try NodeCommands.traceRequest(["--timeout", "2", "n#port", "--json"])
        #expect(full.start == NodeID("n") && full.json && full.timeout == .seconds(2))
        #expect(try NodeCommands.traceRequest(["--timeout=1.5"]).timeout == .milliseconds(1500))
        #expect(throws: CLIError("trace: unknown option --verbose (aemp trace [<node>] [--json] [--timeout <seconds>])")) {
            try NodeCommands.traceRequest(["--verbose"])
        }
        #expect(throws: CLIError("trace: more than one node given (aemp trace [<node>] [--json] [--timeout <seconds>])")) {
            try NodeCommands.traceRequest(["a", "b"])
        }
        for bad: [Value] in [["--timeout"], ["--timeout", "0"], ["--timeout", "x"], ["--timeout=-1"], ["--timeout", "4000"]] {
            #expect(throws: CLIError("trace: --timeout needs a number of seconds above 0 (up to 3600) (aemp trace [<node>] [--json] [--timeout <seconds>])")) {
                try NodeCommands.traceRequest(bad)
            }
        }
    }

    @Test func unreachableStartFails() async throws {
        let sandbox = try CLISandbox()
        let lonely = NetworkTrace(
            start: NodeID("x")!, tracer: NodeID("anon/TRACERTRAC")!,
            nodes: [TracedNode(nodeID: NodeID("x")!, status: .unreachable("no known address"))], listenersKnown: true)
        let failure = await sandbox.failure(
            ["trace", "x"], environment: ["AEMP_CONFIG": "{\"secret\":\"s\"}"], backend: RecordingBackend(traced: lonely))
        #expect(failure == "trace: x is unreachable: no known address")
        #expect(sandbox.output.lines == ["x  unreachable (no known address)", "", "1 node: 0 reachable, 1 unreachable; 0 perl, 0 swift, 1 unknown; 0 global"])
    }
}
