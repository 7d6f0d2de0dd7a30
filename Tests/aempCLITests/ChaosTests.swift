#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// Faults on real `aemp run` processes: a peer that stops without closing (SIGSTOP), a network
/// partition between two hosts (network namespaces), a node killed and restarted with the same ID.
/// Each fault is detected by the liveness check (`liveness_timeout`) within the timeout plus one
/// second, and the network heals by itself afterwards. CI runs these short versions.
@Suite(
    "Chaos: real processes under faults", .serialized,
    .enabled(if: AempBinary.path != nil, "needs the built aemp executable"))
struct ChaosTests {
    static let secret = "chaos-test-secret"
    /// The nodes' `liveness_timeout` in the SIGSTOP and partition tests: `AEMP_CHAOS_LIVENESS`
    /// (whole seconds; e.g. 10, the default of a node), else 2.
    static let liveness = Double(ProcessInfo.processInfo.environment["AEMP_CHAOS_LIVENESS"].flatMap(Int.init).map { max(1, $0) } ?? 2)
    /// The kill reason's words for that timeout.
    static var silence: String { "no data for \(Int(liveness)) s" }

    /// The time from `start` until `process`'s log says `text` for the `count`th time, or nil within `limit`.
    static func timeUntil(
        _ process: AempProcess, count: Int = 1, logs text: String, since start: ContinuousClock.Instant,
        limit: Duration = .seconds(ChaosTests.liveness + 10)
    ) async -> Duration? {
        let seen = await process.waitUntil(timeout: limit) { Self.count($0, text) >= count }
        return seen ? ContinuousClock.now - start : nil
    }

    /// How many times `text` occurs in the process's log.
    static func count(_ process: AempProcess, _ text: String) -> Int {
        process.errors.text.components(separatedBy: text).count - 1
    }

    /// The chaos node executable (Tests/ChaosNode), next to aemp.
    static let chaosNode: String? = AempBinary.path.map {
        URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("aemp-chaos-node").path
    }

    /// Starts `aemp-chaos-node <arguments>` (the launcher runs the binary in place of aemp).
    static func chaosNode(_ arguments: [String], sandbox: ProcessSandbox) throws -> AempProcess {
        guard let path = chaosNode, FileManager.default.isExecutableFile(atPath: path) else {
            throw CLITestFailure("aemp-chaos-node was not built next to aemp")
        }
        return try AempProcess(arguments, environment: sandbox.environment(), executable: path)
    }

    /// The last `progress` line of a sink: count, gaps and reorders.
    static func lastProgress(_ sink: AempProcess) -> (count: Int, gaps: Int, reorders: Int)? {
        guard let line = sink.output.text.split(separator: "\n").last(where: { $0.hasPrefix("progress ") }) else { return nil }
        let words = line.split(separator: " ")
        guard words.count == 6, let count = Int(words[2]) else { return nil }
        func value(_ word: Substring) -> Int? { word.split(separator: "=").last.flatMap { Int($0) } }
        guard let gaps = value(words[4]), let reorders = value(words[5]) else { return nil }
        return (count, gaps, reorders)
    }

    /// Messages in the storm test: `AEMP_CHAOS_STORM` (scripts/chaos.sh: 10 M), else 1 M.
    static var stormSize: Int {
        ProcessInfo.processInfo.environment["AEMP_CHAOS_STORM"].flatMap(Int.init).map { max(200_000, $0) } ?? 1_000_000
    }

    /// Trials per fault in the SIGSTOP and partition tests: `AEMP_CHAOS_TRIALS` (scripts/chaos.sh: 20), else 1.
    static var trials: Int {
        ProcessInfo.processInfo.environment["AEMP_CHAOS_TRIALS"].flatMap(Int.init).map { max(1, $0) } ?? 1
    }

