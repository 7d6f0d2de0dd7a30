import ArgumentParser

/// The `aemp` command-line tool (Perl: `bin/aemp`).
///
/// Subcommands arrive with the node layer; until then the tool prints its usage.
@main
struct AEMPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aemp",
        abstract: "Run and inspect AEMP nodes (AnyEvent::MP compatible).",
        discussion: """
            swift-aemp implements the AEMP node network of Perl's AnyEvent::MP family.
            The node commands (run, profiles, secrets, seeds, sendfile) land with the node layer.
            """
    )
}
