#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// Locating the built `aemp` executable and running it as a child process with hard time limits.
enum AempBinary {
    /// The `aemp` executable: next to the test bundle (same build directory), else
    /// `<package>/.build/debug/aemp` derived from this file's path.
    static let path: String? = {
        var candidates: [String] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("aemp").path)
        }
        for bundle in Bundle.allBundles {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("aemp").path)
        }
        let package = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(package.appendingPathComponent(".build/debug/aemp").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).
    static func freePort() -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(descriptor >= 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(bound == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Collected bytes of one output stream of a child process.
final class StreamText: Sendable {
    private let storage = Mutex<[UInt8]>([])

    func append(_ data: Data) { storage.withLock { $0.append(contentsOf: data) } }
    var text: String { storage.withLock { String(decoding: $0, as: UTF8.self) } }
}

/// One running `aemp` process. It is killed (SIGKILL) when dropped, and every wait is bounded.
final class AempProcess: @unchecked Sendable {
    let process = Process()
    let output = StreamText()
    let errors = StreamText()
    let arguments: [String]
    /// The write end of its standard input, when started with `input: true`.
    let input: FileHandle?

    /// Starts `aemp arguments...` with exactly `environment`; with a `launcher` (e.g. `ip netns exec
    /// <name>`), as `launcher... aemp arguments...`; with an `executable`, that program instead of aemp;
    /// with `input`, standard input is a pipe the test writes to (``type(_:)``), else /dev/null.
    init(
        _ arguments: [String], environment: [String: String], launcher: [String] = [], executable: String? = nil,
        input: Bool = false
    ) throws {
        guard let binary = executable ?? AempBinary.path else {
            throw CLITestFailure("the aemp executable was not found next to the tests")
        }
        self.arguments = arguments
        if let program = launcher.first {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(launcher.dropFirst()) + [binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        process.environment = environment
        if input {
            let pipe = Pipe()
            process.standardInput = pipe
            self.input = pipe.fileHandleForWriting
        } else {
            process.standardInput = FileHandle.nullDevice
            self.input = nil
        }
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let output = self.output
        let errors = self.errors
        outPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil } else { output.append(data) }
        }
        errPipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil } else { errors.append(data) }
        }
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Writes `line` and a newline to its standard input.
    func type(_ line: String) {
        input?.write(Data((line + "\n").utf8))
    }

    /// Closes its standard input (end of file).
    func closeInput() {
        try? input?.close()
    }

    /// Sends a signal.
    func signal(_ number: Int32) {
        if process.isRunning { kill(process.processIdentifier, number) }
    }

    /// Waits until `condition` holds for the collected output, at most `timeout`.
    func waitUntil(timeout: Duration = .seconds(10), _ condition: (AempProcess) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition(self)
    }

    /// Waits for the process to exit (at most `timeout`, then kills it) and returns its status.
    @discardableResult
    func finish(timeout: Duration = .seconds(10)) async -> Int32? {
        let exited = await waitUntil(timeout: timeout) { !$0.process.isRunning }
        guard exited else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        process.waitUntilExit()
        // Let the pipe handlers take the last bytes.
        try? await Task.sleep(for: .milliseconds(30))
        return process.terminationStatus
    }

    /// Both streams, for failure messages.
    var transcript: String { "aemp \(arguments.joined(separator: " "))\n--- stdout\n\(output.text)\n--- stderr\n\(errors.text)" }
}

/// A failure of the test harness itself.
struct CLITestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A temporary directory with an rc file for a group of `aemp` processes.
final class ProcessSandbox: Sendable {
    let sandbox: CLISandbox

    init(rc: String?) throws {
        sandbox = try CLISandbox()
        if let rc { sandbox.writeFile("rc.json", rc) }
    }

    var directory: String { sandbox.directory }
    var rcPath: String { sandbox.rcPath }

    /// The environment of every child: the sandbox's rc file and home, plus `extra`.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ["AEMP_RC": rcPath, "HOME": directory, "PATH": "/usr/bin:/bin"]
        for (key, value) in extra { environment[key] = value }
        return environment
    }

    /// Starts `aemp run ...` (behind `launcher`, if any) and waits for its banner; returns the process
    /// and its node ID.
    func startNode(
        _ arguments: [String], environment extra: [String: String] = [:], launcher: [String] = []
    ) async throws -> (AempProcess, String) {
        let node = try AempProcess(["run"] + arguments, environment: environment(extra), launcher: launcher)
        // The whole banner: its last line is "Stop it with Ctrl-C ...".
        let started = await node.waitUntil { $0.output.text.contains("Stop it with Ctrl-C") || !$0.process.isRunning }
        guard started, let line = node.output.text.split(separator: "\n").first(where: { $0.contains(" is running") }) else {
            throw CLITestFailure("node did not start:\n\(node.transcript)")
        }
        // "aemp: node <id> is running (profile ...)"
        let words = line.split(separator: " ")
        guard words.count > 2 else { throw CLITestFailure("unexpected banner: \(line)") }
        return (node, String(words[2]))
    }

    /// Runs a client command to completion (hard limit `timeout`).
    func client(
        _ arguments: [String], environment extra: [String: String] = [:], launcher: [String] = [],
        timeout: Duration = .seconds(12)
    ) async throws -> (status: Int32?, output: String, errors: String, process: AempProcess) {
        let process = try AempProcess(arguments, environment: environment(extra), launcher: launcher)
        let status = await process.finish(timeout: timeout)
        return (status, process.output.text, process.errors.text, process)
    }
}
