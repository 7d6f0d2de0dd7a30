#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import Synchronization

@testable import aemp

/// Collected output lines of one in-process `aemp` run.
final class OutputLines: Sendable {
    private let storage = Mutex<[String]>([])

    func append(_ line: String) { storage.withLock { $0.append(line) } }
    var lines: [String] { storage.withLock { $0 } }
    var text: String { lines.joined(separator: "\n") }
}

/// A temporary home for one test: an rc file path and captured output; runs `aemp` in-process.
final class CLISandbox: Sendable {
    let directory: String
    let output = OutputLines()
    let errors = OutputLines()

    init() throws {
        var template = Array("/tmp/aemp-cli-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw CLIError("mkdtemp failed") }
        directory = String(cString: created)
    }

    deinit { Self.remove(directory) }

    private static func remove(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard (status.st_mode & S_IFMT) == S_IFDIR else {
            unlink(path)
            return
        }
        if let handle = opendir(path) {
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name != "." && name != ".." { remove(path + "/" + name) }
            }
            closedir(handle)
        }
        rmdir(path)
    }

    var rcPath: String { directory + "/rc.json" }

    func context(
        environment extra: [String: String] = [:], backend: any NodeBackend = RecordingBackend()
    ) -> CLIContext {
        var environment = ["AEMP_RC": rcPath, "PATH": "/usr/bin:/bin", "TMPDIR": directory]
        for (key, value) in extra { environment[key] = value }
        let output = self.output
        let errors = self.errors
        return CLIContext(
            environment: environment, hostname: "testhost", output: { output.append($0) },
            errorOutput: { errors.append($0) }, backend: backend)
    }

    /// Runs `aemp <arguments>` in-process (ArgumentParser parse + run).
    func run(_ arguments: [String], environment: [String: String] = [:], backend: any NodeBackend = RecordingBackend())
        async throws
    {
        try await CLIContext.$current.withValue(context(environment: environment, backend: backend)) {
            try await AEMPCommand.runCommandLine(arguments)
        }
    }

    /// Runs and returns the CLIError message (fails the test if there is none).
    func failure(_ arguments: [String], environment: [String: String] = [:], backend: any NodeBackend = RecordingBackend())
        async -> String?
    {
        do {
            try await run(arguments, environment: environment, backend: backend)
            return nil
        } catch let error as CLIError {
            return error.message
        } catch {
            return "\(type(of: error)): \(error)"
        }
    }

    func config() throws -> ConfigFile { try ConfigFile.load(path: rcPath) }

    func writeFile(_ name: String, _ text: String) {
        let descriptor = open(directory + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(descriptor >= 0)
        _ = Array(text.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
    }

    func fileMode(_ name: String) -> mode_t? {
        var status = stat()
        guard stat(directory + "/" + name, &status) == 0 else { return nil }
        return status.st_mode & 0o7777
    }
}

/// A recording stand-in for the node layer: checks what the command layer hands to a backend and how
/// it prints the answers. It does not imitate a node.
final class RecordingBackend: NodeBackend {
    struct Call: Sendable {
        var command: String
        var configuration: NodeConfiguration
        var target: String
        var message: [Value]
    }

    private let calls = Mutex<[Call]>([])
    private let runs = Mutex<[RunOptions]>([])
    let reply: [Value]
    let reason: KillReason
    let nodes: [NodeID]
    let running: RunningNode
    let traced: NetworkTrace?

    init(
        reply: [Value] = [], reason: KillReason = .normal, nodes: [NodeID] = [], running: RunningNode? = nil,
        traced: NetworkTrace? = nil
    ) {
        self.reply = reply
        self.reason = reason
        self.nodes = nodes
        self.traced = traced
        self.running = running ?? RunningNode(nodeID: NodeID("anon/TESTTESTTE")!, listenerAddresses: ["127.0.0.1:4040"])
    }

    var recorded: [Call] { calls.withLock { $0 } }
    /// The options of every `run`, in order.
    var runOptions: [RunOptions] { runs.withLock { $0 } }
    /// The log level of every `run`, in order, by name (`"info"`).
    var runLogLevels: [String] { runOptions.map { "\($0.logLevel)" } }

    private func record(_ command: String, _ configuration: NodeConfiguration, _ target: String, _ message: [Value]) {
        calls.withLock { $0.append(Call(command: command, configuration: configuration, target: target, message: message)) }
    }

    func run(_ configuration: NodeConfiguration, options: RunOptions, started: @escaping @Sendable (RunningNode) -> Void) async throws {
        record("run", configuration, options.sendfileDirectory ?? "", options.dataPriority.map { [.text($0.description)] } ?? [])
        runs.withLock { $0.append(options) }
        started(running)
    }

    func sendFile(
        _ configuration: NodeConfiguration, to node: NodeID, file: SendFile.LocalFile, remotePath: String,
        timeout: Duration, progress: @escaping @Sendable (SendFile.Progress) -> Void
    ) async throws -> SendFile.Outcome {
        record("sendfile", configuration, node.rawValue, [.text(file.path), .int(Int64(file.size)), .text(remotePath)])
        progress(SendFile.Progress(sent: 0, total: file.size, elapsed: .zero))
        progress(SendFile.Progress(sent: file.size, total: file.size, elapsed: .seconds(1)))
        return SendFile.Outcome(bytes: file.size, sha256: "00", elapsed: .seconds(1))
    }

    func send(_ configuration: NodeConfiguration, to port: PortID, message: [Value], timeout: Duration) async throws -> [Value] {
        record("snd", configuration, port.description, message)
        return reply
    }

    func call(_ configuration: NodeConfiguration, port: PortID, message: [Value], timeout: Duration) async throws -> [Value] {
        record("cal", configuration, port.description, message)
        return reply
    }

    func monitor(_ configuration: NodeConfiguration, port: PortID) async throws -> KillReason {
        record("mon", configuration, port.description, [])
        return reason
    }

    func evaluate(_ configuration: NodeConfiguration, node: NodeID, code: String, timeout: Duration) async throws -> [Value] {
        record("eval", configuration, node.rawValue, [.text(code)])
        return reply
    }

    func upNodes(_ configuration: NodeConfiguration, timeout: Duration) async throws -> [NodeID] {
        record("nodes", configuration, "", [])
        return nodes
    }

    func trace(_ configuration: NodeConfiguration, from start: NodeID?, timeout: Duration) async throws -> NetworkTrace {
        record("trace", configuration, start?.rawValue ?? "", [.text("\(timeout)")])
        return traced ?? NetworkTrace(start: start ?? NodeID("seed")!, tracer: NodeID("anon/TRACERTRAC")!, nodes: [], listenersKnown: true)
    }
}
