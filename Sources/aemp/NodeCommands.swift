#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import Logging
import NIOCore

/// The node commands `run`, `snd`, `cal`, `mon`, `eval`, `nodes` and `sendfile`: argument handling,
/// configuration resolution and output. The network part is the context's ``NodeBackend``.
enum NodeCommands {
    /// Perl bin/aemp's timeout for `snd`, `cal`, `eval` (and here `nodes`): 5 seconds.
    static let clientTimeout: Duration = .seconds(5)
    /// How long `sendfile` waits for the data connection (the whole DataConn rendezvous).
    static let sendFileConnectTimeout: Duration = .seconds(10)
    /// The `aemp run` setting that enables the sendfile receiver: the directory files go below.
    static let sendFileDirectoryKey = "sendfile_dir"
    /// The `aemp run` setting for the priority of the data-connection threads.
    static let dataPriorityKey = "data_priority"
    /// The `aemp run` setting that serves Prometheus metrics: `host:port`.
    static let metricsKey = "metrics"
    /// The `aemp run` setting that serves the live dashboard: `host:port`.
    static let dashboardKey = "dashboard"
    /// Settings of `aemp run` itself, not of the node's configuration (Perl `configure` knows none).
    static let runOnlyKeys: Set<String> = [sendFileDirectoryKey, dataPriorityKey, metricsKey, dashboardKey]

    // MARK: run

    /// What `aemp run` starts with.
    struct RunPlan: Sendable, Hashable {
        /// The resolved profile and node configuration.
        var resolved: ResolvedProfile
        /// The rc file consulted (`nil` with `norc`).
        var configPath: String?
        /// Whether the embedded default profile was used (no arguments).
        var usesEmbeddedDefaults: Bool
        /// Whether a new secret was generated and saved in the rc file.
        var generatedSecret: Bool
        /// The `sendfile_dir` setting: where `aemp sendfile` may write (`nil`: not enabled).
        var sendfileDirectory: String? = nil
        /// The `data_priority` setting (`nil`: the library's default, background priority).
        var dataPriority: DataThreadPriority? = nil
        /// The `metrics` setting: where to serve Prometheus metrics (`nil`: nowhere).
        var metricsHost: String? = nil
        var metricsPort: Int? = nil
        /// The `dashboard` setting: where to serve the live dashboard (`nil`: nowhere).
        var dashboardHost: String? = nil
        var dashboardPort: Int? = nil
    }

    /// Resolves `aemp run` arguments (Perl `configure` arguments; an odd count starts with the profile
    /// name). Without arguments, the embedded default profile (``ProfileSettings/runDefaults``)
    /// is used and, if no secret or certificate is configured, a random secret is generated and saved
    /// as a global setting in the rc file, so every later `aemp` command shares it. Arguments made
    /// only of `aemp run`'s own settings (`sendfile_dir <dir>`, `data_priority <p>`) also keep the
    /// embedded default profile.
    ///
    /// - Throws: ``CLIError`` for bad arguments, rc file errors and invalid values.
    static func runPlan(_ arguments: [Value], context: CLIContext) throws(CLIError) -> RunPlan {
        var arguments = arguments
        var runOnly: [(key: String, value: Value)] = []
        let keys = stride(from: 0, to: arguments.count, by: 2).map { arguments[$0].stringValue ?? "" }
        if !arguments.isEmpty, arguments.count.isMultiple(of: 2), keys.allSatisfy(runSettingKeys.contains) {
            runOnly = keys.enumerated().map { ($0.element, arguments[2 * $0.offset + 1]) }
            arguments = []
        }
        do {
            if arguments.isEmpty {
                let path = try context.configPath()
                var file = try ConfigFile.load(path: path)
                var resolved = try file.resolve(configureArguments: ProfileSettings.runDefaults, hostname: context.hostname)
                var generated = false
                if !resolved.configuration.canAuthenticate {
                    file.global["secret"] = .text(ProfileSettings.randomSecret())
                    try file.save(to: path)
                    resolved = try file.resolve(configureArguments: ProfileSettings.runDefaults, hostname: context.hostname)
                    generated = true
                }
                var settings = resolved.settings
                for (key, value) in runOnly { settings[key] = value }
                var plan = RunPlan(
                    resolved: resolved, configPath: path, usesEmbeddedDefaults: true, generatedSecret: generated,
                    sendfileDirectory: try sendfileDirectory(settings), dataPriority: try dataPriority(settings))
                (plan.metricsHost, plan.metricsPort) = try metricsAddress(settings)
                (plan.dashboardHost, plan.dashboardPort) = try dashboardAddress(settings)
                return plan
            }
            let settings = try ProfileSettings(configureArguments: arguments)
            let unknown = settings.unknownConfigureKeys.filter { !runSettingKeys.contains($0) }
            if !unknown.isEmpty {
                context.errorOutput("aemp: warning: ignoring unknown configure key(s): \(unknown.joined(separator: ", "))")
            }
            let norc = settings.isTrue("norc")
            let path = norc ? nil : try context.configPath()
            let file = try path.map { path throws(ConfigFileError) in try ConfigFile.load(path: path) } ?? ConfigFile()
            let resolved = try file.resolve(configureArguments: settings, hostname: context.hostname)
            if !resolved.configuration.canAuthenticate {
                context.errorOutput(
                    "aemp: warning: no secret and no certificate configured, so no other node can connect (see aemp gensecret)")
            }
            var plan = RunPlan(
                resolved: resolved, configPath: path, usesEmbeddedDefaults: false, generatedSecret: false,
                sendfileDirectory: try sendfileDirectory(resolved.settings), dataPriority: try dataPriority(resolved.settings))
            (plan.metricsHost, plan.metricsPort) = try metricsAddress(resolved.settings)
            (plan.dashboardHost, plan.dashboardPort) = try dashboardAddress(resolved.settings)
            return plan
        } catch let error as ConfigFileError {
            throw CLIError("run: \(error)")
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("run: \(error)")
        }
    }

