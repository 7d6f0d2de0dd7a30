import AEMP
import AEMPCodecs
import Testing

@testable import aemp

/// After a command name every argument is a value, whatever it starts with (Perl's bin/aemp reads
/// its arguments the same way): a PEM text's dashes and negative numbers are not options.
@Suite("aemp argument values that look like options")
struct ArgumentValueTests {
    static let pem = """
        -----BEGIN PRIVATE KEY-----
        AAAA
        -----END PRIVATE KEY-----
        -----BEGIN CERTIFICATE-----
        BBBB
        -----END CERTIFICATE-----

        """

    @Test func runTakesACertificateText() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        try await sandbox.run(["run", "nodeid", "n", "secret", "s", "cert", Self.pem], backend: backend)
        let configuration = try #require(backend.recorded.first?.configuration)
        #expect(configuration.certificate == Self.pem)
        #expect(configuration.nodeID == "n")
    }

    @Test func setcertTakesAPEMTextAsWellAsAFile() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["profile", "p", "setcert", Self.pem])
        #expect(try sandbox.config().profile("p")?["cert"] == .text(Self.pem))
        try await sandbox.run(["cert", Self.pem])
        #expect(try sandbox.config().global["cert"] == .text(Self.pem))
        // A text that is not PEM is still a file name, with the file's error.
        let missing = await sandbox.failure(["setcert", "-x"])
        #expect(missing == "-x: No such file or directory")
    }

    @Test func negativeNumbersAndDashesAreValues() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["profile", "p", "connect_interval", "-1", "monitor_timeout", "-2.5"])
        let profile = try #require(try sandbox.config().profile("p"))
        #expect(profile["connect_interval"] == "-1")
        #expect(profile["monitor_timeout"] == "-2.5")

        try await sandbox.run(["gensecret"])
        let backend = RecordingBackend(reply: [])
        try await sandbox.run(["snd", "n#p", "-1", "--flag", "-", "--"], backend: backend)
        #expect(backend.recorded.first?.message == ["-1", "--flag", "-", "--"])
    }

    @Test func helpIsStillHelp() async throws {
        let sandbox = try CLISandbox()
        await #expect(throws: (any Error).self) { try await sandbox.run(["run", "--help"]) }
        #expect(try sandbox.config().global["nodeid"] == nil)
        // Anywhere but first, --help is a value (as in Perl).
        try await sandbox.run(["gensecret"])
        let backend = RecordingBackend(reply: [])
        try await sandbox.run(["snd", "n#p", "--help"], backend: backend)
        #expect(backend.recorded.first?.message == ["--help"])
    }
}
