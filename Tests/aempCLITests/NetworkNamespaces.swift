#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Test hosts on one machine: Linux network namespaces joined by a bridge, each with its own loopback
/// and one address on a private test subnet (10.77.0.0/24, fd77::/64) that exists only inside the
/// namespaces this helper makes. Everything is removed by ``tearDown()`` (and on deinit).
///
/// Needs root and iproute2's `ip`; ``unavailableReason`` says why a machine cannot make them.
final class NetworkNamespaces: @unchecked Sendable {
    /// One host: its namespace and addresses.
    struct Host: Sendable {
        var name: String
        var namespace: String
        var ipv4: String
        var ipv6: String
        /// `ip netns exec <namespace>`: prefix a command with it to run it on this host.
        var launcher: [String] { [NetworkNamespaces.ip, "netns", "exec", namespace] }
    }

    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    } ?? "/usr/sbin/ip"

    /// Why network namespaces cannot be made here (nil: they can). Checked once, by making one.
    static let unavailableReason: String? = {
        guard FileManager.default.isExecutableFile(atPath: ip) else {
            return "iproute2's ip is not installed (apt-get install iproute2)"
        }
        guard geteuid() == 0 else { return "network namespaces need root" }
        let probe = "aemp-probe-\(getpid())"
        let added = run([ip, "netns", "add", probe])
        defer { _ = run([ip, "netns", "del", probe]) }
        guard added.status == 0 else { return "ip netns add is refused here: \(added.output)" }
        let bridge = run([ip, "-n", probe, "link", "add", "br0", "type", "bridge"])
        guard bridge.status == 0 else { return "bridges are refused in a network namespace: \(bridge.output)" }
        return nil
    }()

    /// Whether the multi-host tests run: where namespaces work, and always in CI (as root there, a
    /// refusal is a failure to report, not a reason to skip).
    static var enabled: Bool { unavailableReason == nil || ProcessInfo.processInfo.environment["CI"] == "true" }

    let hosts: [Host]
    private let switchNamespace: String
    private var namespaces: [String]
    private var torn = false

    /// Makes `count` hosts (1 ≤ count ≤ 200) named `host1`..., with 10.77.0.<i> and fd77::<i>, joined
    /// by a bridge in a namespace of its own.
    init(hosts count: Int) throws {
        precondition((1...200).contains(count))
        if let reason = Self.unavailableReason { throw CLITestFailure("network namespaces: \(reason)") }
        let tag = "\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        switchNamespace = "aemp-sw-\(tag)"
        hosts = (1...count).map {
            Host(name: "host\($0)", namespace: "aemp-h\($0)-\(tag)", ipv4: "10.77.0.\($0)", ipv6: "fd77::\($0)")
        }
        namespaces = [switchNamespace] + hosts.map(\.namespace)
        do {
            try Self.check([Self.ip, "netns", "add", switchNamespace])
            try Self.check([Self.ip, "-n", switchNamespace, "link", "add", "br0", "type", "bridge"])
            try Self.check([Self.ip, "-n", switchNamespace, "link", "set", "br0", "up"])
            for (index, host) in hosts.enumerated() {
                try Self.check([Self.ip, "netns", "add", host.namespace])
                try Self.check([Self.ip, "-n", host.namespace, "link", "set", "lo", "up"])
                // A veth pair: eth0 on the host, port<i> on the bridge.
                try Self.check([
                    Self.ip, "-n", host.namespace, "link", "add", "eth0", "type", "veth", "peer", "name", "port\(index + 1)",
                    "netns", switchNamespace,
                ])
                try Self.check([Self.ip, "-n", switchNamespace, "link", "set", "port\(index + 1)", "master", "br0", "up"])
                try Self.check([Self.ip, "-n", host.namespace, "addr", "add", "\(host.ipv4)/24", "dev", "eth0"])
                try Self.check([Self.ip, "-n", host.namespace, "addr", "add", "\(host.ipv6)/64", "dev", "eth0", "nodad"])
                try Self.check([Self.ip, "-n", host.namespace, "link", "set", "eth0", "up"])
            }
        } catch {
            tearDown()
            throw error
        }
    }

    deinit { tearDown() }

    /// Removes every namespace (their interfaces go with them). Processes still running in them
    /// keep their sockets until they exit: stop them first.
    func tearDown() {
        guard !torn else { return }
        torn = true
        for namespace in namespaces.reversed() { _ = Self.run([Self.ip, "netns", "del", namespace]) }
    }

    /// Takes the link of `host` down (a pulled cable) or up again.
    func setLink(of host: Host, up: Bool) throws {
        try Self.check([Self.ip, "-n", host.namespace, "link", "set", "eth0", up ? "up" : "down"])
    }

    /// Runs a command to completion (bounded: `ip` answers at once) and returns its status and output.
    @discardableResult
    static func run(_ command: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return (-1, "\(command[0]): \(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static func check(_ command: [String]) throws {
        let result = run(command)
        guard result.status == 0 else {
            throw CLITestFailure("\(command.joined(separator: " ")) failed (\(result.status)): \(result.output)")
        }
    }
}
