// aemp-chaos-node: a node process for the chaos tests (Tests/aempCLITests/ChaosTests.swift) and
// scripts/chaos.sh. It runs one role and reports on standard output, one line per event, flushed at
// once, so that a test reading its output sees everything up to the moment it is killed.
//
//   aemp-chaos-node <role> key=value...
//   common keys: id=<node id> bind=<host:port> seeds=<a,b,...> secret=<s> liveness=<seconds>
//   roles:
//     sink            registers a port in family "chaos" and checks the sequence numbers each source
//                     sends: "sink <port>", then "progress <source> <count> <last> gaps=<n> reorders=<n>"
//                     every 100 000 messages and once a second while messages flow
//     storm count=N [rate=R] [sinks=S]  finds the sinks (at least S, default 1) in family "chaos", monitors them and sends [source, seq] 0..<N
//                     to each (flow-controlled), reporting "sent <n> rss=<kB>" every 100 000 messages,
//                     "monitor <reason>" when a sink dies, "done sent=<n> peak_rss=<kB>" at the end
//     burst count=N size=B  runs the node as a ServiceGroup service that shuts down gracefully on
//                     SIGTERM; finds the sink, creates a port ("victim <port>") and, when that port
//                     gets a message, queues N messages of B bytes for the sink at once ("queued N");
//                     after the shutdown "stopped <summary>" and exit 0
//     mesh size=N     registers a port in family "mesh", waits until N nodes are there, sends one
//                     message to every other node's port: "mesh converged <s> s", "mesh complete
//                     <received> <s> s", "master <node>" (its database master), then "down <node> <reason>"
//                     for every node that goes down; when the master changes, "master <node> at=<ms>"
//                     and "failover to <node> answered at=<ms> family=<n>" (a db_family through it;
//                     ms: wall clock since 1970)
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import Foundation
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import Synchronization

/// One output line, written and flushed at once.
func report(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
}

/// The resident set size of this process in kB.
func residentKilobytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
}

/// Wall-clock time in milliseconds since 1970 (comparable between processes on one machine).
func epochMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}

/// The sequence check of a sink: per source, every message must carry the next number.
final class SequenceCheck: Sendable {
    struct Source {
        var count = 0
        var last = -1
        var gaps = 0
        var reorders = 0
    }
    private let sources = Mutex<[String: Source]>([:])

    /// Records one message; returns the source's state when it is time to report.
    func record(source: String, sequence: Int) -> (String, Source)? {
        sources.withLock { table in
            var entry = table[source, default: Source()]
            if sequence < entry.last + 1 {
                entry.reorders += 1
            } else if sequence > entry.last + 1 {
                entry.gaps += 1
            }
            entry.last = max(entry.last, sequence)
            entry.count += 1
            table[source] = entry
            return entry.count % 100_000 == 0 ? (source, entry) : nil
        }
    }

    var all: [(String, Source)] { sources.withLock { $0.sorted { $0.key < $1.key } } }
}

func line(_ source: String, _ entry: SequenceCheck.Source) -> String {
    "progress \(source) \(entry.count) \(entry.last) gaps=\(entry.gaps) reorders=\(entry.reorders)"
}

