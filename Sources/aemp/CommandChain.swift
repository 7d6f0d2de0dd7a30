import AEMP
import AEMPCodecs

/// Runs a Perl-style `aemp` command line: the first argument names a command, which takes the
/// arguments it needs; whatever is left is the next command, and so on
/// (`aemp gensecret profile server binds '*:4040' nodeid server`).
///
/// Configuration commands edit the global settings of the rc file, or, after `profile <name>`, that
/// profile. The file is read when the first configuration command needs it and saved once at the
/// end, atomically; if any command fails nothing is saved (Perl saves whatever was done before the
/// failure). Node commands (`run`, `snd`, `cal`, `eval`, `sendfile`, `trace`) take all remaining arguments; `mon` takes one.
struct CommandChain {
    /// The commands that edit a single value: `set<key> <value>` (alias `<key> <value>`) and `del<key>`.
    static let valueKeys = [
        "nodeid", "secret", "parent", "monitor_timeout", "connect_interval", "framing_format", "auth_offer",
        "auth_accept", "autocork", "nodelay", "secure",
    ]
    /// The commands that edit a list: `set<key>s`, `del<key>s`, `add<key>`, `del<key>`.
    static let listKeys = ["seed", "bind", "service"]
    /// Perl commands this port does not offer.
    static let unsupported = ["shell", "restart"]

    let context: CLIContext
    private var file: ConfigFile?
    private var path: String?
    private var target: String?
    private var dirty = false

    init(context: CLIContext) {
        self.context = context
    }

    /// Every command name the chain understands (aliases included).
    static var commandNames: Set<String> {
        var names: Set<String> = [
            "run", "snd", "cal", "mon", "eval", "nodes", "sendfile", "trace", "gensecret", "gencert", "setcert", "cert", "delcert",
            "profile", "delprofile", "showprofile", "showconfig",
        ]
        for key in valueKeys { names.formUnion(["set" + key, key, "del" + key]) }
        for key in listKeys { names.formUnion(["set\(key)s", "\(key)s", "del\(key)s", "add" + key, "del" + key]) }
        return names
    }

    /// Runs the whole command line and saves the rc file if a command changed it.
    ///
    /// - Throws: ``CLIError`` for the first failing command.
    mutating func execute(_ arguments: [Value]) async throws {
        var rest = arguments[...]
        guard !rest.isEmpty else { throw CLIError("usage: aemp <command> [arguments...] [<command> ...] (try aemp --help)") }
        while let first = rest.popFirst() {
            guard let name = first.stringValue else {
                throw CLIError("\(ArgumentRules.plain(first)): not an aemp command name")
            }
            if try await executeNodeCommand(name, &rest) { continue }
            try executeConfigCommand(name, &rest)
        }
        try saveIfNeeded()
    }

    // MARK: Node commands

    private mutating func executeNodeCommand(_ name: String, _ rest: inout ArraySlice<Value>) async throws -> Bool {
        switch name {
        case "run", "snd", "cal", "eval", "nodes", "mon", "sendfile", "trace":
            try saveIfNeeded()
        default:
            if Self.unsupported.contains(name) { throw CLIError("\(name): not supported by this aemp") }
            return false
        }
        let arguments = Array(rest)
        switch name {
        case "mon":
            try await NodeCommands.monitor(rest.popFirst(), context: context)
            return true
        case "nodes":
            try await NodeCommands.nodes(context: context)
            return true
        default:
            rest = []
        }
        switch name {
        case "run": try await NodeCommands.run(arguments, context: context)
        case "snd": try await NodeCommands.send(arguments, context: context)
        case "cal": try await NodeCommands.call(arguments, context: context)
        case "sendfile": try await NodeCommands.sendFile(arguments, context: context)
        case "trace": try await NodeCommands.trace(arguments, context: context)
        default: try await NodeCommands.evaluate(arguments, context: context)
        }
        return true
    }

    // MARK: Configuration commands

    private mutating func loadFile() throws(CLIError) -> ConfigFile {
        if let file { return file }
        let path = try context.configPath()
        do {
            let loaded = try ConfigFile.load(path: path)
            self.file = loaded
            self.path = path
            return loaded
        } catch {
            throw CLIError(error.description)
        }
    }

    private mutating func saveIfNeeded() throws(CLIError) {
        guard dirty, let file, let path else { return }
        do {
            try file.save(to: path)
        } catch {
            throw CLIError(error.description)
        }
        dirty = false
    }

    /// Applies `body` to the settings the chain currently targets and marks the file changed.
    private mutating func edit(_ body: (inout ProfileSettings) throws(CLIError) -> Void) throws(CLIError) {
        var file = try loadFile()
        try file.edit(profile: target, body)
        self.file = file
        dirty = true
    }

    private static func required(_ rest: inout ArraySlice<Value>, _ command: String, _ what: String) throws(CLIError) -> Value {
        guard let value = rest.popFirst() else { throw CLIError("\(command): \(what) missing") }
        return value
    }

    private static func name(_ value: Value, _ command: String, _ what: String) throws(CLIError) -> String {
        guard let text = value.stringValue, !text.isEmpty else {
            throw CLIError("\(command): \(what) must be a non-empty string, got \(ArgumentRules.plain(value))")
        }
        return text
    }

