import AEMP
import AEMPCodecs
import ArgumentParser

/// The `aemp` command-line tool (Perl: `bin/aemp`): edits the rc file's profiles, runs a node, and
/// pokes a network (`snd`, `cal`, `mon`, `eval`, `nodes`, `sendfile`, `trace`).
@main
struct AEMPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aemp",
        abstract: "Run and configure AEMP nodes (Perl AnyEvent::MP compatible).",
        discussion: """
            Commands are Perl bin/aemp's. A command takes the arguments it needs and the rest is read \
            as the next command, so commands chain:
              aemp gensecret profile server binds '*:4040' nodeid server

            Arguments starting with [, { or " are JSON (aemp run binds '["*:4040"]'); a single argument \
            starting with [ is a JSON array that replaces all arguments.

            Configuration commands edit the global settings of the config file, or, after \
            `profile <name>`, that profile. The config file is $AEMP_RC, else \
            $XDG_CONFIG_HOME/aemp/config.json, else ~/.config/aemp/config.json; it uses the JSON layout \
            of Perl's ~/.perl-anyevent-mp, so AEMP_RC may point at a Perl rc file.

            `aemp run` without arguments starts an anonymous node on 127.0.0.1:4040 that is its own \
            seed, with a secret generated once and saved in the config file. The client commands (snd, \
            cal, mon, eval, nodes, sendfile, trace) use profile "aemp" of the config file (its secret and seeds; default \
            seed 127.0.0.1:4040) as a fresh anonymous node, or the configure arguments in \
            AEMP_CONFIG (a JSON object) when set.

            `aemp trace [<node>] [--json] [--timeout <seconds>]` prints every node reachable from <node> \
            (default: the seeds' database master) with its connections, marking Perl and Swift nodes, \
            global nodes, nodes in secure mode and unreachable nodes; it asks only what Perl nodes answer \
            too ('l family, time, eval of AnyEvent::MP::Kernel::up_nodes), each request for at most \
            --timeout seconds (default 5).

            `aemp run ... sendfile_dir <directory>` lets the node receive files below that directory: \
            `aemp sendfile <node> <path> [remote-path]` streams a file there over a data connection and \
            verifies its SHA-256. `data_priority background|normal|<0-19>` sets the priority of the \
            threads data connections run on (default background). Log lines go to standard error; \
            `aemp run ... log_level <level>` sets their level for a node (trace, debug, info, notice, \
            warning, error, critical; default info), and AEMP_LOG_LEVEL sets it for any command and wins \
            over log_level.

            `aemp run ... metrics <host:port>` serves Prometheus metrics; `aemp run ... dashboard \
            <host:port>` serves a live, read-only view of the network for a browser (the banner prints \
            its URL; on an address other than loopback the URL carries a random access token, required).
            """,
        subcommands: chainedCommands
    )

    /// The names and aliases of all subcommands.
    static var subcommandNames: Set<String> {
        var names: Set<String> = []
        for type in chainedCommands {
            names.insert(type.configuration.commandName ?? "")
            names.formUnion(type.configuration.aliases)
        }
        return names
    }

    /// Parses and runs a command line in the current ``CLIContext``.
    ///
    /// - Parameter arguments: the arguments without the program name.
    static func runCommandLine(_ arguments: [String]) async throws {
        if ArgumentRules.isWholeArray(arguments) {
            var chain = CommandChain(context: CLIContext.current)
            try await chain.execute(try ArgumentRules.wholeArray(arguments[0]))
            return
        }
        // After a command name every argument is a value, whatever it starts with (a PEM text's
        // "-----BEGIN", a negative number), as in Perl's bin/aemp; ArgumentParser would take those for
        // options. It still answers `aemp <command> --help` and everything before a command name.
        if let name = arguments.first, subcommandNames.contains(name),
            !(arguments.count > 1 && ["--help", "-h"].contains(arguments[1]))
        {
            try await runChain(arguments)
            return
        }
        var command = try parseAsRoot(arguments)
        if var command = command as? any AsyncParsableCommand {
            try await command.run()
        } else {
            try command.run()
        }
    }

    /// Runs `arguments` (command name first) through ``CommandChain`` after the per-argument JSON rule.
    static func runChain(_ arguments: [String]) async throws {
        let values = try [.text(arguments[0])] + ArgumentRules.values(Array(arguments.dropFirst()))
        var chain = CommandChain(context: CLIContext.current)
        try await chain.execute(values)
    }

    static func main() async {
        do {
            try await runCommandLine(Array(CommandLine.arguments.dropFirst()))
        } catch let error as CLIError {
            CLIContext.current.errorOutput("aemp: \(error.message)")
            exit(withError: ExitCode.failure)
        } catch let error as ConfigFileError {
            CLIContext.current.errorOutput("aemp: \(error)")
            exit(withError: ExitCode.failure)
        } catch {
            exit(withError: error)
        }
    }
}
