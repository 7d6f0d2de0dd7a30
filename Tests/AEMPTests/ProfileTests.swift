import AEMPCodecs
import Testing

@testable import AEMP

@Suite("Profiles")
struct ProfileTests {
    /// global < grandparent < parent < child, each layer setting a key of its own and `level`.
    static func layeredFile() throws -> ConfigFile {
        try ConfigFile(
            json: """
                {
                  "version": 1, "level": "global", "secret": "g", "monitor_timeout": 10,
                  "profile": {
                    "grand": {"level": "grand", "seeds": ["grand:1"]},
                    "parent": {"parent": "grand", "level": "parent", "binds": ["parent:1"]},
                    "child": {"parent": "parent", "level": "child", "nodeid": "child"},
                    "loop1": {"parent": "loop2"},
                    "loop2": {"parent": "loop1"},
                    "self": {"parent": "self"},
                    "orphan": {"parent": "missing", "level": "orphan"}
                  }
                }
                """)
    }

    @Test func settingsKeepOrderAndReplaceInPlace() {
        var settings = ProfileSettings([("a", 1), ("b", 2), ("a", 3)])
        #expect(settings.keys == ["a", "b"])
        #expect(settings["a"] == 3)
        settings["c"] = 4
        settings["a"] = 5
        #expect(settings.keys == ["a", "b", "c"])
        settings["b"] = nil
        #expect(settings.keys == ["a", "c"])
        #expect(settings.removeValue(forKey: "a") == 5)
        #expect(settings.removeValue(forKey: "a") == nil)
        #expect(!settings.contains("a") && settings.contains("c"))
        #expect(ProfileSettings([("x", 1)]).merging(ProfileSettings([("y", 2), ("x", 3)])).pairs.map(\.key) == ["x", "y"])
        #expect(ProfileSettings([("x", 1)]).merging(ProfileSettings([("x", 3)]))["x"] == 3)
        #expect(ProfileSettings([("x", "s"), ("n", 1)]).description == "{\"x\":\"s\",\"n\":1}")
    }

    @Test(arguments: [
        (Value.null, false), (.bool(false), false), (.bool(true), true), (.int(0), false), (.int(2), true),
        (.uint(0), false), (.float(0), false), (.float(0.5), true), (.text(""), false), (.text("0"), false),
        (.text("00"), true), (.text("1"), true), (.array([]), true),
    ])
    func perlTruth(_ value: Value, _ truth: Bool) {
        #expect(ProfileSettings([("k", value)]).isTrue("k") == truth)
        #expect(!ProfileSettings().isTrue("k"))
    }

    @Test func inheritanceFollowsParentChain() throws {
        let settings = try Self.layeredFile().inheritedSettings(of: "child")
        #expect(settings["level"] == "child")
        #expect(settings["seeds"] == ["grand:1"])
        #expect(settings["binds"] == ["parent:1"])
        #expect(settings["nodeid"] == "child")
        #expect(settings["secret"] == "g")
        #expect(!settings.contains("parent") && !settings.contains("version") && !settings.contains("profile"))
    }

    @Test func unknownProfileAndMissingParentFallBackLikePerl() throws {
        let file = try Self.layeredFile()
        #expect(try file.inheritedSettings(of: "nobody")["level"] == "global")
        #expect(try file.inheritedSettings(of: nil)["level"] == "global")
        #expect(try file.inheritedSettings(of: "orphan")["level"] == "orphan")
    }

    @Test(arguments: ["loop1", "loop2", "self"])
    func parentCycleIsAnError(_ name: String) throws {
        let file = try Self.layeredFile()
        let error = #expect(throws: ConfigFileError.self) { try file.inheritedSettings(of: name) }
        #expect(error?.code == .parentCycle)
        #expect(error?.reason.contains("\"\(name)\"") == true)
        #expect(throws: ConfigFileError.self) { try file.findProfile(name, arguments: ProfileSettings()) }
    }

    @Test func mergeOrderRcWinsOverArguments() throws {
        let arguments = ProfileSettings([("level", "argument"), ("binds", ["arg:1"]), ("connect_interval", 7), ("extra", 1)])
        let settings = try Self.layeredFile().findProfile("child", arguments: arguments)
        #expect(settings["level"] == "child")  // rc wins
        #expect(settings["binds"] == ["parent:1"])  // rc wins
        #expect(settings["connect_interval"] == 7)  // argument wins over the default
        #expect(settings["monitor_timeout"] == 10)  // global wins over the default
        #expect(settings["extra"] == 1)
        #expect(settings["framing_format"] == ["cbor", "json"])  // default
        #expect(settings["auth_offer"] == ["tls_sha3_512", "hmac_sha3_512"])
        #expect(settings["auth_accept"] == ["tls_sha3_512", "hmac_sha3_512", "tls_anon", "cleartext"])
    }

    @Test func forceLetsArgumentsWin() throws {
        let arguments = ProfileSettings([("level", "argument"), ("force", 1), ("norc", 0)])
        let settings = try Self.layeredFile().findProfile("child", arguments: arguments)
        #expect(settings["level"] == "argument")
        #expect(settings["monitor_timeout"] == 10)  // defaults stay below the rc file even with force
        #expect(settings["seeds"] == ["grand:1"])
        #expect(!settings.contains("force") && !settings.contains("norc"))
    }