    /// The `sendfile_dir` setting, checked: a string naming an existing directory.
    ///
    /// - Throws: ``CLIError`` for another value or a path that is not a directory.
    static func sendfileDirectory(_ settings: ProfileSettings) throws(CLIError) -> String? {
        guard let value = settings[sendFileDirectoryKey], !value.isNull else { return nil }
        guard let path = value.stringValue, !path.isEmpty else {
            throw CLIError("run: \(sendFileDirectoryKey) must be a directory path, got \(ArgumentRules.plain(value))")
        }
        var status = stat()
        guard stat(path, &status) == 0, (status.st_mode & S_IFMT) == S_IFDIR else {
            throw CLIError("run: \(sendFileDirectoryKey) \(path) is not an existing directory")
        }
        return path
    }

    /// The `data_priority` setting, checked: `background`, `normal` or a nice value 0…19 (a number
    /// or a string of digits); `nil` when absent.
    ///
    /// - Throws: ``CLIError`` for any other value.
    static func dataPriority(_ settings: ProfileSettings) throws(CLIError) -> DataThreadPriority? {
        guard let value = settings[dataPriorityKey], !value.isNull else { return nil }
        let text = ArgumentRules.plain(value)
        switch text {
        case "background": return .background
        case "normal": return .normal
        default:
            guard let nice = Int32(text), (0...19).contains(nice) else {
                throw CLIError("run: \(dataPriorityKey) must be background, normal or a nice value 0 to 19, got \(text)")
            }
            return .nice(nice)
        }
    }

    /// The `metrics` setting, checked: `host:port` (IPv6 in brackets, port 0 picks a free one);
    /// `(nil, nil)` when absent.
    ///
    /// - Throws: ``CLIError`` for anything else.
    static func metricsAddress(_ settings: ProfileSettings) throws(CLIError) -> (String?, Int?) {
        try listenAddress(settings, key: metricsKey, example: "127.0.0.1:9464")
    }

    /// The `dashboard` setting, checked like ``metricsAddress(_:)``; `(nil, nil)` when absent.
    ///
    /// - Throws: ``CLIError`` for anything but `host:port`.
    static func dashboardAddress(_ settings: ProfileSettings) throws(CLIError) -> (String?, Int?) {
        try listenAddress(settings, key: dashboardKey, example: "127.0.0.1:8080")
    }

