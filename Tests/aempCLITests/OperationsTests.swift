#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Testing

/// Operations with real processes: graceful shutdown on SIGTERM (`aemp run` and a node run as a
/// swift-service-lifecycle service), the forced exit on a second signal, and the Prometheus
/// endpoint scraped by a real HTTP client (curl) while messages flow.
@Suite(
    "Operations: signals, graceful shutdown, metrics endpoint", .serialized,
    .enabled(if: AempBinary.path != nil, "needs the built aemp executable"))
struct OperationsTests {
    static let secret = "operations-test-secret"

    /// A node in the test process that joins the network through `seed`.
    static func observer(_ name: String, seed: String) async throws -> Node {
        try await Node.start(
            NodeConfiguration(
                nodeID: "\(name)-\(UInt32.random(in: 0...UInt32.max))", binds: ["127.0.0.1:0"], seeds: [seed], secret: secret))
    }

    static func waitUntil(_ limit: Duration = .seconds(10), _ condition: () async -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await condition()
    }

    @Test("SIGTERM during a burst: every queued message arrives in order, a remote monitor gets the shutdown reason within 1 s, exit 0", .timeLimit(.minutes(3)))
    func sigtermFlushesAndTells() async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let sink = try ChaosTests.chaosNode(
            ["sink", "id=ops-sink", "bind=\(address)", "seeds=\(address)", "secret=\(Self.secret)"], sandbox: sandbox)
        defer { sink.signal(SIGKILL) }
        #expect(await sink.waitUntil { $0.output.text.contains("sink ops-sink#") }, "\(sink.transcript)")
        let count = 100_000
        let burst = try ChaosTests.chaosNode(
            ["burst", "id=ops-burst", "seeds=\(address)", "secret=\(Self.secret)", "count=\(count)", "size=256"], sandbox: sandbox)
        defer { burst.signal(SIGKILL) }
        #expect(await burst.waitUntil(timeout: .seconds(30)) { $0.output.text.contains("victim ") }, "\(burst.transcript)")
        let victimLine = burst.output.text.split(separator: "\n").first { $0.hasPrefix("victim ") } ?? ""
        let victim = try #require(PortID(String(victimLine.dropFirst(7))), "\(burst.transcript)")

        // A node in this process monitors the victim port; a round trip through the burst node makes
        // sure the mon1 arrived before the go.
        let observer = try await Self.observer("ops-observer", seed: address)
        let reasons = Inbox<(KillReason, ContinuousClock.Instant)>()
        let monitor = observer.monitor(victim) { reasons.put(($0, .now)) }
        _ = try await observer.call(PortID("ops-burst#")!, ["time"], timeout: .seconds(10))
        observer.send(victim, ["go"])
        #expect(await burst.waitUntil(timeout: .seconds(60)) { $0.output.text.contains("queued \(count)") }, "\(burst.transcript)")
        let signalled = ContinuousClock.now
        burst.signal(SIGTERM)

