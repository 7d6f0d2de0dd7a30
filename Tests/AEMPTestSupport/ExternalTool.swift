import Foundation
import Synchronization

/// Runs a reference program (Perl with CBOR::XS, Python with cbor2, ...) for interop tests.
public enum ExternalTool {
    /// Runs `arguments` (looked up on `PATH` by `/usr/bin/env`) with `input` on its standard input.
    ///
    /// Standard input is written and standard error read on threads of their own, so that neither a
    /// large input nor a chatty program can block the other pipe.
    /// - Returns: the exit status, standard output and standard error.
    public static func run(_ arguments: [String], input: String) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let writer = Thread {
            try? stdin.fileHandleForWriting.write(contentsOf: Data(input.utf8))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let errorData = Mutex<Data?>(nil)
        let errorReader = Thread {
            let data = (try? stderr.fileHandleForReading.readToEnd()) ?? Data()
            errorData.withLock { $0 = data }
        }
        errorReader.start()
        let output = try stdout.fileHandleForReading.readToEnd() ?? Data()
        process.waitUntilExit()
        for _ in 0..<10_000 where errorData.withLock({ $0 == nil }) { usleep(1000) }
        let error = errorData.withLock { $0 }.map { String(decoding: $0, as: UTF8.self) } ?? ""
        return (process.terminationStatus, String(decoding: output, as: UTF8.self), error)
    }

    /// Whether `arguments` run and exit 0 (for probing installed modules).
    public static func succeeds(_ arguments: [String]) -> Bool {
        guard let result = try? run(arguments, input: "") else { return false }
        return result.status == 0
    }
}
