#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import Foundation
import Testing

@testable import aemp

/// Real `aemp` processes on 127.0.0.1: `aemp run` nodes and client commands talking to them.
@Suite("aemp processes", .enabled(if: AempBinary.path != nil, "needs the built aemp executable"))
struct MultiProcessTests {
    static let secret = "multi-process-test-secret"

    /// Starts a seed node `a` on a free port (its own seed); returns it, its ID, its address and the
    /// client environment that uses it as seed.
    static func seed(_ sandbox: ProcessSandbox, extra: [String] = []) async throws -> (AempProcess, String, String, [String: String]) {
        let port = AempBinary.freePort()
        let address = "127.0.0.1:\(port)"
        let (node, id) = try await sandbox.startNode(["nodeid", "a", "binds", address, "seeds", address] + extra)
        return (node, id, address, ["AEMP_CONFIG": "{\"seeds\":[\"\(address)\"]}"])
    }

    @Test func runWithoutArgumentsAndASecondTerminal() async throws {
        // The rc file moves the embedded default's 127.0.0.1:4040 to a free port; no secret yet.
        let port = AempBinary.freePort()
        let sandbox = try ProcessSandbox(rc: "{\"binds\":[\"127.0.0.1:\(port)\"],\"seeds\":[\"127.0.0.1:\(port)\"]}")
        let (node, id) = try await sandbox.startNode([])
        defer { node.signal(SIGKILL) }
        #expect(id.hasPrefix("anon/"))
        #expect(node.output.text.contains("generated a new shared secret and saved it in \(sandbox.rcPath)"))
        #expect(node.output.text.contains("listening on: 127.0.0.1:\(port)"))
        #expect(node.output.text.contains("aemp cal '\(id)#' time"))

        // A second terminal: same rc file, nothing else.
        let nodes = try await sandbox.client(["nodes"])
        #expect(nodes.status == 0, "\(nodes.process.transcript)")
        #expect(nodes.output.split(separator: "\n").map(String.init) == [id], "\(nodes.process.transcript)")

        let time = try await sandbox.client(["cal", "\(id)#", "time"])
        #expect(time.status == 0, "\(time.process.transcript)")
        let seconds = try #require(Double(time.output.trimmingCharacters(in: .whitespacesAndNewlines)), "\(time.process.transcript)")
        #expect(abs(seconds - Date().timeIntervalSince1970) < 60)

        let sent = try await sandbox.client(["snd", "\(id)#", "devnull", "hello"])
        #expect(sent.status == 0 && sent.output == "message sent successfully\n", "\(sent.process.transcript)")

        // A Swift node refuses eval with an error reply.
        let evaluated = try await sandbox.client(["eval", id, "1", "+", "1"])
        #expect(evaluated.status == 1 && evaluated.errors.hasPrefix("aemp: "), "\(evaluated.process.transcript)")

        // A second node on the same port fails with a clear error.
        let second = try await sandbox.client(["run"])
        #expect(second.status == 1, "\(second.process.transcript)")
        #expect(second.errors.contains("aemp: run: cannot listen on '127.0.0.1:\(port)'"), "\(second.process.transcript)")

        // Ctrl-C ends the node cleanly.
        node.signal(SIGINT)
        #expect(await node.finish(timeout: .seconds(5)) == 0, "\(node.transcript)")
    }

    @Test func threeNodesMonitorsAndKillMinusNine() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let (a, _, address, client) = try await Self.seed(sandbox)
        defer { a.signal(SIGKILL) }
        let (b, _) = try await sandbox.startNode(["nodeid", "b", "binds", "127.0.0.1:0", "seeds", address])
        defer { b.signal(SIGKILL) }
        let (c, _) = try await sandbox.startNode(["nodeid", "c", "binds", "127.0.0.1:0", "seeds", address])
        defer { c.signal(SIGKILL) }
        #expect(await a.waitUntil { $0.errors.text.contains("node b is up") && $0.errors.text.contains("node c is up") }, "\(a.transcript)")

        // The seed's view: every node, without the asking client.
        let nodes = try await sandbox.client(["nodes"], environment: client)
        #expect(nodes.status == 0 && nodes.output == "a\nb\nc\n", "\(nodes.process.transcript)")

        // c is found through the seed's database and answers.
        let time = try await sandbox.client(["cal", "c#", "time"], environment: client)
        #expect(time.status == 0 && Double(time.output.trimmingCharacters(in: .whitespacesAndNewlines)) != nil, "\(time.process.transcript)")
        let sent = try await sandbox.client(["snd", "c#", "devnull", "[1,2,3]"], environment: client)
        #expect(sent.status == 0 && sent.output == "message sent successfully\n", "\(sent.process.transcript)")

