import Foundation

/// Certificates for the TLS tests, made with the `openssl` command in a temporary directory once
/// per test process (EC P-256 keys: fast to generate).
///
/// - `ca.pem`: the trusted test CA.
/// - `server.pem`/`server.key`: signed by it, for `localhost` and `127.0.0.1`.
/// - `wrong.pem`/`wrong.key`: signed by it, for `wrong.example` only.
/// - `rogue.pem`/`rogue.key`: for `localhost`, signed by another CA (`rogue-ca.pem`).
struct TestCertificates: Sendable {
    let directory: String

    func path(_ name: String) -> String { directory + "/" + name }

    var caFile: String { path("ca.pem") }

    /// The shared set, or the reason it could not be made.
    static let shared: Result<TestCertificates, SetupFailure> = {
        do throws(SetupFailure) {
            return .success(try make())
        } catch {
            return .failure(error)
        }
    }()

    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
    }

    static func make() throws(SetupFailure) -> TestCertificates {
        let directory = NSTemporaryDirectory() + "aemp-tls-\(getpid())-\(UUID().uuidString)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SetupFailure(description: "mkdir \(directory): \(error)")
        }
        let certs = TestCertificates(directory: directory)
        try certs.makeCA("ca", subject: "/CN=AEMP Test CA")
        try certs.makeCA("rogue-ca", subject: "/CN=AEMP Rogue CA")
        try certs.makeLeaf("server", ca: "ca", names: "DNS:localhost,IP:127.0.0.1")
        try certs.makeLeaf("wrong", ca: "ca", names: "DNS:wrong.example")
        try certs.makeLeaf("rogue", ca: "rogue-ca", names: "DNS:localhost,IP:127.0.0.1")
        return certs
    }

    private func makeCA(_ name: String, subject: String) throws(SetupFailure) {
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("\(name).key"), "-out", path("\(name).pem"), "-days", "2", "-subj", subject,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
    }

    private func makeLeaf(_ name: String, ca: String, names: String) throws(SetupFailure) {
        try openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)",
        ])
        let extensions = path("\(name).ext")
        let text = "subjectAltName=\(names)\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
        guard FileManager.default.createFile(atPath: extensions, contents: Data(text.utf8)) else {
            throw SetupFailure(description: "cannot write \(extensions)")
        }
        try openssl([
            "x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
            "-set_serial", "\(Int.random(in: 1000...999_999))", "-days", "2", "-out", path("\(name).pem"),
            "-extfile", extensions,
        ])
    }

    private func openssl(_ arguments: [String]) throws(SetupFailure) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw SetupFailure(description: "cannot run openssl: \(error)")
        }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SetupFailure(
                description: "openssl \(arguments.first ?? "") failed: \(String(decoding: message, as: UTF8.self))")
        }
    }
}