    /// A `host:port` setting of `aemp run` (IPv6 in brackets, `*` or an empty host for every
    /// address, port 0 picks a free one).
    private static func listenAddress(_ settings: ProfileSettings, key: String, example: String) throws(CLIError) -> (String?, Int?) {
        guard let value = settings[key], !value.isNull else { return (nil, nil) }
        let text = ArgumentRules.plain(value)
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port)
        else {
            throw CLIError("run: \(key) must be host:port (e.g. \(example)), got \(text)")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty || host == "*" { host = "0.0.0.0" }
        return (host, port)
    }

    /// `aemp run configure_args...`.
    static func run(_ arguments: [Value], context: CLIContext) async throws {
        let plan = try runPlan(arguments, context: context)
        if plan.generatedSecret, let path = plan.configPath {
            context.output("aemp: generated a new shared secret and saved it in \(path)")
        }
        let logLevel = try effectiveLogLevel(arguments, plan: plan, context: context)
        var options = RunOptions(
            logLevel: logLevel.level, sendfileDirectory: plan.sendfileDirectory, dataPriority: plan.dataPriority)
        if let host = plan.metricsHost, let port = plan.metricsPort { options.metricsAddress = .init(host: host, port: port) }
        if let host = plan.dashboardHost, let port = plan.dashboardPort { options.dashboardAddress = .init(host: host, port: port) }
        try await context.backend.run(plan.resolved.configuration, options: options) { node in
            for line in banner(node: node, plan: plan, logLevel: logLevel) { context.output(line) }
        }
    }

    /// The banner's liveness line: how long a silent peer may stay up.
    static func livenessText(_ timeout: Duration) -> String {
        guard timeout > .zero else { return "off: only TCP notices lost peers (liveness_timeout 0)" }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let text = seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
        return "a peer silent for \(text) s is taken as lost (liveness_timeout)"
    }

    /// The text `aemp run` prints once its node listens: node ID, listener addresses, seeds, and how
    /// to talk to the node from a second terminal.
    static func banner(
        node: RunningNode, plan: RunPlan, logLevel: (level: Logger.Level, source: String) = (.info, "default")
    ) -> [String] {
        let id = node.nodeID.rawValue
        let configuration = plan.resolved.configuration
        var lines = [
            "aemp: node \(id) is running (profile \"\(plan.resolved.profileName)\")",
            "  listening on: \(node.listenerAddresses.isEmpty ? "(no listener)" : node.listenerAddresses.joined(separator: " "))",
            "  seeds:        \(configuration.seeds.isEmpty ? "(none)" : configuration.seeds.joined(separator: " "))",
        ]
        if let path = plan.configPath { lines.append("  config file:  \(path)") }
        lines.append("  sendfile:     " + (plan.sendfileDirectory.map { "receives files below \($0)" } ?? "off (enable with sendfile_dir <directory>)"))
        lines.append("  log level:    \(logLevel.level.rawValue) (\(logLevel.source)) on standard error")
        lines.append("  data threads: " + (plan.dataPriority ?? .background).description + " priority")
        lines.append("  liveness:     " + livenessText(configuration.livenessTimeout))
        lines.append(
            "  metrics:      "
                + (node.metricsAddress.map { "http://\($0)/metrics (Prometheus text format)" } ?? "off (serve them with metrics <host:port>)"))
        lines.append(
            "  dashboard:    "
                + (node.dashboardURL.map { url in
                    "\(url) (live view in a browser" + (url.contains("?token=") ? "; the token is required: not on loopback)" : ")")
                } ?? "off (serve it with dashboard <host:port>)"))
        if configuration.busyPoll > .zero {
            lines.append(
                "  busy poll:    \(configuration.busyPoll) after each message (busy_poll: lower latency, a core spins meanwhile)")
        }
        lines.append("  shutdown:     Ctrl-C or SIGTERM flushes queued messages for up to \(configuration.shutdownTimeout) (shutdown_timeout)")
        let examples = [
            ("aemp nodes", "the nodes that are up in the network"),
            ("aemp cal '\(id)#' time", "ask the node for its time"),
            ("aemp snd '\(id)#' devnull hello", "send a message to the node's own port"),
            ("aemp mon '\(id)#'", "wait until the node goes down"),
        ]
        let width = examples.map(\.0.count).max() ?? 0
        lines += ["", "Talk to it from a second terminal (same user, so the same config file and secret):"]
        for (command, comment) in examples {
            lines.append("  " + command + String(repeating: " ", count: width - command.count) + "   # " + comment)
        }
        if !plan.usesEmbeddedDefaults, let address = node.listenerAddresses.first {
            lines.append("If the config file's seeds do not lead to this node, prefix the commands with")
            lines.append("  AEMP_CONFIG='{\"seeds\":[\"\(address)\"]}'")
        }
        lines.append("Stop it with Ctrl-C (twice to exit at once).")
        return lines
    }