    @Test func norcSkipsTheFile() throws {
        let settings = try Self.layeredFile().findProfile("child", arguments: ProfileSettings([("norc", true), ("level", "arg")]))
        #expect(settings["level"] == "arg")
        #expect(settings["secret"] == nil && settings["seeds"] == nil)
        #expect(settings["monitor_timeout"] == 30)
        // norc also ignores a looping profile.
        #expect(try Self.layeredFile().findProfile("loop1", arguments: ProfileSettings([("norc", "1")]))["connect_interval"] == 2)
    }

    @Test func configureArgumentsOddCountStartsWithProfile() throws {
        let settings = try ProfileSettings(configureArguments: ["server", "nodeid", "x", "binds", ["*:1"]])
        #expect(settings.pairs.map(\.key) == ["profile", "nodeid", "binds"])
        #expect(settings["profile"] == "server")
        #expect(try ProfileSettings(configureArguments: []).isEmpty)
        let error = #expect(throws: ConfigFileError.self) { try ProfileSettings(configureArguments: [1, "x"]) }
        #expect(error?.code == .invalidArguments)
        #expect(throws: ConfigFileError.self) { try ProfileSettings(configureArguments: ["", "x"]) }
    }

    @Test func unknownConfigureKeysAreReported() throws {
        let settings = try ProfileSettings(configureArguments: ["bind", "x", "nodeid", "n", "norc", 1, "eval", "1"])
        #expect(settings.unknownConfigureKeys == ["bind"])
    }

    @Test func resolveUsesHostNameProfileAndDefaultNodeID() throws {
        var file = try Self.layeredFile()
        file.setProfile("myhost", ProfileSettings([("binds", ["h:1"])]))
        let resolved = try file.resolve(configureArguments: ProfileSettings(), hostname: "myhost")
        #expect(resolved.profileName == "myhost")
        #expect(resolved.configuration.nodeID == "myhost/")
        #expect(resolved.configuration.binds == ["h:1"])
        #expect(resolved.configuration.secret == "g")
        #expect(resolved.configuration.monitorTimeout == .seconds(10))
        #expect(resolved.settings["nodeid"] == "myhost/")
    }

    @Test func resolveNamedProfile() throws {
        let resolved = try Self.layeredFile().resolve(configureArguments: ProfileSettings([("profile", "child")]), hostname: "h")
        #expect(resolved.profileName == "child")
        #expect(resolved.configuration.nodeID == "child")
        #expect(resolved.configuration.seeds == ["grand:1"])
        #expect(resolved.configuration.binds == ["parent:1"])
    }

    @Test(arguments: [
        (ProfileSettings([("nodeid", "a#b")]), "nodeid"),
        (ProfileSettings([("monitor_timeout", "soon")]), "monitor_timeout"),
        (ProfileSettings([("framing_format", "storable")]), "framing_format"),
        (ProfileSettings([("profile", 7)]), "profile"),
        (ProfileSettings([("seeds", ["a", 1])]), "seeds"),
    ])
    func resolveRefusesBadValues(_ arguments: ProfileSettings, _ key: String) {
        let error = #expect(throws: ConfigFileError.self) { try ConfigFile().resolve(configureArguments: arguments, hostname: "h") }
        #expect(error?.code == .invalidArguments)
        #expect(error?.reason.hasPrefix(key) == true)
    }

    @Test func embeddedRunDefaults() throws {
        let resolved = try ConfigFile().resolve(configureArguments: ProfileSettings.runDefaults, hostname: "h")
        #expect(resolved.configuration.nodeID == "anon/")
        #expect(resolved.configuration.binds == ["127.0.0.1:4040"])
        #expect(resolved.configuration.seeds == ["127.0.0.1:4040"])
        #expect(!resolved.configuration.canAuthenticate)
        // The rc file overrides the embedded defaults.
        let file = ConfigFile(global: ProfileSettings([("secret", "s"), ("binds", ["127.0.0.1:5000"])]))
        let fromFile = try file.resolve(configureArguments: ProfileSettings.runDefaults, hostname: "h")
        #expect(fromFile.configuration.binds == ["127.0.0.1:5000"])
        #expect(fromFile.configuration.secret == "s")
        #expect(ProfileSettings.clientDefaults["seeds"] == ["127.0.0.1:4040"])
    }

    @Test func randomSecrets() {
        let first = ProfileSettings.randomSecret()
        let second = ProfileSettings.randomSecret()
        #expect(first.count == 86 && second.count == 86)
        #expect(first != second)
        #expect(first.unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("A"..."Z").contains($0) || ("a"..."z").contains($0) })
    }

    @Test func editCreatesProfilesAndDeletes() {
        var file = ConfigFile()
        file.edit(profile: nil) { $0["secret"] = "g" }
        file.edit(profile: "p") { $0["secret"] = "p" }
        #expect(file.global["secret"] == "g")
        #expect(file.profile("p")?["secret"] == "p")
        file.setProfile("p", nil)
        #expect(file.profileNames.isEmpty)
        let merged = ConfigFile(global: ProfileSettings([("profile", ["x": 1]), ("a", 1)]), profiles: [
            .init(name: "q", settings: ProfileSettings([("a", 1)])), .init(name: "q", settings: ProfileSettings([("a", 2)])),
        ])
        #expect(!merged.global.contains("profile"))
        #expect(merged.profiles.count == 1 && merged.profile("q")?["a"] == 2)
    }
}
