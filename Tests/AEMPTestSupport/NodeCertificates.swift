import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Why the test certificates could not be made.
public struct CertificateFailure: Error, CustomStringConvertible {
    /// What went wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Certificates for the TLS tests, made once per process with the `openssl` command: a CA, two node
/// certificates signed by it and one signed by another CA. Each node's PEM text holds key +
/// certificate + CA certificate, like Perl's `cert` setting.
public enum NodeCertificates {
    /// PEM texts (key + certificate + CA certificate), one per node.
    public struct Set: Sendable {
        /// A node certificate signed by the test CA.
        public var nodeA: String
        /// Another node certificate signed by the test CA.
        public var nodeB: String
        /// A node certificate signed by a different CA.
        public var rogue: String
    }

    /// The certificates of this test process (made on first use).
    public static let shared: Result<Set, CertificateFailure> = {
        do throws(CertificateFailure) {
            return .success(try make())
        } catch {
            return .failure(error)
        }
    }()

    private static func make() throws(CertificateFailure) -> Set {
        let directory = NSTemporaryDirectory() + "aemp-transport-tls-\(getpid())-\(UUID().uuidString)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CertificateFailure("mkdir \(directory): \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
        func makeCA(_ name: String) throws(CertificateFailure) {
            try openssl([
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", path("\(name).key"), "-out", path("\(name).pem"), "-days", "2", "-subj", "/CN=\(name)",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ])
        }
        func makeNode(_ name: String, ca: String) throws(CertificateFailure) -> String {
            try openssl([
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)",
            ])
            let extensions = path("\(name).ext")
            let text = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
            guard FileManager.default.createFile(atPath: extensions, contents: Data(text.utf8)) else {
                throw CertificateFailure("cannot write \(extensions)")
            }
            try openssl([
                "x509", "-req", "-in", path("\(name).csr"), "-CA", path("\(ca).pem"), "-CAkey", path("\(ca).key"),
                "-set_serial", "\(Int.random(in: 1000...999_999))", "-days", "2", "-out", path("\(name).pem"),
                "-extfile", extensions,
            ])
            return try read(path("\(name).key")) + read(path("\(name).pem")) + read(path("\(ca).pem"))
        }
        func read(_ file: String) throws(CertificateFailure) -> String {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw CertificateFailure("cannot read \(file)")
            }
            return text
        }
        try makeCA("ca")
        try makeCA("rogue-ca")
        return Set(
            nodeA: try makeNode("node-a", ca: "ca"), nodeB: try makeNode("node-b", ca: "ca"),
            rogue: try makeNode("rogue", ca: "rogue-ca"))
    }

    private static func openssl(_ arguments: [String]) throws(CertificateFailure) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw CertificateFailure("openssl: \(error)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CertificateFailure("openssl \(arguments.first ?? "") failed with \(process.terminationStatus)")
        }
    }
}
