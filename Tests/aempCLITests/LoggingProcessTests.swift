#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// What `aemp` processes log: connection metadata on the lines, and never a secret or a payload.
@Suite("aemp logging", .enabled(if: AempBinary.path != nil, "needs the built aemp executable"))
struct LoggingProcessTests {
    static let secret = "secret-canary-93fa71c0e2"
    static let wrongSecret = "wrong-canary-5d20c4b7a9"
    static let payload = "payload-canary-6b1e0d44"

    /// Two `aemp run` nodes and a series of clients, everything at trace level, exchange messages,
    /// a file and a refused handshake carrying distinctive strings; no output of any process contains
    /// the secrets or the payload.
    @Test func traceLevelLogsNeitherSecretsNorPayloads() async throws {
        let sandbox = try ProcessSandbox(rc: "{\"secret\":\"\(Self.secret)\"}")
        let inbox = sandbox.directory + "/inbox"
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        let port = AempBinary.freePort()
        let address = "127.0.0.1:\(port)"
        // One node at trace level through its setting, the other through the environment.
        let (a, _) = try await sandbox.startNode([
            "nodeid", "a", "binds", address, "seeds", address, "log_level", "trace", "sendfile_dir", inbox,
        ])
        defer { a.signal(SIGKILL) }
        let trace = ["AEMP_LOG_LEVEL": "trace"]
        let (b, _) = try await sandbox.startNode(["nodeid", "b", "binds", "127.0.0.1:0", "seeds", address], environment: trace)
        defer { b.signal(SIGKILL) }
        #expect(await a.waitUntil { $0.errors.text.contains("node b is up") }, "\(a.transcript)")
        #expect(a.output.text.contains("log level:    trace (log_level)"), "\(a.transcript)")
        #expect(b.output.text.contains("log level:    trace (AEMP_LOG_LEVEL)"), "\(b.transcript)")

        var client = trace
        client["AEMP_CONFIG"] = "{\"seeds\":[\"\(address)\"]}"
        var clients: [AempProcess] = []
        func run(_ arguments: [String], environment: [String: String] = client) async throws -> Int32? {
            let result = try await sandbox.client(arguments, environment: environment)
            clients.append(result.process)
            return result.status
        }
        // Payloads in every position a message carries them: to a node port, relayed through a
        // to another node, as JSON, to a port that does not exist, as code to evaluate, in a file.
        #expect(try await run(["snd", "a#", "devnull", Self.payload]) == 0)
        #expect(try await run(["snd", "a#", "snd", "b#", "devnull", Self.payload]) == 0)
        #expect(try await run(["snd", "b#", "devnull", "{\"k\":[\"\(Self.payload)\",1]}"]) == 0)
        #expect(try await run(["snd", "b#nosuchport", "tag", Self.payload]) == 0)
        #expect(try await run(["cal", "b#", "can", Self.payload]) == 0)
        #expect(try await run(["cal", "a#", "time"]) == 0)
        #expect(try await run(["eval", "a", "print '\(Self.payload)'"]) == 1)
        let file = sandbox.directory + "/upload.bin"
        try Data(String(repeating: Self.payload + "\n", count: 100).utf8).write(to: URL(fileURLWithPath: file))
        #expect(try await run(["sendfile", "a", file, "upload.bin"]) == 0)
        // A client with a wrong secret: both sides log the refusal, neither logs either secret.
        var wrong = trace
        wrong["AEMP_CONFIG"] = "{\"norc\":1,\"secret\":\"\(Self.wrongSecret)\",\"seeds\":[\"\(address)\"]}"
        #expect(try await run(["cal", "a#", "time"], environment: wrong) == 1)

        a.signal(SIGINT)
        b.signal(SIGINT)
        _ = await a.finish(timeout: .seconds(5))
        _ = await b.finish(timeout: .seconds(5))
        let processes = [a, b] + clients
        let everything = processes.map { $0.output.text + $0.errors.text }.joined(separator: "\n")

        // The run really was at trace level, with the connection metadata on the lines.
        #expect(everything.contains(" trace aemp:"), "no trace lines")
        #expect(a.errors.text.contains("aemp.direction=in") && a.errors.text.contains("aemp.peer=b"), "\(a.transcript)")
        #expect(a.errors.text.contains("starting handshake"), "\(a.transcript)")
        #expect(a.errors.text.contains("authenticated: aemp, auth hmac_sha3_512/hmac_sha3_512"), "\(a.transcript)")
        #expect(a.errors.text.contains("authentication failure/shared secret mismatch"), "\(a.transcript)")
        #expect(a.errors.text.contains("sendfile: received upload.bin"), "\(a.transcript)")

        for process in processes {
            for canary in [Self.secret, Self.wrongSecret, Self.payload] {
                #expect(!(process.output.text + process.errors.text).contains(canary), "\(canary) in \(process.transcript)")
            }
        }
        #expect(try String(contentsOfFile: inbox + "/upload.bin", encoding: .utf8).hasPrefix(Self.payload))
    }
}
