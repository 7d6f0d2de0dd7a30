import AEMP
import Synchronization
#if canImport(Glibc)
import Glibc
#endif
import AEMPCodecs
import Testing

@testable import aemp

@Suite("aemp node commands")
struct NodeCommandTests {
    @Test func runWithoutArgumentsGeneratesAndKeepsTheSecret() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        try await sandbox.run(["run"], backend: backend)
        let secret = try #require(try sandbox.config().global.string("secret"))
        #expect(secret.count == 86)
        #expect(sandbox.fileMode("rc.json") == 0o600)
        let first = try #require(backend.recorded.first)
        #expect(first.command == "run")
        #expect(first.configuration.secret == secret)
        #expect(first.configuration.nodeID == "anon/")
        #expect(first.configuration.binds == ["127.0.0.1:4040"])
        #expect(first.configuration.seeds == ["127.0.0.1:4040"])
        #expect(sandbox.output.lines.first == "aemp: generated a new shared secret and saved it in \(sandbox.rcPath)")

        // A second run reuses the saved secret and generates nothing.
        let before = sandbox.output.lines.count
        try await sandbox.run(["run"], backend: backend)
        #expect(backend.recorded.last?.configuration.secret == secret)
        #expect(!sandbox.output.lines.dropFirst(before).contains { $0.contains("generated") })

