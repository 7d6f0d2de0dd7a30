import AEMP
import AEMPCodecs
import Synchronization
import Testing

@testable import aemp

@Suite("aemp sendfile command")
struct SendFileCommandTests {
    @Test func sendsWithTheBaseNameAndPrintsPlainProgress() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        sandbox.writeFile("data.bin", String(repeating: "x", count: 5000))
        let backend = RecordingBackend()
        try await sandbox.run(["sendfile", "server#port", sandbox.directory + "/data.bin"], backend: backend)
        let call = try #require(backend.recorded.first)
        #expect(call.command == "sendfile" && call.target == "server")
        #expect(call.message == [.text(sandbox.directory + "/data.bin"), 5000, "data.bin"])
        #expect(call.configuration.secret == "s")
        let lines = sandbox.output.lines
        #expect(lines.first == "sendfile: 0 B of 4.9 KiB (0%), - B/s, ETA -:--")
        #expect(lines.dropFirst().first == "sendfile: 4.9 KiB of 4.9 KiB (100%), 4.9 KiB/s, ETA 0:00")
        #expect(lines.last?.hasPrefix("sendfile: sent \(sandbox.directory)/data.bin to server as data.bin: 5000 bytes") == true)
        #expect(lines.last?.hasSuffix("sha256 00 verified") == true)