    /// `label: n trials, median, min, max` of detection times in seconds.
    static func summary(_ label: String, _ times: [Duration]) -> String {
        let seconds = times.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }.sorted()
        guard !seconds.isEmpty else { return "\(label): no trials" }
        let median = seconds.count % 2 == 1
            ? seconds[seconds.count / 2] : (seconds[seconds.count / 2 - 1] + seconds[seconds.count / 2]) / 2
        func text(_ value: Double) -> String { String(format: "%.3f", value) }
        return "\(label): \(seconds.count) trials, median \(text(median)) s, min \(text(seconds[0])) s, max \(text(seconds[seconds.count - 1])) s"
    }

    @Test("kill -9 of a receiver during a storm of 1 M messages: monitors fire, no gap or reordering before the death, bounded sender memory", .timeLimit(.minutes(15)))
    func killedReceiverDuringStorm() async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let sink = try Self.chaosNode(["sink", "id=chaos-sink", "bind=\(address)", "seeds=\(address)", "secret=\(Self.secret)"], sandbox: sandbox)
        defer { sink.signal(SIGKILL) }
        #expect(await sink.waitUntil { $0.output.text.contains("sink chaos-sink#") }, "\(sink.transcript)")
        let count = Self.stormSize
        let storm = try Self.chaosNode(
            ["storm", "id=chaos-storm", "seeds=\(address)", "secret=\(Self.secret)", "count=\(count)"], sandbox: sandbox)
        defer { storm.signal(SIGKILL) }
        let half = count / 2 / 100_000 * 100_000
        #expect(
            await storm.waitUntil(timeout: .seconds(Double(count) / 20_000 + 30)) { $0.output.text.contains("sent \(half) ") },
            "\(storm.transcript)")
        sink.signal(SIGKILL)
        _ = await sink.finish(timeout: .seconds(5))

        // The storm's monitor of the sink fires with transport_error, and the storm stops.
        #expect(await storm.waitUntil(timeout: .seconds(15)) { $0.output.text.contains("done sent=") }, "\(storm.transcript)")
        let monitorLine = storm.output.text.split(separator: "\n").first { $0.hasPrefix("monitor ") } ?? ""
        #expect(monitorLine.contains("transport_error"), "\(storm.transcript)")
        // Up to its death the sink saw every message in order, without a gap.
        let progress = try #require(Self.lastProgress(sink), "\(sink.transcript)")
        #expect(progress.count >= half - 100_000 && progress.gaps == 0 && progress.reorders == 0, "\(progress)")
        print("storm: \(progress.count) of \(count) messages in order before the kill; \(storm.output.text.split(separator: "\n").last ?? "")")
        // Flow control kept the sender's memory bounded.
        let done = storm.output.text.split(separator: "\n").first { $0.hasPrefix("done ") } ?? ""
        let peak = done.split(separator: "=").last.flatMap { Int($0) } ?? .max
        #expect(peak < 200_000, "peak RSS \(peak) kB: \(done)")
    }

    /// How many nodes the scale test starts: `AEMP_CHAOS_MESH` (scripts/chaos.sh uses 50), else 20.
    static var meshSize: Int {
        ProcessInfo.processInfo.environment["AEMP_CHAOS_MESH"].flatMap(Int.init).map { max(4, $0) } ?? 20
    }

    @Test("scale: a network of many nodes with two seeds converges, every node reaches every other, and killed nodes are reported to all", .timeLimit(.minutes(5)))
    func meshAtScale() async throws {
        let size = Self.meshSize
        let sandbox = try ProcessSandbox(rc: nil)
        let seeds = (0..<2).map { _ in "127.0.0.1:\(AempBinary.freePort())" }
        let started = ContinuousClock.now
        var nodes: [AempProcess] = []
        defer { for node in nodes { node.signal(SIGKILL) } }
        // connect_interval 10 s: with every node starting at once on a small CI machine, a handshake
        // can take longer than the 2 s default, which would fail the attempt (as in Perl).
        for index in 0..<size {
            var arguments = [
                "mesh", "id=mesh\(index)", "seeds=\(seeds.joined(separator: ","))", "secret=\(Self.secret)", "size=\(size)",
                "connect=10",
            ]
            if index < 2 { arguments.append("bind=\(seeds[index])") }
            nodes.append(try Self.chaosNode(arguments, sandbox: sandbox))
        }
        // Every node hears from every other one.
        for node in nodes {
            #expect(await node.waitUntil(timeout: .seconds(120)) { $0.output.text.contains("mesh complete \(size - 1) ") }, "\(node.transcript)")
        }
        let converged = ContinuousClock.now - started
        let rss = nodes.compactMap { node -> Int? in
            guard let line = node.output.text.split(separator: "\n").first(where: { $0.hasPrefix("mesh converged") }) else { return nil }
            return line.split(separator: "=").last.flatMap { Int($0) }
        }
        print("mesh: \(size) nodes complete after \(converged); RSS per node \(rss.min() ?? 0)–\(rss.max() ?? 0) kB")

        // Kill a fifth of them at once, among them the seed that is the database master of most
        // nodes: every survivor reports each one down, and the nodes that lost their master fail
        // over to the other seed.
        func master(_ node: AempProcess) -> String? {
            node.output.text.split(separator: "\n").first { $0.hasPrefix("master ") }.map { String($0.dropFirst(7)) }
        }
        for node in nodes { _ = await node.waitUntil(timeout: .seconds(10)) { master($0) != nil } }
        let masters = nodes.map(master)
        let mainMaster = (0..<2).max { a, b in
            masters.count { $0 == "mesh\(a)" } < masters.count { $0 == "mesh\(b)" }
        }!
        let orphans = nodes.indices.filter { masters[$0] == "mesh\(mainMaster)" && $0 >= 2 }
        var victims = [mainMaster]
        for index in stride(from: 3, to: size, by: 5) where victims.count < max(2, size / 5) { victims.append(index) }
        let killedAt = Int(Date().timeIntervalSince1970 * 1000)
        let killed = ContinuousClock.now
        for index in victims { nodes[index].signal(SIGKILL) }
        for (index, node) in nodes.enumerated() where !victims.contains(index) {
            let reported = await node.waitUntil(timeout: .seconds(30)) { process in
                victims.allSatisfy { process.output.text.contains("down mesh\($0) ") }
            }
            #expect(reported, "mesh\(index) did not report every killed node: \(node.transcript)")
        }
        print("mesh: \(victims.count) killed nodes reported by all \(size - victims.count) survivors after \(ContinuousClock.now - killed)")
        // Failover: every node whose master died has a new one and its db_family answers through it.
        var failovers: [Int] = []
        for index in orphans where !victims.contains(index) {
            let node = nodes[index]
            let answered = await node.waitUntil(timeout: .seconds(30)) { $0.output.text.contains("failover to mesh\(1 - mainMaster) answered") }
            let line = node.output.text.split(separator: "\n").last { $0.hasPrefix("failover to ") } ?? ""
            #expect(answered && !line.hasSuffix("family=-1"), "mesh\(index) did not fail over: \(node.transcript)")
            let at = line.split(separator: " ").first { $0.hasPrefix("at=") }.flatMap { Int($0.dropFirst(3)) }
            if let at { failovers.append(at - killedAt) }
        }
        failovers.sort()
        print(
            "mesh: master mesh\(mainMaster) of \(orphans.count) nodes killed; db_family answered through the other seed after "
                + "median \(failovers.isEmpty ? 0 : failovers[failovers.count / 2]) ms, max \(failovers.last ?? 0) ms")
    }

    /// The soak's length and sampling interval: `AEMP_CHAOS_SOAK_SECONDS` (scripts/chaos.sh: 1800
    /// s, sampled every 10 s), else 20 s sampled every 2 s.
    static var soak: (seconds: Int, every: Int) {
        let seconds = ProcessInfo.processInfo.environment["AEMP_CHAOS_SOAK_SECONDS"].flatMap(Int.init).map { max(20, $0) } ?? 20
        return (seconds, seconds >= 300 ? 10 : 2)
    }

    /// One sample of a process: resident memory, open descriptors, and the sockets among them.
    static func sample(_ pid: Int32) -> (rss: Int, fds: Int, sockets: Int)? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let rss = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
            let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        else { return nil }
        let sockets = entries.filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)"))?.hasPrefix("socket:") ?? false
        }
        return (rss, entries.count, sockets.count)
    }

    @Test("soak: five nodes under steady traffic keep memory, descriptors and connections flat", .timeLimit(.minutes(45)))
    func soakUnderSteadyTraffic() async throws {
        let (seconds, every) = Self.soak
        let sandbox = try ProcessSandbox(rc: nil)
        let address = "127.0.0.1:\(AempBinary.freePort())"
        var nodes: [AempProcess] = []
        defer { for node in nodes { node.signal(SIGKILL) } }
        let common = ["seeds=\(address)", "secret=\(Self.secret)"]
        nodes.append(try Self.chaosNode(["sink", "id=soak-sink1", "bind=\(address)"] + common, sandbox: sandbox))
        nodes.append(try Self.chaosNode(["sink", "id=soak-sink2"] + common, sandbox: sandbox))
        for node in nodes { #expect(await node.waitUntil { $0.output.text.contains("sink soak-") }, "\(node.transcript)") }
        // Three senders, 1000 messages a second to each sink, for the whole soak.
        let rate = 1000
        for index in 1...3 {
            nodes.append(try Self.chaosNode(
                ["storm", "id=soak-storm\(index)", "rate=\(rate)", "count=\(rate * (seconds + 30))", "sinks=2"] + common,
                sandbox: sandbox))
        }
        for node in nodes[2...] { #expect(await node.waitUntil { $0.output.text.contains("storm to ") }, "\(node.transcript)") }

        var samples: [[(rss: Int, fds: Int, sockets: Int)]] = Array(repeating: [], count: nodes.count)
        let start = ContinuousClock.now
        var lines = ["seconds,node,rss_kb,fds,sockets"]
        while ContinuousClock.now - start < .seconds(seconds) {
            try await Task.sleep(for: .seconds(every))
            let at = Int((ContinuousClock.now - start).components.seconds)
            for (index, node) in nodes.enumerated() {
                guard node.process.isRunning, let sample = Self.sample(node.process.processIdentifier) else { continue }
                samples[index].append(sample)
                lines.append("\(at),\(index),\(sample.rss),\(sample.fds),\(sample.sockets)")
            }
        }
        if let path = ProcessInfo.processInfo.environment["AEMP_CHAOS_SOAK_CSV"] {
            try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        for (index, node) in nodes.enumerated() {
            #expect(node.process.isRunning, "node \(index) ended: \(node.transcript)")
            let series = samples[index]
            guard series.count >= 4 else {
                Issue.record("node \(index): only \(series.count) samples")
                continue
            }
            // After the first quarter (start-up), memory and descriptors stay flat.
            let settled = Array(series[(series.count / 4)...])
            let firstHalf = settled.prefix(settled.count / 2).map(\.rss)
            let lastHalf = settled.suffix(settled.count / 2).map(\.rss)
            let early = firstHalf.reduce(0, +) / max(1, firstHalf.count)
            let late = lastHalf.reduce(0, +) / max(1, lastHalf.count)
            let fds = Set(settled.map(\.fds))
            let sockets = Set(settled.map(\.sockets))
            print("soak node \(index): RSS \(early) → \(late) kB, fds \(fds.min() ?? 0)–\(fds.max() ?? 0), sockets \(sockets.min() ?? 0)–\(sockets.max() ?? 0)")
            #expect(late <= early + early / 10 + 2048, "node \(index): RSS grew from \(early) to \(late) kB")
            #expect((fds.max() ?? 0) - (fds.min() ?? 0) <= 2, "node \(index): descriptors \(fds.sorted())")
        }
        // The sinks saw every message of every sender in order.
        for sink in nodes[0..<2] {
            let progress = sink.output.text.split(separator: "\n").filter { $0.hasPrefix("progress ") }
            #expect(!progress.isEmpty && progress.allSatisfy { $0.hasSuffix("gaps=0 reorders=0") }, "\(sink.transcript)")
        }
    }

    @Test("SIGSTOP: the stopped peer is detected within the timeout + 1 s, and after SIGCONT they reconnect", .timeLimit(.minutes(15)))
    func stoppedPeer() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let seedAddress = "127.0.0.1:\(AempBinary.freePort())"
        let liveness = ["liveness_timeout", String(Int(Self.liveness))]
        let (a, _) = try await sandbox.startNode(["nodeid", "chaos-a", "binds", seedAddress, "seeds", seedAddress] + liveness)
        defer { a.signal(SIGKILL) }
        let (b, _) = try await sandbox.startNode(
            ["nodeid", "chaos-b", "binds", "127.0.0.1:\(AempBinary.freePort())", "seeds", seedAddress] + liveness)
        defer { b.signal(SIGKILL) }
        #expect(b.output.text.contains("liveness:     a peer silent for \(Int(Self.liveness)) s is taken as lost"), "\(b.transcript)")
        #expect(await a.waitUntil { $0.errors.text.contains("node chaos-b is up") }, "\(a.transcript)")

        var times: [Duration] = []
        for trial in 1...Self.trials {
            let stopped = ContinuousClock.now
            b.signal(SIGSTOP)
            let downText = "node chaos-b is down: \(Self.silence)"
            let seen = await a.waitUntil(timeout: .seconds(Self.liveness + 10)) { Self.count($0, downText) >= trial }
            let elapsed = ContinuousClock.now - stopped
            #expect(seen, "trial \(trial): \(a.transcript)")
            guard seen else {
                b.signal(SIGCONT)
                break
            }
            times.append(elapsed)
            #expect(elapsed < .seconds(Self.liveness + 1), "trial \(trial): detected after \(elapsed)")
            #expect(elapsed >= .seconds(Self.liveness - 0.1), "trial \(trial): detected after \(elapsed)")

            // The stopped side resumes: it finds its connection closed, and the two reconnect (b
            // dials its seed again).
            b.signal(SIGCONT)
            #expect(await b.waitUntil { Self.count($0, "node chaos-a is up") >= trial + 1 }, "\(b.transcript)")
            #expect(await a.waitUntil { Self.count($0, "node chaos-b is up") >= trial + 1 }, "\(a.transcript)")
        }
        print(Self.summary("SIGSTOP detection (liveness_timeout \(Self.liveness) s)", times))
        let client = ["AEMP_CONFIG": "{\"seeds\":[\"\(seedAddress)\"]}"]
        let call = try await sandbox.client(["cal", "chaos-b#", "time"], environment: client)
        #expect(call.status == 0, "\(call.process.transcript)")
    }

    @Test("partition: both sides detect it within the timeout + 1 s; after it heals they reconnect and the database converges", .timeLimit(.minutes(15)))
    func partition() async throws {
        guard NetworkNamespaces.enabled else { return }
        let network = try NetworkNamespaces(hosts: 2)
        defer { network.tearDown() }
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let seed = "\(network.hosts[0].ipv4):4040"
        let liveness = ["liveness_timeout", String(Int(Self.liveness))]
        var nodes: [AempProcess] = []
        defer { for node in nodes { node.signal(SIGKILL) } }
        for host in network.hosts {
            let (node, _) = try await sandbox.startNode(
                ["nodeid", host.name, "binds", "[\"*:4040\"]", "seeds", seed] + liveness, launcher: host.launcher)
            nodes.append(node)
        }
        #expect(await nodes[0].waitUntil { $0.errors.text.contains("node host2 is up") }, "\(nodes[0].transcript)")
        #expect(await nodes[1].waitUntil { $0.errors.text.contains("node host1 is up") }, "\(nodes[1].transcript)")

        var times: [Duration] = []
        var heals: [Duration] = []
        for trial in 1...Self.trials {
            // Pull host2's cable: nothing is closed, every packet is lost.
            let cut = ContinuousClock.now
            try network.setLink(of: network.hosts[1], up: false)
            let atHost1 = await Self.timeUntil(nodes[0], count: trial, logs: "node host2 is down: \(Self.silence)", since: cut)
            let atHost2 = await Self.timeUntil(nodes[1], count: trial, logs: "node host1 is down: \(Self.silence)", since: cut)
            let one = try #require(atHost1, "trial \(trial): \(nodes[0].transcript)")
            let two = try #require(atHost2, "trial \(trial): \(nodes[1].transcript)")
            times += [one, two]
            #expect(one < .seconds(Self.liveness + 1) && two < .seconds(Self.liveness + 1), "host1 \(one), host2 \(two)")

            // Heal: host2 dials its seed again (back-off under a second at first), both see each
            // other up again.
            let healed = ContinuousClock.now
            try network.setLink(of: network.hosts[1], up: true)
            let up = await nodes[0].waitUntil(timeout: .seconds(30)) { Self.count($0, "node host2 is up") >= trial + 1 }
            #expect(up, "\(nodes[0].transcript)")
            heals.append(ContinuousClock.now - healed)
            // The other side too (its log line can trail host1's by a moment).
            let upThere = await nodes[1].waitUntil(timeout: .seconds(30)) { Self.count($0, "node host1 is up") >= trial + 1 }
            #expect(upThere, "\(nodes[1].transcript)")
        }
        print(Self.summary("partition detection, each side counted (liveness_timeout \(Self.liveness) s)", times))
        print(Self.summary("partition healed to node up", heals))
        #expect(heals.allSatisfy { $0 < .seconds(15) }, "\(heals)")
        let client = ["AEMP_CONFIG": "{\"seeds\":[\"127.0.0.1:4040\"]}"]
        for (from, to) in [(network.hosts[0], network.hosts[1]), (network.hosts[1], network.hosts[0])] {
            let listed = try await sandbox.client(["nodes"], environment: client, launcher: from.launcher, timeout: .seconds(20))
            #expect(listed.output.contains(to.name), "\(from.name): \(listed.process.transcript)")
            let call = try await sandbox.client(["cal", "\(to.name)#", "time"], environment: client, launcher: from.launcher)
            #expect(call.status == 0, "\(from.name) → \(to.name): \(call.process.transcript)")
        }
    }
}
