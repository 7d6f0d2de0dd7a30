import AEMP
import AEMPCodecs
import Testing

@testable import aemp

@Suite("aemp profile commands")
struct ProfileCommandTests {
    @Test func setAndDeleteNodeID() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setnodeid", "server/%n"])
        #expect(try sandbox.config().global["nodeid"] == "server/%n")
        #expect(sandbox.fileMode("rc.json") == 0o600)
        try await sandbox.run(["nodeid", "alias"])
        #expect(try sandbox.config().global["nodeid"] == "alias")
        try await sandbox.run(["delnodeid"])
        #expect(try sandbox.config().global["nodeid"] == nil)
        #expect(try sandbox.config().global["version"] == 1)
    }

    @Test func secrets() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["gensecret"])
        let generated = try #require(try sandbox.config().global.string("secret"))
        #expect(generated.count == 86)
        try await sandbox.run(["gensecret"])
        #expect(try sandbox.config().global.string("secret") != generated)
        try await sandbox.run(["setsecret", "s3cret"])
        #expect(try sandbox.config().global["secret"] == "s3cret")
        try await sandbox.run(["secret", "alias"])
        #expect(try sandbox.config().global["secret"] == "alias")
        try await sandbox.run(["delsecret"])
        #expect(try sandbox.config().global["secret"] == nil)
    }

    @Test func certificateFromFile() async throws {
        let sandbox = try CLISandbox()
        let pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"
        sandbox.writeFile("cert.pem", pem)
        try await sandbox.run(["setcert", sandbox.directory + "/cert.pem"])
        #expect(try sandbox.config().global["cert"] == .text(pem))
        try await sandbox.run(["delcert"])
        #expect(try sandbox.config().global["cert"] == nil)
        try await sandbox.run(["cert", sandbox.directory + "/cert.pem"])
        #expect(try sandbox.config().global["cert"] == .text(pem))
    }

    @Test func certificateFileErrors() async throws {
        let sandbox = try CLISandbox()
        let missing = await sandbox.failure(["setcert", sandbox.directory + "/nope.pem"])
        #expect(missing == sandbox.directory + "/nope.pem: No such file or directory")
        sandbox.writeFile("plain.txt", "hello")
        let plain = await sandbox.failure(["setcert", sandbox.directory + "/plain.txt"])
        #expect(plain?.contains("no PEM data") == true)
        #expect(await sandbox.failure(["setcert"]) == "setcert: key+certificate PEM file name or PEM text missing")
    }

    @Test func generatedCertificate() async throws {
        let sandbox = try CLISandbox()
        guard CertificateGenerator.findExecutable("openssl", path: "/usr/bin:/bin:/usr/local/bin") != nil else { return }
        try await sandbox.run(["gencert"])
        let cert = try #require(try sandbox.config().global.string("cert"))
        #expect(cert.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        #expect(cert.contains("-----BEGIN CERTIFICATE-----"))
        #expect(sandbox.fileMode("rc.json") == 0o600)
    }

    @Test func gencertWithoutOpenSSL() async throws {
        let sandbox = try CLISandbox()
        let message = await sandbox.failure(["gencert"], environment: ["PATH": sandbox.directory])
        #expect(message?.hasPrefix("gencert: the openssl command was not found in PATH") == true)
        #expect(sandbox.fileMode("rc.json") == nil)  // nothing saved
    }

    @Test(arguments: ["seed", "bind"])
    func addressLists(_ singular: String) async throws {
        let sandbox = try CLISandbox()
        let key = singular + "s"
        try await sandbox.run(["set" + key, "a:1,b:2"])
        #expect(try sandbox.config().global[key] == ["a:1", "b:2"])
        try await sandbox.run([key, "[\"c:3\"]"])
        #expect(try sandbox.config().global[key] == ["c:3"])
        try await sandbox.run(["add" + singular, "d:4"])
        try await sandbox.run(["add" + singular, "c:3"])  // moves to the end, no duplicate
        #expect(try sandbox.config().global[key] == ["d:4", "c:3"])
        try await sandbox.run(["del" + singular, "d:4"])
        try await sandbox.run(["del" + singular, "x:9"])
        #expect(try sandbox.config().global[key] == ["c:3"])
        try await sandbox.run(["set" + key, ""])
        #expect(try sandbox.config().global[key] == [])
        try await sandbox.run(["del" + key])
        #expect(try sandbox.config().global[key] == nil)
        try await sandbox.run(["add" + singular, "e:5"])
        #expect(try sandbox.config().global[key] == ["e:5"])
        #expect(await sandbox.failure(["set" + key]) == "set\(key): \(key) (comma-separated or a JSON array) missing")
        #expect(await sandbox.failure(["add" + singular]) == "add\(singular): \(singular) missing")
        #expect(await sandbox.failure(["del" + singular]) == "del\(singular): \(singular) missing")
        #expect(await sandbox.failure(["set" + key, "{\"a\":1}"])?.contains("expected a comma-separated list or a JSON array") == true)
    }

    @Test func services() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setservices", "A::,B::f"])
        try await sandbox.run(["addservice", "A::"])  // services may repeat
        #expect(try sandbox.config().global["services"] == ["A::", "B::f", "A::"])
        try await sandbox.run(["delservice", "A::"])  // removes one instance
        #expect(try sandbox.config().global["services"] == ["B::f", "A::"])
        try await sandbox.run(["services", "[[\"mymod::myfun\", 1, 2]]"])
        #expect(try sandbox.config().global["services"] == [["mymod::myfun", 1, 2]])
        try await sandbox.run(["delservice", "[\"mymod::myfun\", 1, 2]"])
        #expect(try sandbox.config().global["services"] == [])
        try await sandbox.run(["delservices"])
        #expect(try sandbox.config().global["services"] == nil)
    }

    @Test func storedStringListIsSplit() async throws {
        let sandbox = try CLISandbox()
        sandbox.writeFile("rc.json", "{\"seeds\": \"a:1,b:2\"}")
        try await sandbox.run(["addseed", "c:3"])
        #expect(try sandbox.config().global["seeds"] == ["a:1", "b:2", "c:3"])
        sandbox.writeFile("rc.json", "{\"seeds\": 5}")
        #expect(await sandbox.failure(["addseed", "c:3"])?.contains("expected a comma-separated list") == true)
    }

    @Test func profilesChainCommands() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["gensecret", "profile", "server", "nodeid", "anon/", "seeds", "doomed,10.0.0.2:5000", "binds", "*:*"])
        let file = try sandbox.config()
        #expect(file.global.string("secret")?.count == 86)
        let server = try #require(file.profile("server"))
        #expect(server.keys == ["nodeid", "seeds", "binds"])
        #expect(server["seeds"] == ["doomed", "10.0.0.2:5000"])
        #expect(server["binds"] == ["*:*"])
        try await sandbox.run(["profile", "doomed", "setparent", "server", "nodeid", "doomed"])
        #expect(try sandbox.config().profile("doomed") == ProfileSettings([("parent", "server"), ("nodeid", "doomed")]))
        try await sandbox.run(["profile", "doomed", "delparent"])
        #expect(try sandbox.config().profile("doomed")?["parent"] == nil)
        try await sandbox.run(["profile", "doomed", "parent", "server"])
        try await sandbox.run(["profile", "empty"])
        #expect(try sandbox.config().profile("empty") == ProfileSettings())
        try await sandbox.run(["delprofile", "empty"])
        #expect(try sandbox.config().profileNames == ["server", "doomed"])
        try await sandbox.run(["delprofile", "nothing"])
        #expect(await sandbox.failure(["profile"]) == "profile: profile name missing")
        #expect(await sandbox.failure(["delprofile"]) == "delprofile: profile name missing")
        #expect(await sandbox.failure(["setparent"]) == "setparent: parent value missing")
        #expect(await sandbox.failure(["profile", "[1]"])?.hasPrefix("profile: profile name must be a non-empty string") == true)
    }

    @Test func showProfileAndConfig() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "g", "profile", "base", "binds", "b:1", "profile", "leaf", "parent", "base", "nodeid", "leaf"])
        try await sandbox.run(["showprofile", "leaf"])
        #expect(sandbox.output.text == """
            {
               "parent" : "base",
               "nodeid" : "leaf"
            }
            """)
        try await sandbox.run(["showprofile", "missing"])
        #expect(sandbox.output.lines.last == "{}")
    }

    @Test func showConfigOutput() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "g", "profile", "leaf", "nodeid", "leaf"])
        try await sandbox.run(["showconfig", "leaf", "connect_interval", "5", "secret", "arg"])
        let value = try ArgumentRules.value(sandbox.output.text)
        #expect(value["nodeid"] == "leaf")
        #expect(value["secret"] == "g")  // the rc file wins
        #expect(value["connect_interval"] == "5")
        #expect(value["monitor_timeout"] == 30)
        #expect(value["parent"] == nil && value["profile"] == nil && value["version"] == nil)
    }

    @Test func showConfigDefaultsToHostNameAndForce() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "g", "profile", "testhost", "binds", "h:1"])
        try await sandbox.run(["showconfig"])
        var value = try ArgumentRules.value(sandbox.output.text)
        #expect(value["binds"] == ["h:1"])
        let before = sandbox.output.lines.count
        try await sandbox.run(["showconfig", "testhost", "secret", "arg", "force", "1"])
        value = try ArgumentRules.value(sandbox.output.lines.dropFirst(before).joined(separator: "\n"))
        #expect(value["secret"] == "arg")
        #expect(await sandbox.failure(["showconfig", "testhost", "secret"]) == "showconfig: configure key without value")
    }

    @Test func parentCycleInShowConfig() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["profile", "a", "parent", "b", "profile", "b", "parent", "a"])
        let message = await sandbox.failure(["showconfig", "a"])
        #expect(message?.hasPrefix("showconfig: profile parent chain loops") == true)
    }

    static let lowLevelKeys = [
        ("monitor_timeout", "10"), ("connect_interval", "1.5"), ("framing_format", "[\"json\"]"),
        ("auth_offer", "[\"hmac_sha3_512\"]"), ("auth_accept", "[\"hmac_sha3_512\",\"cleartext\"]"), ("autocork", "1"),
        ("nodelay", "0"), ("secure", "1"),
    ]

    @Test(arguments: lowLevelKeys)
    func lowLevelSettings(_ key: String, _ argument: String) async throws {
        let sandbox = try CLISandbox()
        let expected = try ArgumentRules.value(argument)
        try await sandbox.run(["set" + key, argument])
        #expect(try sandbox.config().global[key] == expected)
        try await sandbox.run(["profile", "p", key, argument])
        #expect(try sandbox.config().profile("p")?[key] == expected)
        try await sandbox.run(["del" + key])
        #expect(try sandbox.config().global[key] == nil)
        #expect(try sandbox.config().profile("p")?[key] == expected)
        #expect(await sandbox.failure(["set" + key]) == "set\(key): \(key) value missing")
    }

    @Test func settingsReachTheNodeConfiguration() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run([
            "setsecret", "s", "setmonitor_timeout", "10", "connect_interval", "1.5", "framing_format", "json",
            "auth_offer", "hmac_sha3_512", "autocork", "1", "nodelay", "0", "secure", "1",
        ])
        let resolved = try sandbox.config().resolve(configureArguments: ProfileSettings(), hostname: "h")
        #expect(resolved.configuration.monitorTimeout == .seconds(10))
        #expect(resolved.configuration.connectInterval == .milliseconds(1500))
        #expect(resolved.configuration.framingFormats.map(\.rawValue) == ["json"])
        #expect(resolved.configuration.authOffer.map(\.rawValue) == ["hmac_sha3_512"])
        #expect(resolved.configuration.autocork && !resolved.configuration.nodelay && resolved.configuration.secure)
    }

    @Test func wholeArgumentListAsJSONArray() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["[\"setseeds\", [\"a:1\", \"b:2\"], \"profile\", \"p\", \"secret\", \"x\"]"])
        #expect(try sandbox.config().global["seeds"] == ["a:1", "b:2"])
        #expect(try sandbox.config().profile("p")?["secret"] == "x")
        #expect(await sandbox.failure(["[1"])?.hasPrefix("argument [1: not valid JSON") == true)
        #expect(await sandbox.failure(["{\"a\":1}"]) != nil)  // not a command
        #expect(await sandbox.failure(["[]"])?.hasPrefix("usage:") == true)
        #expect(await sandbox.failure(["[5]"]) == "5: not an aemp command name")
    }

    @Test func perArgumentJSONRule() async throws {
        let sandbox = try CLISandbox()
        try await sandbox.run(["setsecret", "\"[quoted]\""])
        #expect(try sandbox.config().global["secret"] == "[quoted]")
        try await sandbox.run(["setsecret", "plain[text"])
        #expect(try sandbox.config().global["secret"] == "plain[text")
        try await sandbox.run(["setmonitor_timeout", "{\"x\": [1, true, null]}"])
        #expect(try sandbox.config().global["monitor_timeout"] == ["x": [1, true, nil]])
        let bad = await sandbox.failure(["setsecret", "\"unterminated"])
        #expect(bad?.hasPrefix("argument \"unterminated: not valid JSON") == true)
    }

    @Test func unknownCommandsAndUnsupported() async throws {
        let sandbox = try CLISandbox()
        #expect(await sandbox.failure(["setsecret", "x", "frobnicate"]) == "frobnicate: no such aemp command (try aemp --help)")
        #expect(sandbox.fileMode("rc.json") == nil)  // a failing chain saves nothing
        #expect(await sandbox.failure(["gensecret", "shell", "n"]) == "shell: not supported by this aemp")
        let parse = await sandbox.failure(["frobnicate"])
        #expect(parse != nil)
    }

    @Test func helpFlagIsNotStoredAsAValue() async throws {
        let sandbox = try CLISandbox()
        #expect(await sandbox.failure(["setseeds", "--help"]) != nil)  // ArgumentParser's help request
        #expect(await sandbox.failure(["setsecret", "-h"]) != nil)
        #expect(sandbox.fileMode("rc.json") == nil)
        try await sandbox.run(["setsecret", "x", "setseeds", "--help"])  // later in a chain it is a value, as in Perl
        #expect(try sandbox.config().global["seeds"] == ["--help"])
    }

    @Test func everyChainCommandHasASubcommand() {
        #expect(AEMPCommand.subcommandNames == CommandChain.commandNames)
    }

    @Test func malformedRcFileIsReportedAndKept() async throws {
        let sandbox = try CLISandbox()
        sandbox.writeFile("rc.json", "{\"secret\": \"x\",}")
        let message = await sandbox.failure(["setseeds", "a:1"])
        #expect(message?.hasPrefix(sandbox.rcPath + ": not valid JSON") == true)
        sandbox.writeFile("rc.json", "[]")
        #expect(await sandbox.failure(["showprofile", "x"]) == sandbox.rcPath + ": expected a JSON object at the top level")
    }

    @Test func perlRcFileIsEditedInPlace() async throws {
        let sandbox = try CLISandbox()
        sandbox.writeFile("rc.json", """
            {
               "profile" : {
                  "echo" : { "nodeid" : "echo", "binds" : ["127.0.0.1:4040"] }
               },
               "secret" : "aemp-ref-secret",
               "version" : 1
            }
            """)
        try await sandbox.run(["profile", "echo", "addbind", "127.0.0.1:4041"])
        let file = try sandbox.config()
        #expect(file.global["secret"] == "aemp-ref-secret")
        #expect(file.profile("echo")?["binds"] == ["127.0.0.1:4040", "127.0.0.1:4041"])
        #expect(sandbox.fileMode("rc.json") == 0o600)
    }

    @Test func missingConfigLocation() async throws {
        let sandbox = try CLISandbox()
        let message = await CLIContext.$current.withValue(
            CLIContext(environment: [:], hostname: "h", output: { _ in }, errorOutput: { _ in }, backend: RecordingBackend())
        ) { () async -> String? in
            do {
                try await AEMPCommand.runCommandLine(["gensecret"])
                return nil
            } catch {
                return (error as? CLIError)?.message
            }
        }
        _ = sandbox
        #expect(message == "cannot locate the config file: set AEMP_RC (or HOME)")
    }
}
