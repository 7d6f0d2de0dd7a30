#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// Nodes on different hosts: three network namespaces on a bridge (10.77.0.1–3, fd77::1–3), one
/// `aemp run` per host with a wildcard bind on port 4040, host1 the seed of all. What the README's
/// multi-machine example promises: every node reaches every other, in both directions, and
/// `aemp nodes` on each host lists them all. Clients use their own host's node (127.0.0.1:4040) as
/// seed, so a node that published its loopback addresses would send them to the wrong host.
@Suite(
    "aemp on several hosts (network namespaces)", .serialized,
    .enabled(if: AempBinary.path != nil, "needs the built aemp executable"),
    .enabled(
        if: NetworkNamespaces.enabled,
        "network namespaces are not available here: \(NetworkNamespaces.unavailableReason ?? "")"))
struct MultiHostTests {
    static let secret = "multi-host-test-secret"

    @Test("three hosts with wildcard binds reach each other and list each other", .timeLimit(.minutes(2)))
    func wildcardBindsAcrossHosts() async throws {
        let network = try NetworkNamespaces(hosts: 3)
        defer { network.tearDown() }
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let seed = "\(network.hosts[0].ipv4):4040"

        var nodes: [AempProcess] = []
        defer { for node in nodes { node.signal(SIGKILL) } }
        for host in network.hosts {
            let (node, id) = try await sandbox.startNode(
                ["nodeid", host.name, "binds", "[\"*:4040\"]", "seeds", seed], launcher: host.launcher)
            nodes.append(node)
            #expect(id == host.name)
            // The banner lists what the node publishes: its host's addresses, never loopback.
            let listening = node.output.text.split(separator: "\n").first { $0.contains("listening on:") } ?? ""
            #expect(listening.hasSuffix("listening on: \(host.ipv4):4040 [\(host.ipv6)]:4040"), "\(node.transcript)")
        }

        let client = ["AEMP_CONFIG": "{\"seeds\":[\"127.0.0.1:4040\"]}"]
        // Every host calls every other host's node (a request and its reply cross the link both ways),
        // and sends a message that the other node confirms.
        for from in network.hosts {
            for to in network.hosts where to.name != from.name {
                let call = try await sandbox.client(
                    ["cal", "\(to.name)#", "time"], environment: client, launcher: from.launcher, timeout: .seconds(20))
                #expect(call.status == 0, "\(from.name) → \(to.name): \(call.process.transcript)")
                let seconds = Double(call.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                #expect(abs(seconds - Date().timeIntervalSince1970) < 60, "\(call.process.transcript)")

                let sent = try await sandbox.client(
                    ["snd", "\(to.name)#", "devnull", "from \(from.name)"], environment: client, launcher: from.launcher,
                    timeout: .seconds(20))
                #expect(sent.status == 0 && sent.output == "message sent successfully\n", "\(sent.process.transcript)")
            }
        }

        // `aemp nodes` on each host lists every node of the network (clients come and go: only the
        // named nodes are checked).
        for host in network.hosts {
            let listed = try await sandbox.client(["nodes"], environment: client, launcher: host.launcher, timeout: .seconds(20))
            #expect(listed.status == 0, "\(listed.process.transcript)")
            let names = Set(listed.output.split(separator: "\n").map(String.init)).filter { $0.hasPrefix("host") }
            #expect(names == ["host1", "host2", "host3"], "\(host.name): \(listed.process.transcript)")
        }

        // No node ever dialled its own host looking for another: no "already connected" refusals
        // and no connect timeouts in any node's log.
        for node in nodes {
            #expect(!node.errors.text.contains("connect timeout"), "\(node.transcript)")
        }
    }
}
