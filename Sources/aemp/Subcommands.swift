import ArgumentParser

// The subcommands of `aemp`, one per Perl bin/aemp command. Each only names and documents its
// command: it captures every following argument unparsed and hands the whole command line to
// `CommandChain`, which applies Perl's argument rules (JSON arguments, command chaining).

/// A subcommand that passes its name and the rest of the command line to ``CommandChain``.
protocol ChainedCommand: AsyncParsableCommand {
    /// Every argument after the command name, unparsed.
    var arguments: [String] { get }
}

extension ChainedCommand {
    mutating func run() async throws {
        // Help for this subcommand when asked first thing (Perl would take `--help` as a value).
        if let first = arguments.first, first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
        try await AEMPCommand.runChain([Self.configuration.commandName ?? ""] + arguments)
    }
}

extension AEMPCommand {
    /// Every subcommand, in the order of Perl's manual.
    static let chainedCommands: [any ParsableCommand.Type] = [
        RunCommand.self,
        SendCommand.self,
        CallCommand.self,
        MonitorCommand.self,
        EvalCommand.self,
        NodesCommand.self,
        SendFileCommand.self,
        TraceCommand.self,
        SetNodeIDCommand.self,
        DelNodeIDCommand.self,
        GenSecretCommand.self,
        SetSecretCommand.self,
        DelSecretCommand.self,
        GenCertCommand.self,
        SetCertCommand.self,
        DelCertCommand.self,
        SetSeedsCommand.self,
        DelSeedsCommand.self,
        AddSeedCommand.self,
        DelSeedCommand.self,
        SetBindsCommand.self,
        DelBindsCommand.self,
        AddBindCommand.self,
        DelBindCommand.self,
        SetServicesCommand.self,
        DelServicesCommand.self,
        AddServiceCommand.self,
        DelServiceCommand.self,
        ProfileCommand.self,
        SetParentCommand.self,
        DelParentCommand.self,
        DelProfileCommand.self,
        ShowProfileCommand.self,
        ShowConfigCommand.self,
        SetMonitorTimeoutCommand.self,
        DelMonitorTimeoutCommand.self,
        SetConnectIntervalCommand.self,
        DelConnectIntervalCommand.self,
        SetFramingFormatCommand.self,
        DelFramingFormatCommand.self,
        SetAuthOfferCommand.self,
        DelAuthOfferCommand.self,
        SetAuthAcceptCommand.self,
        DelAuthAcceptCommand.self,
        SetAutocorkCommand.self,
        DelAutocorkCommand.self,
        SetNodelayCommand.self,
        DelNodelayCommand.self,
        SetSecureCommand.self,
        DelSecureCommand.self,
    ]
}

struct RunCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a node: `aemp run [<profile>] [<key> <value>...]` with configure arguments; without arguments, the embedded default profile (anonymous node on 127.0.0.1:4040, its own seed, secret from the config file); `sendfile_dir <directory>` lets it receive files (aemp sendfile).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("All remaining arguments.", valueName: "configure-arguments"))
    var arguments: [String] = []
}

struct SendCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "snd", abstract: "Send a message to a port (`aemp snd <nodeid>#<port> <arg>...`) and confirm it reached the port's node.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("All remaining arguments.", valueName: "port> <arg"))
    var arguments: [String] = []
}

struct CallCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "cal", abstract: "Send a message with a reply port appended and print the reply as JSON values separated by commas.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("All remaining arguments.", valueName: "port> <arg"))
    var arguments: [String] = []
}

struct MonitorCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "mon", abstract: "Wait until a port is killed and print the kill reason.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "port"))
    var arguments: [String] = []
}

struct EvalCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval", abstract: "Evaluate the expression (all remaining words) on a node and print the results as JSON.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("All remaining arguments.", valueName: "node> <expression"))
    var arguments: [String] = []
}

struct NodesCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "Print the IDs of the nodes that are up in the network, as seen through the seeds.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SendFileCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "sendfile", abstract: "Send a file to a node started with `aemp run ... sendfile_dir <directory>` (`aemp sendfile <node> <path> [remote-path]`): streamed over a data connection, with progress, SHA-256 verified.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("All remaining arguments.", valueName: "node> <path> <remote-path"))
    var arguments: [String] = []
}

struct TraceCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace", abstract: "Print every node reachable from a node (default: the seeds' database master) with its connections, marking Perl and Swift nodes, global nodes and unreachable ones: `aemp trace [<node>] [--json] [--timeout <seconds>]` (default 5 s per request).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("All remaining arguments.", valueName: "node> <--json> <--timeout seconds"))
    var arguments: [String] = []
}

struct SetNodeIDCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setnodeid", abstract: "Set the node ID (template: %n = host name, a trailing / or %u = random).", aliases: ["nodeid"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "nodeid"))
    var arguments: [String] = []
}

struct DelNodeIDCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delnodeid", abstract: "Remove the node ID (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct GenSecretCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "gensecret", abstract: "Generate a random shared secret and set it.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetSecretCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setsecret", abstract: "Set the shared secret.", aliases: ["secret"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "secret"))
    var arguments: [String] = []
}