    // MARK: client commands

    /// The configuration of a client command (`snd`, `cal`, `mon`, `eval`, `nodes`).
    ///
    /// `AEMP_CONFIG`, when set, is a JSON object of `configure` arguments. The lookup uses profile
    /// `aemp` (unless `AEMP_CONFIG` names another) on top of ``ProfileSettings/clientDefaults``, so
    /// the rc file's secret and seeds apply. Unless `AEMP_CONFIG` sets them, the node ID is a fresh
    /// anonymous one and the node listens on an ephemeral loopback port.
    ///
    /// - Throws: ``CLIError`` for a malformed `AEMP_CONFIG`, rc file errors, or when neither a secret
    ///   nor a certificate is configured.
    static func clientConfiguration(command: String, context: CLIContext) throws(CLIError) -> ResolvedProfile {
        do {
            var arguments = ProfileSettings.clientDefaults
            var explicit = ProfileSettings()
            if let text = context.environment["AEMP_CONFIG"], !text.isEmpty {
                explicit = try environmentArguments(text)
                arguments = arguments.merging(explicit)
            }
            if !arguments.contains("profile") { arguments["profile"] = .text(ProfileSettings.clientProfileName) }
            let norc = arguments.isTrue("norc")
            let path = norc ? nil : try context.configPath()
            let file = try path.map { path throws(ConfigFileError) in try ConfigFile.load(path: path) } ?? ConfigFile()
            var resolved = try file.resolve(configureArguments: arguments, hostname: context.hostname)
            if !explicit.contains("nodeid") {
                resolved.settings["nodeid"] = ProfileSettings.clientNodeID
                resolved.configuration.nodeID = ProfileSettings.clientNodeID.stringValue
            }
            if !explicit.contains("binds") {
                resolved.settings["binds"] = ProfileSettings.clientBinds
                resolved.configuration.binds = ProfileSettings.clientBinds.arrayValue?.compactMap(\.stringValue) ?? []
            }
            guard resolved.configuration.canAuthenticate else {
                let place = path.map { " in \($0)" } ?? ""
                throw CLIError(
                    "\(command): no secret and no certificate configured\(place); run `aemp run` once (it saves one) or `aemp gensecret`")
            }
            return resolved
        } catch let error as ConfigFileError {
            throw CLIError("\(command): \(error)")
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(command): \(error)")
        }
    }

    /// Parses `AEMP_CONFIG`: a JSON object of configure arguments.
    static func environmentArguments(_ text: String) throws(CLIError) -> ProfileSettings {
        let value: Value
        do {
            value = try ConfigFile.parseJSON(ByteBuffer(string: text), path: "AEMP_CONFIG")
        } catch {
            throw CLIError("AEMP_CONFIG: \(error.reason)")
        }
        guard case .map(let pairs) = value else {
            throw CLIError("AEMP_CONFIG: expected a JSON object of configure arguments, like {\"seeds\":[\"127.0.0.1:4040\"]}")
        }
        return ProfileSettings(pairs.map { ($0.key.stringValue ?? "", $0.value) })
    }

    /// A port argument: `<nodeid>#<portname>` (the node port is `<nodeid>#`).
    static func port(_ value: Value?, command: String) throws(CLIError) -> PortID {
        guard let value else { throw CLIError("\(command): port ID missing") }
        guard let text = value.stringValue, let port = PortID(text) else {
            throw CLIError("\(command): \(ArgumentRules.plain(value)) is not a port ID (<nodeid>#<portname>; a node's own port is <nodeid>#)")
        }
        return port
    }