        // A monitor of b's node port in a third process; once it is connected to b, kill -9 b.
        var monitorEnvironment = client
        monitorEnvironment["AEMP_LOG_LEVEL"] = "info"
        let monitor = try AempProcess(["mon", "b#"], environment: sandbox.environment(monitorEnvironment))
        #expect(await monitor.waitUntil { $0.errors.text.contains("node b is up") }, "\(monitor.transcript)")
        b.signal(SIGKILL)
        #expect(await monitor.finish(timeout: .seconds(10)) == 0, "\(monitor.transcript)")
        #expect(monitor.output.text.hasPrefix("transport_error b "), "\(monitor.transcript)")
        #expect(await a.waitUntil { $0.errors.text.contains("node b is down") }, "\(a.transcript)")

        // The survivors still talk.
        let after = try await sandbox.client(["cal", "c#", "time"], environment: client)
        #expect(after.status == 0, "\(after.process.transcript)")
    }

    @Test func wrongSecretDeliversNothing() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let (a, id, address, _) = try await Self.seed(sandbox)
        defer { a.signal(SIGKILL) }
        let wrong = ["AEMP_CONFIG": "{\"norc\":1,\"secret\":\"wrong\",\"seeds\":[\"\(address)\"]}"]
        let call = try await sandbox.client(["cal", "\(id)#", "time"], environment: wrong)
        #expect(call.status == 1, "\(call.process.transcript)")
        #expect(call.output.isEmpty, "\(call.process.transcript)")
        #expect(call.errors.contains("aemp: cal: \(id)# died: transport_error \(id) "), "\(call.process.transcript)")
        // Both sides say why in their logs.
        #expect(call.errors.contains("failed: authentication failure/shared secret mismatch"), "\(call.process.transcript)")
        #expect(
            await a.waitUntil { $0.errors.text.contains("failed: authentication failure/shared secret mismatch") },
            "\(a.transcript)")
    }

    @Test func unknownNode() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let (a, _, _, client) = try await Self.seed(sandbox)
        defer { a.signal(SIGKILL) }
        let monitor = try await sandbox.client(["mon", "nosuch#"], environment: client)
        #expect(monitor.status == 0, "\(monitor.process.transcript)")
        #expect(monitor.output.hasPrefix("transport_error nosuch "), "\(monitor.process.transcript)")
        #expect(
            monitor.output.contains("no known address") || monitor.output.contains("connect timeout"),
            "\(monitor.process.transcript)")
        let call = try await sandbox.client(["cal", "nosuch#", "time"], environment: client)
        #expect(call.status == 1, "\(call.process.transcript)")
        #expect(call.errors.contains("no known address") || call.errors.contains("connect timeout"), "\(call.process.transcript)")
    }

    @Test func clientFailures() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let (a, _, _, client) = try await Self.seed(sandbox)
        defer { a.signal(SIGKILL) }
        let deadSeed = ["AEMP_CONFIG": "{\"seeds\":[\"127.0.0.1:\(AempBinary.freePort())\"]}"]
        // The two 5-second waits run side by side.
        async let silent = sandbox.client(["cal", "a#", "devnull"], environment: client)
        async let noSeed = sandbox.client(["nodes"], environment: deadSeed)

        let missing = try await sandbox.client(["snd", "a#nosuchport", "x"], environment: client)
        #expect(missing.status == 0, "\(missing.process.transcript)")
        #expect(missing.output.hasPrefix("no_such_port "), "\(missing.process.transcript)")

        let evaluated = try await sandbox.client(["eval", "nosuch", "1"], environment: client)
        #expect(evaluated.status == 1, "\(evaluated.process.transcript)")
        #expect(evaluated.errors.contains("aemp: eval: nosuch is down: transport_error nosuch "), "\(evaluated.process.transcript)")

        let timedOut = try await silent
        #expect(timedOut.status == 1, "\(timedOut.process.transcript)")
        #expect(timedOut.errors.contains("aemp: cal: no reply from a# within 5 seconds"), "\(timedOut.process.transcript)")
        let unreachable = try await noSeed
        #expect(unreachable.status == 1, "\(unreachable.process.transcript)")
        #expect(unreachable.errors.contains("aemp: nodes: no seed connection within 5 seconds"), "\(unreachable.process.transcript)")
    }

    // MARK: sendfile

    /// A file of `size` pseudo-random bytes in the sandbox.
    static func makeFile(_ sandbox: ProcessSandbox, _ name: String, size: Int) throws -> (String, Data) {
        var generator = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: size)
        for index in stride(from: 0, to: size, by: 8) {
            let random = generator.next()
            for offset in 0..<min(8, size - index) { bytes[index + offset] = UInt8(truncatingIfNeeded: random >> (offset * 8)) }
        }
        let path = sandbox.directory + "/" + name
        let data = Data(bytes)
        try data.write(to: URL(fileURLWithPath: path))
        return (path, data)
    }

    @Test func sendfileStreamsAndVerifies() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let inbox = sandbox.directory + "/inbox"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: false)
        // The receiving node's data connections on a nice-5 thread of their own.
        let (a, _, _, client) = try await Self.seed(sandbox, extra: ["sendfile_dir", inbox, "data_priority", "5"])
        defer { a.signal(SIGKILL) }
        #expect(a.output.text.contains("receives files below \(inbox)"))
        #expect(a.output.text.contains("data threads: nice 5 priority"))
        let (path, data) = try Self.makeFile(sandbox, "payload.bin", size: 3 * 1024 * 1024 + 17)

        let sent = try await sandbox.client(["sendfile", "a", path, "sub/dir/copy.bin"], environment: client, timeout: .seconds(20))
        #expect(sent.status == 0, "\(sent.process.transcript)")
        #expect(sent.output.contains("(100%)"), "\(sent.process.transcript)")
        #expect(sent.output.contains("sha256 ") && sent.output.contains(" verified"), "\(sent.process.transcript)")
        #expect(FileManager.default.contents(atPath: inbox + "/sub/dir/copy.bin") == data)
        #expect(await a.waitUntil { $0.errors.text.contains("sendfile: received sub/dir/copy.bin") }, "\(a.transcript)")

        // Default remote name: the base name; an existing file is replaced.
        let again = try await sandbox.client(["sendfile", "a#", path], environment: client, timeout: .seconds(20))
        #expect(again.status == 0, "\(again.process.transcript)")
        #expect(FileManager.default.contents(atPath: inbox + "/payload.bin") == data)
        // No partial files are left behind.
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: inbox).filter { $0.contains("aemp-partial") }
        #expect(leftovers.isEmpty)
    }

    @Test func sendfileRefusesEscapes() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let inbox = sandbox.directory + "/inbox"
        let outside = sandbox.directory + "/outside"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: false)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: false)
        try FileManager.default.createSymbolicLink(atPath: inbox + "/link", withDestinationPath: outside)
        let (a, id, address, client) = try await Self.seed(sandbox, extra: ["sendfile_dir", inbox])
        defer { a.signal(SIGKILL) }
        let (path, _) = try Self.makeFile(sandbox, "small.bin", size: 1000)

        // A symbolic link on the way is only visible to the receiver.
        let linked = try await sandbox.client(["sendfile", "a", path, "link/x.bin"], environment: client)
        #expect(linked.status == 1, "\(linked.process.transcript)")
        #expect(linked.errors.contains("a refused: link/x.bin: link is a symbolic link"), "\(linked.process.transcript)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)

        // The command refuses `..` and absolute paths before connecting ...
        let dotdot = try await sandbox.client(["sendfile", "a", path, "../x.bin"], environment: client)
        #expect(dotdot.status == 1 && dotdot.errors.contains("`..` is not allowed"), "\(dotdot.process.transcript)")

        // ... and so does the receiver when a sender does not check.
        let configuration = NodeConfiguration(binds: ["127.0.0.1:0"], seeds: [address], secret: Self.secret)
        for remote in ["../escape.bin", "/tmp/escape.bin", "sub/../../escape.bin"] {
            let file = try SendFile.LocalFile.open(path)
            defer { file.closeFile() }
            do {
                _ = try await LiveNodeBackend().sendFile(
                    configuration, to: NodeID(id)!, file: file, remotePath: remote, timeout: .seconds(10), progress: { _ in })
                Issue.record("\(remote) was accepted")
            } catch let error as CLIError {
                #expect(error.message.hasPrefix("sendfile: a refused: "), "\(error.message)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: sandbox.directory + "/escape.bin"))
    }

    @Test func sendfileToANodeWithoutReceiver() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let (a, _, _, client) = try await Self.seed(sandbox)
        defer { a.signal(SIGKILL) }
        #expect(a.output.text.contains("sendfile:     off"))
        // The default data group starts with the first data connection, not with the node.
        let nodes = try await sandbox.client(["nodes"], environment: client)
        #expect(nodes.status == 0, "\(nodes.process.transcript)")
        #expect(Self.dataThreads(of: a) == 0)
        let (path, _) = try Self.makeFile(sandbox, "small.bin", size: 10)
        let sent = try await sandbox.client(["sendfile", "a", path], environment: client)
        #expect(sent.status == 1, "\(sent.process.transcript)")
        #expect(sent.errors.contains("receiving files is not enabled on node a"), "\(sent.process.transcript)")
        #if os(Linux)
        #expect(Self.dataThreads(of: a) >= 1)  // one per core
        #endif
    }

    /// How many threads of the default data group (`AEMP-DATA-…`) the process has (Linux; 0 elsewhere).
    static func dataThreads(of node: AempProcess) -> Int {
        let tasks = "/proc/\(node.process.processIdentifier)/task"
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? []
        return threads.filter { thread in
            ((try? String(contentsOfFile: "\(tasks)/\(thread)/comm", encoding: .utf8)) ?? "").hasPrefix("AEMP-DATA-")
        }.count
    }
}