struct DelSecretCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delsecret", abstract: "Remove the shared secret (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct GenCertCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "gencert", abstract: "Generate a self-signed key and certificate with the openssl command and set them.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetCertCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setcert", abstract: "Set the key and certificate (PEM: key, then certificate, then any CA certificates) from a file, or from the PEM text itself (setcert \"$(cat cert.pem)\").", aliases: ["cert"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "pem-file-or-text"))
    var arguments: [String] = []
}

struct DelCertCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delcert", abstract: "Remove the certificate (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetSeedsCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setseeds", abstract: "Set the seed addresses (comma-separated or a JSON array; may be empty).", aliases: ["seeds"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "host:port,..."))
    var arguments: [String] = []
}

struct DelSeedsCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delseeds", abstract: "Remove the seed list (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct AddSeedCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "addseed", abstract: "Add one seed address.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "host:port"))
    var arguments: [String] = []
}

struct DelSeedCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delseed", abstract: "Remove one seed address.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "host:port"))
    var arguments: [String] = []
}

struct SetBindsCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setbinds", abstract: "Set the listener addresses (comma-separated or a JSON array; * = every local address, port 0 = ephemeral).", aliases: ["binds"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "host:port,..."))
    var arguments: [String] = []
}

struct DelBindsCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delbinds", abstract: "Remove the bind list (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct AddBindCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "addbind", abstract: "Add one listener address.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "host:port"))
    var arguments: [String] = []
}

struct DelBindCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delbind", abstract: "Remove one listener address.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "host:port"))
    var arguments: [String] = []
}

struct SetServicesCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setservices", abstract: "Set the services to start (comma-separated or a JSON array).", aliases: ["services"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "function,..."))
    var arguments: [String] = []
}

struct DelServicesCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delservices", abstract: "Remove the service list (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct AddServiceCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "addservice", abstract: "Add one service.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "function"))
    var arguments: [String] = []
}

struct DelServiceCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delservice", abstract: "Remove one instance of a service.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "function"))
    var arguments: [String] = []
}

struct ProfileCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Make the following commands edit the named profile (created if needed) instead of the global settings.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "name> <command"))
    var arguments: [String] = []
}

struct SetParentCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setparent", abstract: "Set the parent profile that supplies unset values.", aliases: ["parent"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "name"))
    var arguments: [String] = []
}

struct DelParentCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delparent", abstract: "Remove the parent profile.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct DelProfileCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delprofile", abstract: "Delete the named profile.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "name"))
    var arguments: [String] = []
}

struct ShowProfileCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "showprofile", abstract: "Print the named profile's own settings as JSON.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "name"))
    var arguments: [String] = []
}

struct ShowConfigCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "showconfig", abstract: "Print the effective settings of a profile (default: the host name), with optional configure arguments.")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("All remaining arguments.", valueName: "name> <key> <value"))
    var arguments: [String] = []
}

struct SetMonitorTimeoutCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setmonitor_timeout", abstract: "Set the handshake timeout and retry cap in seconds (default 30).", aliases: ["monitor_timeout"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "seconds"))
    var arguments: [String] = []
}

struct DelMonitorTimeoutCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delmonitor_timeout", abstract: "Remove the monitor_timeout setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetConnectIntervalCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setconnect_interval", abstract: "Set the connect timeout per node in seconds (default 2).", aliases: ["connect_interval"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "seconds"))
    var arguments: [String] = []
}

struct DelConnectIntervalCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delconnect_interval", abstract: "Remove the connect_interval setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetFramingFormatCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setframing_format", abstract: "Set the framings in order of preference (default cbor,json).", aliases: ["framing_format"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "list"))
    var arguments: [String] = []
}

struct DelFramingFormatCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delframing_format", abstract: "Remove the framing_format setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetAuthOfferCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setauth_offer", abstract: "Set the auth methods this node sends (default tls_sha3_512,hmac_sha3_512).", aliases: ["auth_offer"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "list"))
    var arguments: [String] = []
}

struct DelAuthOfferCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delauth_offer", abstract: "Remove the auth_offer setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetAuthAcceptCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setauth_accept", abstract: "Set the auth methods this node accepts (default tls_sha3_512,hmac_sha3_512,tls_anon,cleartext).", aliases: ["auth_accept"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "list"))
    var arguments: [String] = []
}

struct DelAuthAcceptCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delauth_accept", abstract: "Remove the auth_accept setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetAutocorkCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setautocork", abstract: "Set write coalescing (default off).", aliases: ["autocork"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "boolean"))
    var arguments: [String] = []
}

struct DelAutocorkCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delautocork", abstract: "Remove the autocork setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetNodelayCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setnodelay", abstract: "Set TCP_NODELAY (default on).", aliases: ["nodelay"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "boolean"))
    var arguments: [String] = []
}

struct DelNodelayCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delnodelay", abstract: "Remove the nodelay setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}

struct SetSecureCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "setsecure", abstract: "Set refusing remote eval and function calls (default off).", aliases: ["secure"])
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The argument; anything after it is the next aemp command.", valueName: "boolean"))
    var arguments: [String] = []
}

struct DelSecureCommand: ChainedCommand {
    static let configuration = CommandConfiguration(
        commandName: "delsecure", abstract: "Remove the secure setting (inherit it again).")
    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("Further aemp commands to run after this one.", valueName: "next-command"))
    var arguments: [String] = []
}