        let (reason, at) = try await reasons.next(within: .seconds(10))
        #expect(reason == .shutdown(node: NodeID("ops-burst")!))
        #expect(at - signalled < .seconds(1), "the monitor fired \(at - signalled) after SIGTERM")
        #expect(await burst.finish(timeout: .seconds(30)) == 0, "\(burst.transcript)")
        #expect(burst.output.text.contains("stopped"))
        // Everything queued before the signal reached the sink, in order.
        let complete = await sink.waitUntil(timeout: .seconds(30)) { ChaosTests.lastProgress($0)?.count == count }
        let progress = ChaosTests.lastProgress(sink)
        #expect(complete && progress?.gaps == 0 && progress?.reorders == 0, "\(String(describing: progress)) \(sink.transcript)")
        // How much was still queued when the signal came (the node's own log line).
        let summary = burst.errors.text.split(separator: "\n").first { $0.contains("shut down: ") } ?? "no summary"
        print("burst: \(count) messages of 256 bytes, SIGTERM right after queueing; \(summary.split(separator: "] ").last ?? "")")
        #expect(summary.contains("nothing dropped"), "\(burst.transcript)")
        _ = monitor
        await observer.shutdown()
    }

    @Test(
        "aemp run: SIGTERM or SIGINT logs the graceful shutdown and exits 0; a peer sees the node down at once with the shutdown reason",
        .timeLimit(.minutes(2)), arguments: [SIGTERM, SIGINT])
    func aempRunSigterm(signal: Int32) async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let (node, id) = try await sandbox.startNode(["nodeid", "ops-run-\(signal)", "binds", address, "seeds", address, "secret", Self.secret])
        defer { node.signal(SIGKILL) }
        #expect(node.output.text.contains("shutdown_timeout"))
        let observer = try await Self.observer("ops-run-observer", seed: address)
        let nodeID = NodeID(id)!
        #expect(await Self.waitUntil { await observer.state(of: nodeID) == .up })
        let reasons = Inbox<(KillReason, ContinuousClock.Instant)>()
        let monitor = observer.monitor(PortID("\(id)#")!) { reasons.put(($0, .now)) }

        let signalled = ContinuousClock.now
        node.signal(signal)
        let (reason, at) = try await reasons.next(within: .seconds(10))
        #expect(reason == .transportError(node: nodeID, message: "node shut down"))
        #expect(at - signalled < .seconds(1), "\(at - signalled)")
        #expect(await node.finish(timeout: .seconds(10)) == 0, "\(node.transcript)")
        let name = signal == SIGINT ? "SIGINT" : "SIGTERM"
        #expect(node.errors.text.contains("\(name) received: shutting down gracefully"), "\(node.transcript)")
        #expect(node.errors.text.contains("shut down: 0 ports killed"), "\(node.transcript)")
        #expect(node.errors.text.contains("nothing dropped"), "\(node.transcript)")
        _ = monitor
        await observer.shutdown()
    }

    /// An `aemp run` node whose connection to a peer that reads nothing holds `megabytes` MiB: the
    /// peer (a scripted node in this process) asks the node to relay 1 MiB messages back to it.
    static func stuckNode(
        _ sandbox: ProcessSandbox, shutdownTimeout: Int, megabytes: Int = 48
    ) async throws -> (AempProcess, ScriptedPeer) {
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let (node, id) = try await sandbox.startNode([
            "nodeid", "ops-stuck-\(shutdownTimeout)", "binds", address, "secret", Self.secret, "shutdown_timeout", "\(shutdownTimeout)",
            "liveness_timeout", "0",
        ])
        let peer = try await ScriptedPeer.connect(to: address)
        try await peer.handshake(as: NodeID("ops-reader")!, secret: Self.secret)
        let chunk = Value.bytes(ByteBuffer(repeating: 0x63, count: 1 << 20))
        for _ in 0..<megabytes {
            try await peer.send(["", "snd", "ops-reader#never", chunk])
        }
        // The node took everything in and answers the next request only after the relays: once the
        // peer stops reading, the node's write buffer holds most of them.
        _ = id
        try await Task.sleep(for: .seconds(1))
        return (node, peer)
    }

    @Test("aemp run: a second SIGTERM during a long graceful shutdown exits at once with status 1", .timeLimit(.minutes(2)))
    func secondSignalForcesExit() async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        let (node, peer) = try await Self.stuckNode(sandbox, shutdownTimeout: 60)
        defer { node.signal(SIGKILL) }
        node.signal(SIGTERM)
        #expect(await node.waitUntil { $0.errors.text.contains("shutting down gracefully") }, "\(node.transcript)")
        try await Task.sleep(for: .milliseconds(300))
        #expect(node.process.isRunning, "the graceful shutdown waits for the stuck peer")
        let second = ContinuousClock.now
        node.signal(SIGTERM)
        #expect(await node.finish(timeout: .seconds(5)) == 1, "\(node.transcript)")
        #expect(ContinuousClock.now - second < .seconds(2))
        #expect(node.errors.text.contains("received again: exiting at once"), "\(node.transcript)")
        peer.close()
    }

    @Test("aemp run: when the grace period ends, the rest is dropped, the log says how much, and it exits 0", .timeLimit(.minutes(2)))
    func gracePeriodEndsWithDrops() async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        let (node, peer) = try await Self.stuckNode(sandbox, shutdownTimeout: 1)
        defer { node.signal(SIGKILL) }
        let signalled = ContinuousClock.now
        node.signal(SIGTERM)
        #expect(await node.finish(timeout: .seconds(10)) == 0, "\(node.transcript)")
        let took = ContinuousClock.now - signalled
        #expect(took >= .seconds(1) && took < .seconds(5), "\(took)")
        #expect(node.errors.text.contains("unsent bytes"), "\(node.transcript)")
        peer.close()
    }

    @Test("metrics: aemp run metrics <host:port> serves Prometheus text that moves while messages flow (scraped with curl)", .timeLimit(.minutes(2)))
    func prometheusScrape() async throws {
        let curl = try #require(
            ["/usr/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) },
            "curl is needed (scripts/test.sh installs it)")
        let sandbox = try ProcessSandbox(rc: nil)
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let (node, id) = try await sandbox.startNode([
            "nodeid", "ops-metrics", "binds", address, "seeds", address, "secret", Self.secret, "metrics", "127.0.0.1:0",
        ])
        defer { node.signal(SIGKILL) }
        let line = node.output.text.split(separator: "\n").first { $0.contains("metrics:") } ?? ""
        let url = try #require(line.split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init), "\(node.transcript)")

        func scrape() throws -> String {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: curl)
            process.arguments = ["-sS", "--max-time", "5", "-D", "-", url]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return String(decoding: data, as: UTF8.self)
        }
        func value(_ text: String, _ metric: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(metric + " ") || $0.hasPrefix(metric + "{") && $0.contains("}") && $0.hasPrefix(metric) }
                .flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }
        }

        let observer = try await Self.observer("ops-scraper", seed: address)
        let peerLabel = "aemp_messages_received_total{node=\"\(id)\",peer=\"\(observer.nodeID.rawValue)\"}"
        for index in 0..<1000 { observer.send(PortID("\(id)#")!, ["devnull", .int(Int64(index))]) }
        _ = try await observer.call(PortID("\(id)#")!, ["time"], timeout: .seconds(5))
        let first = try scrape()
        #expect(first.hasPrefix("HTTP/1.1 200"), "\(first)")
        #expect(first.contains("Content-Type: text/plain; version=0.0.4"), "\(first)")
        let before = try #require(value(first, peerLabel), "\(first)")
        #expect(before >= 1001)
        #expect(value(first, "aemp_connections{node=\"\(id)\"}") ?? 0 >= 1)
        #expect(first.contains("# TYPE aemp_bytes_sent_total counter"))

        for index in 0..<2000 { observer.send(PortID("\(id)#")!, ["devnull", .int(Int64(index))]) }
        _ = try await observer.call(PortID("\(id)#")!, ["time"], timeout: .seconds(5))
        let second = try scrape()
        let after = try #require(value(second, peerLabel), "\(second)")
        #expect(after >= before + 2001, "\(before) → \(after)")

        // Other paths and methods get clear answers.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: curl)
        process.arguments = ["-s", "-o", "/dev/null", "-w", "%{http_code}", url.replacingOccurrences(of: "/metrics", with: "/other")]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let status = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(status == "404")

        await observer.shutdown()
        node.signal(SIGTERM)
        #expect(await node.finish(timeout: .seconds(10)) == 0, "\(node.transcript)")
    }

    @Test("metrics: a bad metrics address is refused with a clear error")
    func badMetricsAddress() async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        let result = try await sandbox.client(["run", "nodeid", "ops-bad", "secret", Self.secret, "metrics", "nowhere"])
        #expect(result.status == 1)
        #expect(result.errors.contains("metrics must be host:port (e.g. 127.0.0.1:9464), got nowhere"), "\(result.errors)")
    }
}
