#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP

/// A failure of an `aemp` command: printed as `aemp: <message>` on standard error, exit status 1.
struct CLIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, e.g. `setsecret: secret missing`.
    var message: String

    init(_ message: String) {
        self.message = message
    }

    var description: String { message }
}

/// Everything an `aemp` command touches outside its arguments: the environment, the host name, the
/// output streams and the node backend. Tests replace it with ``CLIContext/$current`` so commands
/// run in-process against a temporary rc file.
struct CLIContext: Sendable {
    /// The environment (`AEMP_RC`, `XDG_CONFIG_HOME`, `HOME`, `AEMP_CONFIG`, `PATH`).
    var environment: [String: String]
    /// The host name: default profile name and `%n` (Perl: `uname -n`).
    var hostname: String
    /// Writes one line (without its newline) to standard output.
    var output: @Sendable (String) -> Void
    /// Writes one line (without its newline) to standard error.
    var errorOutput: @Sendable (String) -> Void
    /// The node implementation behind `run`, `snd`, `cal`, `mon`, `eval`, `nodes` and `sendfile`.
    var backend: any NodeBackend
    /// Whether standard output is a terminal (progress bars instead of progress lines).
    var isTerminal: Bool = false
    /// Writes text to standard output as is (no newline added), for progress bars.
    var rawOutput: @Sendable (String) -> Void = { _ in }

    /// The context of the running process.
    static var process: CLIContext {
        CLIContext(
            environment: processEnvironment(),
            hostname: NodeID.hostName(),
            output: { line in writeLine(line, to: 1) },
            errorOutput: { line in writeLine(line, to: 2) },
            backend: liveNodeBackend,
            isTerminal: isatty(1) == 1,
            rawOutput: { text in writeText(text, to: 1) }
        )
    }

    /// The context commands use; tests bind their own with `CLIContext.$current.withValue(...)`.
    @TaskLocal static var current: CLIContext = .process

    /// The rc file path (``ConfigFile/defaultPath(environment:)``).
    ///
    /// - Throws: ``CLIError`` when neither `AEMP_RC`, `XDG_CONFIG_HOME` nor `HOME` is set.
    func configPath() throws(CLIError) -> String {
        guard let path = ConfigFile.defaultPath(environment: environment) else {
            throw CLIError("cannot locate the config file: set AEMP_RC (or HOME)")
        }
        return path
    }

    /// Writes `line` and a newline straight to a file descriptor, unbuffered, so a banner shows up at
    /// once even when standard output is a pipe and the process then runs for a long time.
    static func writeLine(_ line: String, to descriptor: Int32) {
        writeText(line + "\n", to: descriptor)
    }

    /// Writes `text` straight to a file descriptor, unbuffered.
    static func writeText(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            bytes = bytes.dropFirst(count)
        }
    }

    /// The environment variables `aemp` reads (`AEMP_LOG_LEVEL` is read by ``LiveNodeBackend``).
    static let environmentNames = ["AEMP_RC", "XDG_CONFIG_HOME", "HOME", "AEMP_CONFIG", "PATH", "TMPDIR", "AEMP_LOG_LEVEL"]

    /// Reads the variables of ``environmentNames`` from the process environment.
    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        for name in environmentNames {
            if let value = getenv(name) { result[name] = String(cString: value) }
        }
        return result
    }
}