    /// A node argument: a node ID or any port ID on that node (Perl: `node_of`).
    static func node(_ value: Value?, command: String) throws(CLIError) -> NodeID {
        guard let value else { throw CLIError("\(command): node ID missing") }
        let text = value.stringValue ?? ""
        let nodePart = text.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        guard let node = NodeID(nodePart) else {
            throw CLIError("\(command): \(ArgumentRules.plain(value)) is not a node ID")
        }
        return node
    }

    /// `aemp snd <port> <args...>`: prints the confirmation (or kill reason) joined by spaces.
    static func send(_ arguments: [Value], context: CLIContext) async throws {
        let port = try port(arguments.first, command: "snd")
        let configuration = try clientConfiguration(command: "snd", context: context).configuration
        let reply = try await context.backend.send(configuration, to: port, message: Array(arguments.dropFirst()), timeout: clientTimeout)
        context.output(reply.map(ArgumentRules.plain).joined(separator: " "))
    }

    /// `aemp cal <port> <args...>`: prints the reply as JSON values separated by commas.
    static func call(_ arguments: [Value], context: CLIContext) async throws {
        let port = try port(arguments.first, command: "cal")
        let configuration = try clientConfiguration(command: "cal", context: context).configuration
        let reply = try await context.backend.call(configuration, port: port, message: Array(arguments.dropFirst()), timeout: clientTimeout)
        context.output(ArgumentRules.jsonList(reply))
    }

    /// `aemp mon <port>`: prints the kill reason joined by spaces once the port dies.
    static func monitor(_ port: Value?, context: CLIContext) async throws {
        let port = try self.port(port, command: "mon")
        let configuration = try clientConfiguration(command: "mon", context: context).configuration
        let reason = try await context.backend.monitor(configuration, port: port)
        context.output(reason.values.map(ArgumentRules.plain).joined(separator: " "))
    }

    /// `aemp eval <node> <expr...>`: joins the expression words with spaces, evaluates them on the
    /// node and prints the results as JSON values separated by commas; a remote error fails the command.
    static func evaluate(_ arguments: [Value], context: CLIContext) async throws {
        let node = try node(arguments.first, command: "eval")
        let code = arguments.dropFirst().map(ArgumentRules.plain).joined(separator: " ")
        let configuration = try clientConfiguration(command: "eval", context: context).configuration
        let reply = try await context.backend.evaluate(configuration, node: node, code: code, timeout: clientTimeout)
        let error = reply.first.map(ArgumentRules.plain) ?? ""
        guard error.isEmpty else {
            throw CLIError(([error] + reply.dropFirst().map(ArgumentRules.plain)).joined(separator: " "))
        }
        context.output(ArgumentRules.jsonList(Array(reply.dropFirst())))
    }

    /// `aemp sendfile <node> <path> [remote-path]`: sends a file to the node's sendfile receiver
    /// (default remote path: the file's base name), shows progress, and prints the verified result.
    static func sendFile(_ arguments: [Value], context: CLIContext) async throws {
        let node = try node(arguments.first, command: "sendfile")
        guard arguments.count >= 2 else { throw CLIError("sendfile: local file path missing (aemp sendfile <node> <path> [remote-path])") }
        guard arguments.count <= 3 else { throw CLIError("sendfile: too many arguments (aemp sendfile <node> <path> [remote-path])") }
        let path = ArgumentRules.plain(arguments[1])
        let remotePath = arguments.count == 3
            ? ArgumentRules.plain(arguments[2])
            : String(path.split(separator: "/").last ?? Substring(path))
        do {
            _ = try SendFile.components(of: remotePath)
        } catch {
            throw CLIError("sendfile: \(error.message)")
        }
        let configuration = try clientConfiguration(command: "sendfile", context: context).configuration
        let file = try SendFile.LocalFile.open(path)
        defer { file.closeFile() }
        let display = SendFile.ProgressDisplay(terminal: context.isTerminal, raw: context.rawOutput, line: context.output)
        let outcome = try await context.backend.sendFile(
            configuration, to: node, file: file, remotePath: remotePath, timeout: sendFileConnectTimeout,
            progress: { display.update($0) })
        let rate = SendFile.rate(SendFile.Progress(sent: outcome.bytes, total: outcome.bytes, elapsed: outcome.elapsed))
        context.output("sendfile: sent \(path) to \(node) as \(remotePath): \(outcome.bytes) bytes, \(rate), sha256 \(outcome.sha256) verified")
    }

    // MARK: trace