@main
struct ChaosNode {
    static func main() async throws {
        var arguments = CommandLine.arguments.dropFirst()
        guard let role = arguments.popFirst() else {
            report("usage: aemp-chaos-node sink|storm|mesh key=value...")
            exit(2)
        }
        var settings: [String: String] = [:]
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "=") else { continue }
            settings[String(argument[..<equals])] = String(argument[argument.index(after: equals)...])
        }
        var configuration = NodeConfiguration(
            nodeID: settings["id"], binds: settings["bind"].map { [$0] } ?? ["127.0.0.1:0"],
            seeds: (settings["seeds"] ?? "").split(separator: ",").map(String.init), secret: settings["secret"] ?? "chaos")
        if let seconds = settings["liveness"].flatMap(Double.init) {
            configuration.livenessTimeout = .milliseconds(Int64(seconds * 1000))
        }
        if let seconds = settings["connect"].flatMap(Double.init) {
            configuration.connectInterval = .milliseconds(Int64(seconds * 1000))
        }
        let node = try await Node.start(configuration)
        report("node \(node.nodeID) \(node.listenerAddresses.joined(separator: " "))")
        switch role {
        case "sink": try await sink(node)
        case "storm":
            try await storm(
                node, count: Int(settings["count"] ?? "") ?? 1_000_000, rate: settings["rate"].flatMap(Int.init),
                sinks: Int(settings["sinks"] ?? "") ?? 1)
        case "mesh": try await mesh(node, size: Int(settings["size"] ?? "") ?? 2)
        case "burst":
            try await burst(node, count: Int(settings["count"] ?? "") ?? 100_000, size: Int(settings["size"] ?? "") ?? 256)
        default:
            report("unknown role \(role)")
            exit(2)
        }
    }

    static func sink(_ node: Node) async throws {
        let check = SequenceCheck()
        let port = node.port { _, message in
            guard message.count >= 2, let source = message[0].stringValue, let sequence = message[1].intValue,
                sequence >= 0  // -1: the end marker
            else { return }
            if let (name, entry) = check.record(source: source, sequence: Int(sequence)) { report(line(name, entry)) }
        }
        node.dbReg("chaos", port: port, value: .text(node.nodeID.rawValue))
        report("sink \(port)")
        var reported: [String: Int] = [:]
        while true {
            try await Task.sleep(for: .seconds(1))
            for (name, entry) in check.all where reported[name] != entry.count {
                reported[name] = entry.count
                report(line(name, entry))
            }
        }
    }

    /// `rate`: messages per second to each sink (paced in 10 ms steps); nil: as fast as flow control allows.
    static func storm(_ node: Node, count: Int, rate: Int?, sinks expected: Int) async throws {
        var sinks: [PortID] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while sinks.count < expected {
            let family = (try? await node.dbFamily("chaos", timeout: .seconds(2))) ?? [:]
            sinks = family.keys.compactMap(PortID.init).sorted { $0.description < $1.description }
            if sinks.count < expected {
                guard ContinuousClock.now < deadline else {
                    report("no sink found")
                    exit(1)
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let alive = Mutex(Set(sinks.map(\.description)))
        var guards: [MonitorGuard] = []
        for sink in sinks {
            guards.append(node.monitor(sink) { reason in
                _ = alive.withLock { $0.remove(sink.description) }
                report("monitor \(sink) \(reason)")
            })
        }
        report("storm to \(sinks.map(\.description).joined(separator: " "))")
        let source = Value.text(node.nodeID.rawValue)
        var peak = residentKilobytes()
        var sent = 0
        let start = ContinuousClock.now
        for sequence in 0..<count {
            if let rate, rate > 0, sequence % max(1, rate / 100) == 0 {
                // Paced: sequence n is due n/rate seconds after the start.
                let due = start + .milliseconds(Int64(sequence) * 1000 / Int64(rate))
                if due > .now { try await Task.sleep(until: due) }
            }
            let targets = alive.withLock { live in sinks.filter { live.contains($0.description) } }
            if targets.isEmpty { break }
            for sink in targets {
                // Fire and forget, with a flow-controlled send every 256 messages: memory stays bounded.
                if sequence % 256 == 255 {
                    await node.send(to: sink, [source, .int(Int64(sequence))])
                } else {
                    node.send(sink, [source, .int(Int64(sequence))])
                }
            }
            sent += 1
            if sent % 100_000 == 0 {
                peak = max(peak, residentKilobytes())
                report("sent \(sent) rss=\(residentKilobytes())")
            }
        }
        // Let the last messages leave before reporting.
        for sink in sinks { await node.send(to: sink, [source, .int(-1)]) }
        peak = max(peak, residentKilobytes())
        report("done sent=\(sent) peak_rss=\(peak)")
        try await Task.sleep(for: .seconds(1))
        _ = guards
        await node.shutdown()
    }

    static func burst(_ node: Node, count: Int, size: Int) async throws {
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: node)], gracefulShutdownSignals: [.sigterm], logger: Logger(label: "burst")))
        let running = Task { try await group.run() }
        var sink: PortID?
        for _ in 0..<300 where sink == nil {
            sink = ((try? await node.dbFamily("chaos", timeout: .seconds(2))) ?? [:]).keys.compactMap(PortID.init).first
            if sink == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard let sink else {
            report("no sink found")
            exit(1)
        }
        let source = Value.text(node.nodeID.rawValue)
        let payload = Value.bytes(ByteBuffer(repeating: 0x62, count: size))
        let victim = node.port { _, _ in
            for sequence in 0..<count { node.send(sink, [source, .int(Int64(sequence)), payload]) }
            report("queued \(count)")
        }
        report("victim \(victim)")
        try await running.value
        report("stopped")
        exit(0)
    }

    static func mesh(_ node: Node, size: Int) async throws {
        let started = ContinuousClock.now
        let heard = Mutex(Set<String>())
        let port = node.port { context, _ in
            let count = heard.withLock { set -> Int in
                set.insert(context.sourceNode.rawValue)
                return set.count
            }
            if count == size - 1 { report("mesh complete \(count) \(ContinuousClock.now - started)") }
        }
        node.dbReg("mesh", port: port, value: .text(node.nodeID.rawValue))
        let watcher = node.monitorNodes { id, up, reason in
            if !up { report("down \(id) \(reason)") }
        }
        var others: [PortID] = []
        while true {
            let family = (try? await node.dbFamily("mesh", timeout: .seconds(5))) ?? [:]
            if family.count >= size {
                others = family.keys.compactMap(PortID.init).filter { $0 != port }
                break
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        report("mesh converged \(ContinuousClock.now - started) rss=\(residentKilobytes())")
        // Master failover, timed in wall-clock milliseconds so that the test can compare with the
        // moment it killed the master.
        let masterWatch = Task {
            var current = await node.databaseMaster()
            report("master \(current?.rawValue ?? "-")")
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(20))
                let now = await node.databaseMaster()
                guard now != current else { continue }
                let changed = epochMilliseconds()
                report("master \(now?.rawValue ?? "-") at=\(changed)")
                current = now
                guard now != nil else { continue }
                // The database answers through the new master.
                let family = try? await node.dbFamily("mesh", timeout: .seconds(10))
                report("failover to \(now!.rawValue) answered at=\(epochMilliseconds()) family=\(family?.count ?? -1)")
            }
        }
        // As an application does: watch each destination and send again when the connection was
        // lost before the message could be confirmed (at most 5 times per destination).
        let retries = Mutex([String: Int]())
        var monitors: [MonitorGuard] = []
        for other in others {
            node.send(other, ["hello"])
            monitors.append(node.monitor(other) { reason in
                let attempt = retries.withLock { table -> Int in
                    table[other.description, default: 0] += 1
                    return table[other.description]!
                }
                report("resend \(other) \(attempt) \(reason)")
                if attempt <= 5 { node.send(other, ["hello"]) }
            })
        }
        while !Task.isCancelled {
            try await Task.sleep(for: .seconds(5))
            report("rss \(residentKilobytes())")
        }
        masterWatch.cancel()
        watcher.cancel()
        for monitor in monitors { monitor.cancel() }
    }
}
