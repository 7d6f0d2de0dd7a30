#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// `aemp trace` against real `aemp run` nodes: two seeds (global nodes), a node in secure mode, and a
/// node that stopped (SIGSTOP) after joining, so its peers still list it but it answers nobody.
@Suite("aemp trace processes", .enabled(if: AempBinary.path != nil, "needs the built aemp executable"))
struct TraceProcessTests {
    static let secret = "trace-process-secret"

    @Test func traceANetworkWithASecureAndAStoppedNode() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let seed1 = "127.0.0.1:\(AempBinary.freePort())"
        let seed2 = "127.0.0.1:\(AempBinary.freePort())"
        let common = ["seeds", "[\"\(seed1)\",\"\(seed2)\"]", "liveness_timeout", "0"]
        let (s1, _) = try await sandbox.startNode(["nodeid", "s1", "binds", seed1] + common)
        defer { s1.signal(SIGKILL) }
        let (s2, _) = try await sandbox.startNode(["nodeid", "s2", "binds", seed2] + common)
        defer { s2.signal(SIGKILL) }
        let (w1, _) = try await sandbox.startNode(["nodeid", "w1", "binds", "127.0.0.1:0", "secure", "1"] + common)
        defer { w1.signal(SIGKILL) }
        let (w2, _) = try await sandbox.startNode(["nodeid", "w2", "binds", "127.0.0.1:0"] + common)
        defer { w2.signal(SIGKILL) }
        for (seed, others) in [(s1, ["s2", "w1", "w2"]), (s2, ["s1", "w1", "w2"])] {
            #expect(
                await seed.waitUntil { process in others.allSatisfy { process.errors.text.contains("node \($0) is up") } },
                "\(seed.transcript)")
        }
        #expect(await w2.waitUntil { $0.errors.text.contains("node s1 is up") && $0.errors.text.contains("node s2 is up") })
        w2.signal(SIGSTOP)  // its peers keep it (no liveness check), but it answers nobody now
        defer { w2.signal(SIGCONT) }

        let client = ["AEMP_CONFIG": "{\"seeds\":[\"\(seed1)\"]}"]
        let text = try await sandbox.client(["trace", "s1", "--timeout", "3"], environment: client, timeout: .seconds(30))
        #expect(text.status == 0, "\(text.process.transcript)")
        #expect(
            text.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) == [
                "s1  (swift, global)  reachable",
                "  -> s2, w1, w2",
                "s2  (swift, global)  reachable",
                "  -> s1, w1, w2",
                "w1  (swift)  reachable",
                "  connections unknown (secure mode)",
                "w2  unreachable (connect timeout)",
                "  <- s1, s2",
                "",
                "4 nodes: 3 reachable, 1 unreachable; 0 perl, 3 swift, 1 unknown; 2 global",
                "",
            ], "\(text.process.transcript)")

        // JSON, starting at the client's database master (its only seed, s1).
        let json = try await sandbox.client(["trace", "--json", "--timeout=3"], environment: client, timeout: .seconds(30))
        #expect(json.status == 0, "\(json.process.transcript)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any], "\(json.process.transcript)")
        #expect(object["start"] as? String == "s1")
        let nodes = try #require(object["nodes"] as? [[String: Any]])
        let byID = Dictionary(uniqueKeysWithValues: nodes.map { ($0["node"] as? String ?? "?", $0) })
        #expect(nodes.map { $0["node"] as? String } == ["s1", "s2", "w1", "w2"])
        #expect(byID["s1"]?["listeners"] as? [String] == [seed1] && byID["s2"]?["listeners"] as? [String] == [seed2])
        #expect(byID["s2"]?["provider"] as? String == "swift-aemp/AE-2.01")
        #expect(byID["s2"]?["connections"] as? [String] == ["s1", "w1", "w2"])
        #expect(byID["w1"]?["global"] as? Bool == false && byID["w1"]?["connections_unknown"] as? String == "secure mode")
        #expect(byID["w2"]?["status"] as? String == "unreachable" && byID["w2"]?["reason"] as? String == "connect timeout")
        #expect(byID["w2"]?["seen_by"] as? [String] == ["s1", "s2"])
        #expect(
            object["summary"] as? [String: Int]
                == ["nodes": 4, "reachable": 3, "unreachable": 1, "no_listener": 0, "perl": 0, "swift": 3, "other": 0, "unknown": 1, "global": 2])

        // A start node nobody knows: printed, then exit status 1.
        let unknown = try await sandbox.client(["trace", "nosuch", "--timeout", "2"], environment: client)
        #expect(unknown.status == 1, "\(unknown.process.transcript)")
        #expect(unknown.output.hasPrefix("nosuch  unreachable (no known address)\n"), "\(unknown.process.transcript)")
        #expect(unknown.errors.contains("aemp: trace: nosuch is unreachable: no known address"), "\(unknown.process.transcript)")
    }
}
