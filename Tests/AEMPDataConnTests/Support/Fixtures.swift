import AEMPTestSupport
import Foundation

/// The captured Perl ↔ Perl session (`shared/spec/captures/`), as bytes per direction.
struct CapturedConnection: Sendable {
    var number: Int
    /// Bytes the dialling side sent (c2s).
    var clientBytes: [UInt8]
    /// Bytes the listening side sent (s2c).
    var serverBytes: [UInt8]

    /// The first `count` LF-terminated lines of `bytes` (without LF), and the rest.
    static func lines(_ bytes: [UInt8], count: Int) -> (lines: [String], rest: [UInt8]) {
        var lines: [String] = []
        var start = 0
        while lines.count < count, let newline = bytes[start...].firstIndex(of: 0x0A) {
            lines.append(String(decoding: bytes[start..<newline], as: UTF8.self))
            start = newline + 1
        }
        return (lines, Array(bytes[start...]))
    }

    static let secret = "aemp-ref-secret"

    static func load(_ number: Int) throws -> CapturedConnection {
        let list = try SharedFiles.json("spec/captures/aemp-session.streams.json") as? [[String: Any]] ?? []
        guard let entry = list.first(where: { $0["conn"] as? Int == number }) else {
            throw FixtureFailure("conn \(number) not in the capture")
        }
        var client: [UInt8] = []
        var server: [UInt8] = []
        for segment in entry["segments"] as? [[String: Any]] ?? [] {
            let bytes = hexBytes(segment["hex"] as? String ?? "")
            if segment["dir"] as? String == "c2s" { client += bytes } else { server += bytes }
        }
        return CapturedConnection(number: number, clientBytes: client, serverBytes: server)
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for c in hex.utf8 {
            let nibble: UInt8 =
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
                default: c &- UInt8(ascii: "A") &+ 10
                }
            if let h = high {
                result.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return result
    }
}

struct FixtureFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Certificates for the TLS tests, made once per process with the `openssl` command: a CA and two
/// node certificates signed by it. Each PEM text holds key + certificate + CA certificate, like
/// Perl's `cert` setting.
enum TestCertificates {
    struct Set: Sendable {
        var nodeA: String
        var nodeB: String
    }

    static let shared: Result<Set, FixtureFailure> = {
        do throws(FixtureFailure) {
            return .success(try make())
        } catch {
            return .failure(error)
        }
    }()

    private static func make() throws(FixtureFailure) -> Set {
        let directory = NSTemporaryDirectory() + "aemp-dataconn-tls-\(getpid())-\(UUID().uuidString)"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FixtureFailure("mkdir \(directory): \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func path(_ name: String) -> String { directory + "/" + name }
        func read(_ file: String) throws(FixtureFailure) -> String {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw FixtureFailure("cannot read \(file)")
            }
            return text
        }
        try openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2", "-subj", "/CN=dataconn-ca",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        func makeNode(_ name: String) throws(FixtureFailure) -> String {
            try openssl([
                "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", path("\(name).key"), "-out", path("\(name).csr"), "-subj", "/CN=\(name)",
            ])
            let extensions = path("\(name).ext")
            let text = "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"
            guard FileManager.default.createFile(atPath: extensions, contents: Data(text.utf8)) else {
                throw FixtureFailure("cannot write \(extensions)")
            }
            try openssl([
                "x509", "-req", "-in", path("\(name).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                "-set_serial", "\(Int.random(in: 1000...999_999))", "-days", "2", "-out", path("\(name).pem"),
                "-extfile", extensions,
            ])
            return try read(path("\(name).key")) + read(path("\(name).pem")) + read(path("ca.pem"))
        }
        return Set(nodeA: try makeNode("node-a"), nodeB: try makeNode("node-b"))
    }

    private static func openssl(_ arguments: [String]) throws(FixtureFailure) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw FixtureFailure("openssl: \(error)")
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FixtureFailure("openssl \(arguments.first ?? "") failed with \(process.terminationStatus)")
        }
    }
}