        // A client in a second terminal uses the same secret and the node as seed.
        try await sandbox.run(["nodes"], backend: backend)
        #expect(backend.recorded.last?.configuration.secret == secret)
        #expect(backend.recorded.last?.configuration.seeds == ["127.0.0.1:4040"])
    }

    @Test func bannerTellsHowToReachTheNode() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend(
            running: RunningNode(nodeID: NodeID("anon/XLIBBPuyjJ")!, listenerAddresses: ["127.0.0.1:4040"]))
        try await sandbox.run(["run"], backend: backend)
        let text = sandbox.output.text
        #expect(text.contains("aemp: node anon/XLIBBPuyjJ is running (profile \"testhost\")"))
        #expect(text.contains("listening on: 127.0.0.1:4040"))
        #expect(text.contains("seeds:        127.0.0.1:4040"))
        #expect(text.contains("config file:  \(sandbox.rcPath)"))
        #expect(text.contains("aemp nodes"))
        #expect(text.contains("aemp cal 'anon/XLIBBPuyjJ#' time"))
        #expect(text.contains("aemp snd 'anon/XLIBBPuyjJ#' devnull hello"))
        #expect(text.contains("aemp mon 'anon/XLIBBPuyjJ#'"))
        #expect(text.contains("Ctrl-C"))
        #expect(!text.contains("AEMP_CONFIG"))
        let plain = try CLISandbox()
        try await plain.run(["run", "secret", "s", "binds", "127.0.0.1:4050"], backend: RecordingBackend(
            running: RunningNode(nodeID: NodeID("n")!, listenerAddresses: ["127.0.0.1:4050"])))
        #expect(plain.output.text.contains("AEMP_CONFIG='{\"seeds\":[\"127.0.0.1:4050\"]}'"))
        #expect(plain.output.text.contains("aemp: node n is running (profile \"testhost\")"))
    }

    @Test func runTakesTheLogLevel() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        // Default info; the setting on the command line, alone or with other settings; a profile's.
        try await sandbox.run(["run", "secret", "s"], backend: backend)
        #expect(backend.runLogLevels.last == "info")
        #expect(sandbox.output.text.contains("log level:    info (default) on standard error"))
        try await sandbox.run(["run", "log_level", "debug"], backend: backend)
        #expect(backend.runLogLevels.last == "debug")
        #expect(backend.recorded.last?.configuration.nodeID == "anon/")  // still the embedded default node
        #expect(sandbox.output.text.contains("log level:    debug (log_level) on standard error"))
        try await sandbox.run(["run", "secret", "s", "log_level", "WARNING"], backend: backend)
        #expect(backend.runLogLevels.last == "warning")
        try await sandbox.run(["profile", "quiet", "secret", "s"])
        var file = try sandbox.config()
        file.setProfile("quiet", ProfileSettings([("secret", "s"), ("log_level", "error")]))
        try file.save(to: sandbox.rcPath)
        try await sandbox.run(["run", "quiet"], backend: backend)
        #expect(backend.runLogLevels.last == "error")
        #expect(sandbox.errors.lines.isEmpty)  // no unknown-key warning
        // AEMP_LOG_LEVEL wins over the setting; an unusable one is ignored with a warning.
        try await sandbox.run(["run", "quiet"], environment: ["AEMP_LOG_LEVEL": "trace"], backend: backend)
        #expect(backend.runLogLevels.last == "trace")
        #expect(sandbox.output.text.contains("log level:    trace (AEMP_LOG_LEVEL) on standard error"))
        try await sandbox.run(["run", "quiet"], environment: ["AEMP_LOG_LEVEL": "loud"], backend: backend)
        #expect(backend.runLogLevels.last == "error")
        #expect(sandbox.errors.text.contains("aemp: warning: ignoring AEMP_LOG_LEVEL=loud (expected one of trace, debug, info, notice, warning, error, critical)"))
        #expect(await sandbox.failure(["run", "secret", "s", "log_level", "verbose"], backend: backend)
            == "run: log_level must be one of trace, debug, info, notice, warning, error, critical, got verbose")
    }

    @Test func rcFileOverridesTheEmbeddedDefaults() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "mine", "profile", "testhost", "binds", "127.0.0.1:5000"])
        let backend = RecordingBackend()
        try await sandbox.run(["run"], backend: backend)
        let configuration = try #require(backend.recorded.first?.configuration)
        #expect(configuration.secret == "mine")
        #expect(configuration.binds == ["127.0.0.1:5000"])
        #expect(configuration.seeds == ["127.0.0.1:4040"])
    }

    @Test func runWithConfigureArguments() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "g", "profile", "server", "binds", "*:4040", "nodeid", "server"])
        let backend = RecordingBackend()
        try await sandbox.run(["run", "server", "seeds", "[\"a:1\",\"b:2\"]", "monitor_timeout", "5", "nodeid", "ignored"], backend: backend)
        let configuration = try #require(backend.recorded.first?.configuration)
        #expect(configuration.nodeID == "server")  // the profile wins without force
        #expect(configuration.binds == ["*:4040"])
        #expect(configuration.seeds == ["a:1", "b:2"])
        #expect(configuration.monitorTimeout == .seconds(5))
        #expect(configuration.secret == "g")
        try await sandbox.run(["run", "profile", "server", "nodeid", "forced", "force", "1"], backend: backend)
        #expect(backend.recorded.last?.configuration.nodeID == "forced")
        try await sandbox.run(["run", "nodeid", "n", "norc", "1"], backend: backend)
        #expect(backend.recorded.last?.configuration.secret == nil)
        #expect(backend.recorded.last?.configuration.binds == ["*"])
        #expect(sandbox.errors.lines.contains { $0.contains("no secret and no certificate configured") })
        // Without nodeid, the node is named after the profile.
        try await sandbox.run(["run", "other"], backend: backend)
        #expect(backend.recorded.last?.configuration.nodeID == "other/")
    }

    @Test func runWarnsAboutUnknownKeysAndRefusesBadValues() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        try await sandbox.run(["run", "bind", "x", "secret", "s"], backend: backend)
        #expect(sandbox.errors.lines.contains("aemp: warning: ignoring unknown configure key(s): bind"))
        #expect(await sandbox.failure(["run", "monitor_timeout", "never"], backend: backend)?.hasPrefix("run: monitor_timeout:") == true)
        #expect(await sandbox.failure(["run", "nodeid", "a#b"], backend: backend)?.hasPrefix("run: nodeid:") == true)
        #expect(await sandbox.failure(["run", "[\"profile\"]", "x", "y"], backend: backend)?.hasPrefix("run: profile:") == true)
        #expect(await sandbox.failure(["run", "{}", "x"], backend: backend)?.hasPrefix("run: configure key must be") == true)
    }

    @Test func runReportsMalformedRcFile() async throws {
        let sandbox = try CLISandbox()
        sandbox.writeFile("rc.json", "{oops}")
        let message = await sandbox.failure(["run"], backend: RecordingBackend())
        #expect(message?.hasPrefix("run: \(sandbox.rcPath): not valid JSON") == true)
        #expect(await sandbox.failure(["run", "norc", "1", "secret", "s"], backend: RecordingBackend()) == nil)
    }

    @Test func sendPassesPortAndMessageAndPrintsTheConfirmation() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s", "seeds", "10.0.0.1:4040"])
        let backend = RecordingBackend(reply: ["message sent successfully"])
        try await sandbox.run(["snd", "echo#port", "hello", "[1, 2.5, {\"a\": \"b\"}]", "\"quoted\""], backend: backend)
        let call = try #require(backend.recorded.first)
        #expect(call.command == "snd" && call.target == "echo#port")
        #expect(call.message == ["hello", [1, 2.5, ["a": "b"]], "quoted"])
        #expect(call.configuration.secret == "s")
        #expect(call.configuration.seeds == ["10.0.0.1:4040"])
        #expect(call.configuration.nodeID == "anon/")
        #expect(call.configuration.binds == ["127.0.0.1:0"])
        #expect(sandbox.output.lines == ["message sent successfully"])
    }

    @Test func callPrintsJSONList() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        let backend = RecordingBackend(reply: [1795305995.5, "x", nil, ["k": [1]]])
        try await sandbox.run(["cal", "echo#", "time"], backend: backend)
        #expect(backend.recorded.first?.message == ["time"])
        #expect(backend.recorded.first?.target == "echo#")
        #expect(sandbox.output.lines == ["1795305995.5,\"x\",null,{\"k\":[1]}"])
    }

    @Test func monitorPrintsTheReason() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        let backend = RecordingBackend(reason: KillReason(["transport_error", "echo", "connect timeout"]))
        try await sandbox.run(["mon", "echo#"], backend: backend)
        #expect(sandbox.output.lines == ["transport_error echo connect timeout"])
        #expect(await sandbox.failure(["mon"], backend: backend) == "mon: port ID missing")
    }

    @Test func evaluateJoinsWordsAndReportsRemoteErrors() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        let backend = RecordingBackend(reply: ["", 3, "x"])
        try await sandbox.run(["eval", "echo#somewhere", "1", "+", "2"], backend: backend)
        #expect(backend.recorded.first?.target == "echo")
        #expect(backend.recorded.first?.message == ["1 + 2"])
        #expect(sandbox.output.lines == ["3,\"x\""])
        let failing = RecordingBackend(reply: ["Illegal division by zero at (eval 18) line 1.\n"])
        #expect(await sandbox.failure(["eval", "echo", "1/0"], backend: failing) == "Illegal division by zero at (eval 18) line 1.\n")
        #expect(await sandbox.failure(["eval"], backend: failing) == "eval: node ID missing")
        #expect(await sandbox.failure(["eval", "#x", "1"], backend: failing) == "eval: #x is not a node ID")
    }

    @Test func nodesPrintsSortedIDs() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        let backend = RecordingBackend(nodes: [NodeID("b")!, NodeID("a")!])
        try await sandbox.run(["nodes"], backend: backend)
        #expect(sandbox.output.lines == ["a", "b"])
    }

    @Test(arguments: ["nohash", "[1]", "#name", "{\"a\":1}"])
    func portArgumentsAreChecked(_ argument: String) async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        let message = await sandbox.failure(["snd", argument, "x"], backend: RecordingBackend())
        #expect(message?.hasPrefix("snd: ") == true)
        #expect(message?.contains("is not a port ID") == true)
        #expect(await sandbox.failure(["snd"], backend: RecordingBackend()) == "snd: port ID missing")
    }

    @Test func clientNeedsASecret() async throws {
        let sandbox = try CLISandbox()
        let message = await sandbox.failure(["snd", "n#", "x"], backend: RecordingBackend())
        #expect(message?.hasPrefix("snd: no secret and no certificate configured in \(sandbox.rcPath)") == true)
    }

    @Test func clientUsesTheAempProfile() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "global", "profile", "aemp", "secret", "client", "seeds", "s:1", "binds", "*:4040"])
        let backend = RecordingBackend()
        try await sandbox.run(["nodes"], backend: backend)
        let configuration = try #require(backend.recorded.first?.configuration)
        #expect(configuration.secret == "client")
        #expect(configuration.seeds == ["s:1"])
        #expect(configuration.binds == ["127.0.0.1:0"])  // never the server's port
    }

    @Test func aempConfigEnvironment() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "fromrc", "profile", "other", "seeds", "o:1"])
        let backend = RecordingBackend()
        let config = "{\"profile\": \"other\", \"nodeid\": \"client/%u\", \"binds\": [\"*:0\"], \"monitor_timeout\": 3}"
        try await sandbox.run(["nodes"], environment: ["AEMP_CONFIG": config], backend: backend)
        var configuration = try #require(backend.recorded.last?.configuration)
        #expect(configuration.nodeID == "client/%u")
        #expect(configuration.binds == ["*:0"])
        #expect(configuration.seeds == ["o:1"])
        #expect(configuration.secret == "fromrc")
        #expect(configuration.monitorTimeout == .seconds(3))

        // norc: nothing from the file; the secret must come from AEMP_CONFIG.
        try await sandbox.run(["nodes"], environment: ["AEMP_CONFIG": "{\"norc\": 1, \"secret\": \"env\"}"], backend: backend)
        configuration = try #require(backend.recorded.last?.configuration)
        #expect(configuration.secret == "env")
        #expect(configuration.seeds == ["127.0.0.1:4040"])
        let missing = await sandbox.failure(["nodes"], environment: ["AEMP_CONFIG": "{\"norc\": 1}"], backend: backend)
        #expect(missing == "nodes: no secret and no certificate configured; run `aemp run` once (it saves one) or `aemp gensecret`")
    }

    @Test(arguments: [
        ("{\"seeds\": ", "AEMP_CONFIG: not valid JSON"),
        ("[\"seeds\"]", "AEMP_CONFIG: expected a JSON object of configure arguments"),
        ("seeds=x", "AEMP_CONFIG: not valid JSON"),
        ("{} {}", "AEMP_CONFIG: more than one JSON text"),
        ("{\"monitor_timeout\": \"soon\"}", "cal: monitor_timeout:"),
        ("{\"profile\": 1}", "cal: profile:"),
    ])
    func aempConfigErrors(_ config: String, _ prefix: String) async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "s"])
        let message = await sandbox.failure(["cal", "n#", "x"], environment: ["AEMP_CONFIG": config], backend: RecordingBackend())
        #expect(message?.hasPrefix(prefix) == true, "\(message ?? "nil")")
    }

    @Test func nodeCommandSavesEarlierChangesFirst() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        try await sandbox.run(["setsecret", "chained", "run"], backend: backend)
        #expect(try sandbox.config().global["secret"] == "chained")
        #expect(backend.recorded.first?.configuration.secret == "chained")
    }
}