    /// What `aemp trace` was asked for.
    struct TraceRequest: Sendable, Hashable {
        /// The start node (`nil`: the database master).
        var start: NodeID?
        /// JSON instead of text.
        var json = false
        /// The limit of each request.
        var timeout: Duration = clientTimeout
    }

    /// Parses `aemp trace [<node>] [--json] [--timeout <seconds>]` (options anywhere).
    ///
    /// - Throws: ``CLIError`` for an unknown option, a bad timeout or more than one node.
    static func traceRequest(_ arguments: [Value]) throws(CLIError) -> TraceRequest {
        let usage = "(aemp trace [<node>] [--json] [--timeout <seconds>])"
        var request = TraceRequest()
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            let text = ArgumentRules.plain(argument)
            if text == "--json" {
                request.json = true
            } else if text == "--timeout" || text.hasPrefix("--timeout=") {
                let value = text == "--timeout" ? rest.popFirst().map(ArgumentRules.plain) : String(text.dropFirst(10))
                guard let value, let seconds = Double(value), seconds > 0, seconds <= 3600 else {
                    throw CLIError("trace: --timeout needs a number of seconds above 0 (up to 3600) \(usage)")
                }
                request.timeout = .milliseconds(Int64((seconds * 1000).rounded(.up)))
            } else if text.hasPrefix("-") {
                throw CLIError("trace: unknown option \(text) \(usage)")
            } else {
                guard request.start == nil else { throw CLIError("trace: more than one node given \(usage)") }
                request.start = try node(argument, command: "trace")
            }
        }
        return request
    }

    /// `aemp trace [<node>] [--json] [--timeout <seconds>]`: prints the nodes reachable from the
    /// node, one block each, and a summary (or one JSON object). Fails (exit status 1, after the
    /// output) when the start node itself did not answer.
    static func trace(_ arguments: [Value], context: CLIContext) async throws {
        let request = try traceRequest(arguments)
        let configuration = try clientConfiguration(command: "trace", context: context).configuration
        let trace = try await context.backend.trace(configuration, from: request.start, timeout: request.timeout)
        if request.json {
            context.output(try traceJSON(trace))
        } else {
            for line in traceText(trace) { context.output(line) }
        }
        if let first = trace.nodes.first, first.nodeID == trace.start, case .unreachable(let reason) = first.status {
            throw CLIError("trace: \(trace.start) is unreachable: \(reason)")
        }
    }

    /// The text form: one block per node, then a summary line.
    ///
    /// ```
    /// a  (swift, global)  reachable
    ///   -> b, c
    /// c  (perl)  reachable
    ///   connections unknown (secure mode)
    /// d  unreachable (connect timeout)
    ///   <- a
    ///
    /// 4 nodes: 3 reachable, 1 unreachable; 1 perl, 2 swift, 1 unknown; 1 global
    /// ```
    static func traceText(_ trace: NetworkTrace) -> [String] {
        var lines: [String] = []
        for node in trace.nodes {
            var tags: [String] = []
            if node.implementation != .unknown { tags.append(node.implementation.description) }
            if node.isGlobal { tags.append("global") }
            var head = node.nodeID.rawValue
            if !tags.isEmpty { head += "  (\(tags.joined(separator: ", ")))" }
            switch node.status {
            case .reachable: head += "  reachable"
            case .unreachable(let reason): head += "  unreachable (\(reason))"
            case .noListener: head += "  no listener (not asked)"
            }
            lines.append(head)
            switch node.connections {
            case .known(let peers)?:
                lines.append("  -> " + (peers.isEmpty ? "(none)" : peers.map(\.rawValue).joined(separator: ", ")))
            case .unknown(let reason)?:
                lines.append("  connections unknown (\(reason))")
            case nil:
                if !node.seenBy.isEmpty { lines.append("  <- " + node.seenBy.map(\.rawValue).joined(separator: ", ")) }
            }
        }
        lines.append("")
        lines.append(traceSummary(trace))
        return lines
    }

    /// `4 nodes: 3 reachable, 1 unreachable; 1 perl, 3 swift; 2 global`.
    static func traceSummary(_ trace: NetworkTrace) -> String {
        let nodes = trace.nodes
        func count(_ predicate: (TracedNode) -> Bool) -> Int { nodes.filter(predicate).count }
        let reachable = count { $0.status == .reachable }
        let noListener = count { $0.status == .noListener }
        let unreachable = nodes.count - reachable - noListener
        var status = ["\(reachable) reachable", "\(unreachable) unreachable"]
        if noListener > 0 { status.append("\(noListener) without listener") }
        let perl = count { $0.implementation == .perl }
        let swift = count { $0.implementation == .swift }
        let unknown = count { $0.implementation == .unknown }
        var kinds = ["\(perl) perl", "\(swift) swift"]
        let other = nodes.count - perl - swift - unknown
        if other > 0 { kinds.append("\(other) other") }
        if unknown > 0 { kinds.append("\(unknown) unknown") }
        let noun = nodes.count == 1 ? "node" : "nodes"
        return "\(nodes.count) \(noun): \(status.joined(separator: ", ")); \(kinds.joined(separator: ", ")); \(count(\.isGlobal)) global"
    }

    /// The JSON form: `{"start", "tracer", "nodes": [...], "summary": {...}}`; every node object has
    /// the same keys (`null` where a value is unknown).
    static func traceJSON(_ trace: NetworkTrace) throws(CLIError) -> String {
        func texts(_ nodes: [NodeID]) -> Value { .array(nodes.map { .text($0.rawValue) }) }
        let nodes: [Value] = trace.nodes.map { node in
            var status = "reachable"
            var reason: Value = .null
            switch node.status {
            case .reachable: break
            case .unreachable(let text):
                status = "unreachable"
                reason = .text(text)
            case .noListener: status = "no_listener"
            }
            var connections: Value = .null
            var connectionsUnknown: Value = .null
            switch node.connections {
            case .known(let peers)?: connections = texts(peers)
            case .unknown(let why)?: connectionsUnknown = .text(why)
            case nil: break
            }
            return .map([
                ("node", .text(node.nodeID.rawValue)),
                ("status", .text(status)),
                ("reason", reason),
                ("implementation", .text(implementationName(node.implementation))),
                ("provider", node.provider.map(Value.text) ?? .null),
                ("global", .bool(node.isGlobal)),
                ("listeners", node.listeners.map { .array($0.map(Value.text)) } ?? .null),
                ("connections", connections),
                ("connections_unknown", connectionsUnknown),
                ("seen_by", texts(node.seenBy)),
            ].map { (Value.text($0.0), $0.1) })
        }
        let all = trace.nodes
        func count(_ predicate: (TracedNode) -> Bool) -> Value { .int(Int64(all.filter(predicate).count)) }
        let summary: [(String, Value)] = [
            ("nodes", .int(Int64(all.count))),
            ("reachable", count { $0.status == .reachable }),
            ("unreachable", count { if case .unreachable = $0.status { true } else { false } }),
            ("no_listener", count { $0.status == .noListener }),
            ("perl", count { $0.implementation == .perl }),
            ("swift", count { $0.implementation == .swift }),
            ("other", count { if case .other = $0.implementation { true } else { false } }),
            ("unknown", count { $0.implementation == .unknown }),
            ("global", count(\.isGlobal)),
        ]
        let document: Value = .map([
            (.text("start"), .text(trace.start.rawValue)),
            (.text("tracer"), .text(trace.tracer.rawValue)),
            (.text("nodes"), .array(nodes)),
            (.text("summary"), .map(summary.map { (.text($0.0), $0.1) })),
        ])
        do {
            return try ConfigFile.renderJSON(document, pretty: true)
        } catch {
            throw CLIError("trace: \(error)")
        }
    }

    /// `swift`, `perl`, or `other` for an implementation in JSON (the provider is a key of its own).
    private static func implementationName(_ implementation: NodeImplementation) -> String {
        switch implementation {
        case .swift: "swift"
        case .perl: "perl"
        case .other: "other"
        case .unknown: "unknown"
        }
    }

    /// `aemp nodes`: prints the up nodes, one per line, sorted.
    static func nodes(context: CLIContext) async throws {
        let configuration = try clientConfiguration(command: "nodes", context: context).configuration
        let nodes = try await context.backend.upNodes(configuration, timeout: clientTimeout)
        for node in nodes.sorted() { context.output(node.rawValue) }
    }
}