        try await sandbox.run(["sendfile", "server", sandbox.directory + "/data.bin", "in/box.bin"], backend: backend)
        #expect(backend.recorded.last?.message.last == "in/box.bin")
    }

    @Test func terminalGetsABar() async throws {
        let raw = OutputLines()
        let lines = OutputLines()
        let display = SendFile.ProgressDisplay(terminal: true, raw: { raw.append($0) }, line: { lines.append($0) })
        display.update(SendFile.Progress(sent: 0, total: 4 << 20, elapsed: .zero))
        display.update(SendFile.Progress(sent: 1 << 20, total: 4 << 20, elapsed: .milliseconds(50)))  // too soon
        display.update(SendFile.Progress(sent: 2 << 20, total: 4 << 20, elapsed: .seconds(1)))
        display.update(SendFile.Progress(sent: 4 << 20, total: 4 << 20, elapsed: .seconds(2)))
        display.update(SendFile.Progress(sent: 4 << 20, total: 4 << 20, elapsed: .seconds(3)))  // after the end
        #expect(lines.lines.isEmpty)
        #expect(raw.lines.count == 3)
        #expect(raw.lines[1] == "\r  50% [===============>              ] 2.0 MiB / 4.0 MiB  2.0 MiB/s  ETA 0:01  ")
        #expect(raw.lines[2].hasPrefix("\r 100% [==============================] 4.0 MiB / 4.0 MiB"))
        #expect(raw.lines[2].hasSuffix("\n"))
    }

    @Test(arguments: [
        (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"), (3 << 20, "3.0 MiB"), (5 << 30, "5.0 GiB"),
    ] as [(UInt64, String)])
    func byteCounts(_ count: UInt64, _ text: String) {
        #expect(SendFile.bytes(count) == text)
    }

    @Test func estimatedTimeLeft() {
        #expect(SendFile.eta(SendFile.Progress(sent: 0, total: 10, elapsed: .zero)) == "-:--")
        #expect(SendFile.eta(SendFile.Progress(sent: 1, total: 3601, elapsed: .seconds(1))) == "1:00:00")
        #expect(SendFile.eta(SendFile.Progress(sent: 10, total: 710, elapsed: .seconds(1))) == "1:10")
        #expect(SendFile.eta(SendFile.Progress(sent: 10, total: 10, elapsed: .seconds(1))) == "0:00")
    }

    @Test(arguments: [
        ("a.bin", ["a.bin"]), ("sub/dir/a.bin", ["sub", "dir", "a.bin"]), ("./x//y", ["x", "y"]),
    ])
    func acceptedRemotePaths(_ path: String, _ components: [String]) throws {
        #expect(try SendFile.components(of: path) == components)
    }

    @Test(arguments: [
        ("", "empty remote path"), ("/etc/passwd", "absolute paths are not allowed"), ("../x", "`..` is not allowed"),
        ("a/../../x", "`..` is not allowed"), ("dir/", "names a directory"), (".", "names a directory"),
        ("a\u{0}b", "NUL byte"),
    ])
    func refusedRemotePaths(_ path: String, _ message: String) {
        #expect(throws: SendFile.Refusal.self) { try SendFile.components(of: path) }
        do {
            _ = try SendFile.components(of: path)
        } catch {
            #expect(error.message.contains(message), "\(error.message)")
        }
    }

    @Test func commandErrors() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        sandbox.writeFile("f", "x")
        let file = sandbox.directory + "/f"
        let backend = RecordingBackend()
        #expect(await sandbox.failure(["sendfile"], backend: backend) == "sendfile: node ID missing")
        #expect(await sandbox.failure(["sendfile", "n"], backend: backend)?.hasPrefix("sendfile: local file path missing") == true)
        #expect(await sandbox.failure(["sendfile", "n", file, "x", "y"], backend: backend)?.hasPrefix("sendfile: too many arguments") == true)
        #expect(await sandbox.failure(["sendfile", "n", file, "../x"], backend: backend)?.contains("`..` is not allowed") == true)
        #expect(await sandbox.failure(["sendfile", "n", file, "/abs"], backend: backend)?.contains("absolute paths are not allowed") == true)
        #expect(await sandbox.failure(["sendfile", "n", sandbox.directory + "/missing"], backend: backend)
            == "sendfile: \(sandbox.directory)/missing: No such file or directory")
        #expect(await sandbox.failure(["sendfile", "n", sandbox.directory], backend: backend)
            == "sendfile: \(sandbox.directory): not a regular file")
        #expect(backend.recorded.isEmpty)
    }

    @Test func checksumMismatchFails() throws {
        #expect(throws: CLIError.self) {
            try SendFile.verify(local: "aa", remote: "bb", path: "x", target: NodeID("n")!)
        }
        try SendFile.verify(local: "aa", remote: "aa", path: "x", target: NodeID("n")!)
    }

    @Test func runTakesTheReceivingDirectory() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        try await sandbox.run(["run", "secret", "s", "sendfile_dir", sandbox.directory], backend: backend)
        #expect(backend.recorded.first?.target == sandbox.directory)
        #expect(sandbox.errors.lines.isEmpty)  // no unknown-key warning
        #expect(sandbox.output.text.contains("sendfile:     receives files below \(sandbox.directory)"))
        // `sendfile_dir` alone keeps the embedded default node.
        try await sandbox.run(["run", "sendfile_dir", sandbox.directory], backend: backend)
        #expect(backend.recorded.last?.target == sandbox.directory)
        #expect(backend.recorded.last?.configuration.binds == ["127.0.0.1:4040"])
        #expect(backend.recorded.last?.configuration.nodeID == "anon/")
        try await sandbox.run(["run", "secret", "s"], backend: backend)
        #expect(backend.recorded.last?.target == "")
        #expect(sandbox.output.text.contains("sendfile:     off (enable with sendfile_dir <directory>)"))
        #expect(await sandbox.failure(["run", "secret", "s", "sendfile_dir", sandbox.directory + "/nope"], backend: backend)
            == "run: sendfile_dir \(sandbox.directory)/nope is not an existing directory")
        #expect(await sandbox.failure(["run", "secret", "s", "sendfile_dir", "[1]"], backend: backend)
            == "run: sendfile_dir must be a directory path, got [1]")
    }

    @Test func runTakesTheDataPriority() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        try await sandbox.run(["run", "secret", "s", "data_priority", "10"], backend: backend)
        #expect(backend.recorded.last?.message == [.text("nice 10")])
        #expect(sandbox.errors.lines.isEmpty)  // no unknown-key warning
        #expect(sandbox.output.text.contains("data threads: nice 10 priority"))
        // `aemp run`'s own settings alone keep the embedded default node.
        try await sandbox.run(["run", "data_priority", "normal", "sendfile_dir", sandbox.directory], backend: backend)
        #expect(backend.recorded.last?.message == [.text("normal")])
        #expect(backend.recorded.last?.target == sandbox.directory)
        #expect(backend.recorded.last?.configuration.binds == ["127.0.0.1:4040"])
        try await sandbox.run(["run", "data_priority", "background"], backend: backend)
        #expect(backend.recorded.last?.message == [.text("background")])
        #expect(backend.recorded.last?.configuration.nodeID == "anon/")
        // Unset: the library's default group, background priority.
        try await sandbox.run(["run", "secret", "s"], backend: backend)
        #expect(backend.recorded.last?.message == [])
        #expect(sandbox.output.text.contains("data threads: background priority"))
        for bad in ["20", "-1", "high", "[1]"] {
            #expect(await sandbox.failure(["run", "secret", "s", "data_priority", bad], backend: backend)
                == "run: data_priority must be background, normal or a nice value 0 to 19, got \(bad)")
        }
    }
}