    private mutating func executeConfigCommand(_ name: String, _ rest: inout ArraySlice<Value>) throws(CLIError) {
        switch name {
        case "gensecret":
            try edit { $0["secret"] = .text(ProfileSettings.randomSecret()) }
        case "gencert":
            let certificate = try CertificateGenerator.generate(environment: context.environment)
            try edit { $0["cert"] = .text(certificate) }
        case "setcert", "cert":
            let file = try Self.name(try Self.required(&rest, name, "key+certificate PEM file name or PEM text"), name, "file name or PEM text")
            let text = try CertificateGenerator.readPEMFile(file)
            try edit { $0["cert"] = .text(text) }
        case "delcert":
            try edit { $0["cert"] = nil }
        case "profile":
            let profile = try Self.name(try Self.required(&rest, name, "profile name"), name, "profile name")
            var file = try loadFile()
            if file.profile(profile) == nil { file.setProfile(profile, ProfileSettings()) }
            self.file = file
            target = profile
            dirty = true
        case "delprofile":
            let profile = try Self.name(try Self.required(&rest, name, "profile name"), name, "profile name")
            var file = try loadFile()
            file.setProfile(profile, nil)
            self.file = file
            dirty = true
        case "showprofile":
            let profile = try Self.name(try Self.required(&rest, name, "profile name"), name, "profile name")
            let settings = try loadFile().profile(profile) ?? ProfileSettings()
            context.output(try Self.pretty(settings))
        case "showconfig":
            try showConfig(&rest)
        default:
            if try editValue(name, &rest) { return }
            if try editList(name, &rest) { return }
            throw CLIError("\(name): no such aemp command (try aemp --help)")
        }
    }

    private mutating func showConfig(_ rest: inout ArraySlice<Value>) throws(CLIError) {
        let profile = try rest.popFirst().map { value throws(CLIError) in try Self.name(value, "showconfig", "profile name") }
            ?? context.hostname
        guard rest.count % 2 == 0 else { throw CLIError("showconfig: configure key without value") }
        let arguments: ProfileSettings
        do {
            arguments = try ProfileSettings(configureArguments: Array(rest))
        } catch {
            throw CLIError("showconfig: \(error)")
        }
        rest = []
        let file = arguments.isTrue("norc") ? ConfigFile() : try loadFile()
        do {
            context.output(try Self.pretty(try file.findProfile(profile, arguments: arguments)))
        } catch {
            throw CLIError("showconfig: \(error)")
        }
    }

    private static func pretty(_ settings: ProfileSettings) throws(CLIError) -> String {
        do {
            return try ConfigFile.renderJSON(.map(settings.entries.map { (.text($0.key), $0.value) }), pretty: true)
        } catch {
            throw CLIError(error.description)
        }
    }

    /// `set<key>`, `<key>`, `del<key>` for the single-value keys.
    private mutating func editValue(_ name: String, _ rest: inout ArraySlice<Value>) throws(CLIError) -> Bool {
        if name.hasPrefix("del"), Self.valueKeys.contains(String(name.dropFirst(3))) {
            let key = String(name.dropFirst(3))
            try edit { $0[key] = nil }
            return true
        }
        let key = name.hasPrefix("set") ? String(name.dropFirst(3)) : name
        guard Self.valueKeys.contains(key) else { return false }
        let value = try Self.required(&rest, name, "\(key) value")
        if key == "parent" || key == "nodeid" { _ = try Self.name(value, name, key) }
        try edit { $0[key] = value }
        return true
    }

    /// `set<key>s`/`<key>s`, `del<key>s`, `add<key>`, `del<key>` for seeds, binds and services.
    private mutating func editList(_ name: String, _ rest: inout ArraySlice<Value>) throws(CLIError) -> Bool {
        for singular in Self.listKeys {
            let key = singular + "s"
            switch name {
            case "set" + key, key:
                let value = try Self.required(&rest, name, "\(key) (comma-separated or a JSON array)")
                let list = try Self.list(value, name)
                try edit { $0[key] = .array(list) }
            case "del" + key:
                try edit { $0[key] = nil }
            case "add" + singular:
                let item = try Self.required(&rest, name, singular)
                try edit { (settings) throws(CLIError) in
                    var list = try Self.list(settings[key], name)
                    if singular != "service" { list.removeAll { $0 == item } }
                    list.append(item)
                    settings[key] = .array(list)
                }
            case "del" + singular:
                let item = try Self.required(&rest, name, singular)
                try edit { (settings) throws(CLIError) in
                    var list = try Self.list(settings[key], name)
                    if singular == "service" {
                        if let index = list.firstIndex(of: item) { list.remove(at: index) }
                    } else {
                        list.removeAll { $0 == item }
                    }
                    settings[key] = .array(list)
                }
            default:
                continue
            }
            return true
        }
        return false
    }

    /// A list argument or stored list: a JSON array as is, a string split at commas (Perl: `split /,/`),
    /// nothing or `null` as the empty list.
    static func list(_ value: Value?, _ command: String) throws(CLIError) -> [Value] {
        guard let value, !value.isNull else { return [] }
        if case .array(let elements) = value { return elements }
        guard let text = value.stringValue else {
            throw CLIError("\(command): expected a comma-separated list or a JSON array, got \(ArgumentRules.plain(value))")
        }
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Value.text(String($0)) }
        while parts.last == .text("") { parts.removeLast() }
        return parts
    }
}
