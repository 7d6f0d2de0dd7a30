#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP

/// `aemp gencert` and `aemp setcert`: a self-signed key and certificate made by the `openssl`
/// command, and PEM files read from disk.
enum CertificateGenerator {
    /// The largest PEM file `setcert` reads (1 MiB).
    static let maximumPEMSize = 1 << 20

    /// Runs `openssl req -new -nodes -x509 -days 3650 -newkey rsa:2048 -batch -subj /CN=AnyEvent::MP`
    /// (Perl bin/aemp's certificate) in a private temporary directory and returns the private key
    /// followed by the certificate, both PEM, as `setcert` expects them.
    ///
    /// - Parameter environment: `PATH` is searched for `openssl`; `TMPDIR` is used if set.
    /// - Throws: ``CLIError`` if `openssl` is not found, fails, or produces no key or certificate.
    static func generate(environment: [String: String]) throws(CLIError) -> String {
        guard let openssl = findExecutable("openssl", path: environment["PATH"] ?? "/usr/bin:/bin") else {
            throw CLIError("gencert: the openssl command was not found in PATH; install OpenSSL or use aemp setcert <file>")
        }
        let base = environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((base.hasSuffix("/") ? base : base + "/").utf8CString.dropLast()) + Array("aemp-gencert-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw CLIError("gencert: cannot create a temporary directory in \(base): \(errorText(errno))")
        }
        let directory = String(cString: created)
        let keyPath = directory + "/key.pem"
        let certificatePath = directory + "/cert.pem"
        let logPath = directory + "/openssl.log"
        defer {
            for file in [keyPath, certificatePath, logPath] { unlink(file) }
            rmdir(directory)
        }
        let arguments = [
            openssl, "req", "-new", "-nodes", "-x509", "-days", "3650", "-newkey", "rsa:2048", "-keyout", keyPath,
            "-out", certificatePath, "-batch", "-subj", "/CN=AnyEvent::MP",
        ]
        let status = try spawn(arguments, environment: ["PATH=" + (environment["PATH"] ?? "/usr/bin:/bin")], output: logPath)
        guard status == 0 else {
            let log = (try? readFile(logPath, limit: 4096)) ?? ""
            let detail = log.split(separator: "\n").first.map { ": \($0)" } ?? ""
            throw CLIError("gencert: openssl failed with exit status \(status)\(detail)")
        }
        let key = try readFile(keyPath, limit: maximumPEMSize)
        let certificate = try readFile(certificatePath, limit: maximumPEMSize)
        guard key.contains("PRIVATE KEY-----"), certificate.contains("-----BEGIN CERTIFICATE-----") else {
            throw CLIError("gencert: openssl produced no key or no certificate")
        }
        return key + certificate
    }

    /// Reads a PEM file for `setcert` (Perl: the file's whole contents become `cert`).
    ///
    /// - Throws: ``CLIError`` naming the file and the reason.
    /// A PEM text given on the command line (`setcert "$(cat cert.pem)"`) is taken as it is; anything
    /// else names a file.
    static func readPEMFile(_ path: String) throws(CLIError) -> String {
        if path.hasPrefix("-----BEGIN ") {
            guard path.utf8.count <= maximumPEMSize else {
                throw CLIError("PEM text of \(path.utf8.count) bytes is larger than \(maximumPEMSize) bytes")
            }
            return path
        }
        let text = try readFile(path, limit: maximumPEMSize)
        guard text.contains("-----BEGIN ") else {
            throw CLIError("\(path): no PEM data (expected the private key followed by the certificate)")
        }
        return text
    }

    // MARK: Helpers

    private static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        return String(cString: text)
    }

    static func findExecutable(_ name: String, path: String) -> String? {
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Reads a whole file of at most `limit` bytes.
    static func readFile(_ path: String, limit: Int) throws(CLIError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw CLIError("\(path): \(errorText(errno))") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw CLIError("\(path): \(errorText(code))")
            }
            bytes += chunk[..<count]
            guard bytes.count <= limit else { throw CLIError("\(path): larger than \(limit) bytes") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Runs a program with standard input from /dev/null and standard output and error into `output`,
    /// and returns its exit status.
    private static func spawn(_ arguments: [String], environment: [String], output: String) throws(CLIError) -> Int32 {
        #if canImport(Glibc) || canImport(Musl)
        var actions = posix_spawn_file_actions_t()
        #else
        var actions: posix_spawn_file_actions_t?
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var processID = pid_t()
        let result = posix_spawn(&processID, arguments[0], &actions, nil, &argv, &envp)
        guard result == 0 else { throw CLIError("gencert: cannot start \(arguments[0]): \(errorText(result))") }
        var status: Int32 = 0
        while waitpid(processID, &status, 0) < 0 {
            guard errno == EINTR else { throw CLIError("gencert: waiting for openssl: \(errorText(errno))") }
        }
        // WIFEXITED / WEXITSTATUS, spelled out (the C macros are not imported).
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }
}
