#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import AEMPDataConn
import AEMPHandle
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals
import Synchronization

/// A started node, as `aemp run` announces it.
struct RunningNode: Sendable, Hashable {
    /// The node's ID (Perl: `$NODE`).
    var nodeID: NodeID
    /// The concrete listener addresses, `ip:port` (Perl: `$LISTENER`).
    var listenerAddresses: [String]
    /// Where the Prometheus endpoint listens (`ip:port`), when `metrics` is set.
    var metricsAddress: String? = nil
    /// The URL of the live dashboard (with its access token, if it needs one), when `dashboard` is set.
    var dashboardURL: String? = nil
}

/// What `aemp run` adds to a node beyond its configuration.
struct RunOptions: Sendable, Hashable {
    /// The level of the node's log lines on standard error (`$AEMP_LOG_LEVEL`, else `log_level`,
    /// else `info`; see ``NodeCommands/effectiveLogLevel(_:plan:context:)``).
    var logLevel: Logger.Level = .info
    /// The directory `aemp sendfile` may write below (`sendfile_dir`); `nil`: receiving is off.
    var sendfileDirectory: String?
    /// The priority of the threads data connections run on (`data_priority`); `nil`: the library's
    /// default group (background priority).
    var dataPriority: DataThreadPriority? = nil
    /// Where to serve Prometheus metrics (`metrics`, `host:port`); `nil`: no endpoint.
    var metricsAddress: HostPort? = nil
    /// Where to serve the live dashboard (`dashboard`, `host:port`); `nil`: no dashboard.
    var dashboardAddress: HostPort? = nil

    /// A host and a port to listen on.
    struct HostPort: Sendable, Hashable {
        var host: String
        var port: Int
    }
}

/// The node-dependent half of the node commands. The command layer resolves the configuration,
/// parses and checks the arguments and prints the results; a backend only talks to the network.
///
/// ``LiveNodeBackend`` implements it with `Node`; the tests use recording stand-ins. Client methods
/// start their own short-lived node (anonymous ID, ephemeral loopback listener unless `AEMP_CONFIG`
/// said otherwise), do their one job and shut the node down.
protocol NodeBackend: Sendable {
    /// `aemp run`: starts a node, calls `started` once it listens, then runs until the process is
    /// interrupted (SIGINT/SIGTERM) and shuts the node down. Perl: `configure` + the event loop.
    func run(_ configuration: NodeConfiguration, options: RunOptions, started: @escaping @Sendable (RunningNode) -> Void)
        async throws

    /// `aemp snd <port> <args...>`: sends `message` to `port`, then makes sure it reached the port's
    /// node by sending `["snd", <reply port>, "message sent successfully"]` to that node's node port
    /// while monitoring `port`, and returns whatever arrives first (the reply message, or the kill
    /// reason's values if the monitor fires). Perl gives up after 5 s (`timeout`); throw then.
    func send(_ configuration: NodeConfiguration, to port: PortID, message: [Value], timeout: Duration) async throws -> [Value]

    /// `aemp cal <port> <args...>`: `cal port, @message` and returns the reply message (without the
    /// reply port). Throws on timeout or when the port's monitor fires.
    func call(_ configuration: NodeConfiguration, port: PortID, message: [Value], timeout: Duration) async throws -> [Value]

    /// `aemp mon <port>`: monitors `port` and returns the kill reason when it fires (no timeout).
    /// For a node port (`<node>#`) it also connects to the node, so a lost or impossible connection
    /// fires the monitor.
    func monitor(_ configuration: NodeConfiguration, port: PortID) async throws -> KillReason

    /// `aemp eval <node> <expr...>`: `eval_on node, code, <reply port>` and returns the reply after the
    /// reply port: `[error text (empty on success), results...]`. Throws on timeout or node down.
    func evaluate(_ configuration: NodeConfiguration, node: NodeID, code: String, timeout: Duration) async throws -> [Value]

    /// `aemp nodes`: joins the network through its seeds and returns the up nodes as the seeds see
    /// them (the nodes with listeners in the global database, plus this node's own up nodes) once
    /// the seed connection is up, excluding this client node itself. Throws on timeout.
    func upNodes(_ configuration: NodeConfiguration, timeout: Duration) async throws -> [NodeID]

    /// `aemp trace [<node>]`: joins the network through its seeds, waits for a database master (at
    /// most `timeout`), then traces the network from `start` (default: that master) with `timeout`
    /// per request (``AEMP/Node/traceNetwork(from:timeout:limit:)``). Throws when no seed answers.
    func trace(_ configuration: NodeConfiguration, from start: NodeID?, timeout: Duration) async throws -> NetworkTrace

    /// `aemp sendfile <node> <path> [remote-path]`: streams `file` over a DataConn to the
    /// `aemp::sendfile` receiver of `node`, reporting progress, and returns the checksums.
    func sendFile(
        _ configuration: NodeConfiguration, to node: NodeID, file: SendFile.LocalFile, remotePath: String,
        timeout: Duration, progress: @escaping @Sendable (SendFile.Progress) -> Void
    ) async throws -> SendFile.Outcome
}

/// The backend the `aemp` executable uses.
let liveNodeBackend: any NodeBackend = LiveNodeBackend()

/// The node backend built on ``Node``. Log lines go to standard error; their level is, for `aemp
/// run`, ``RunOptions/logLevel``, and for clients `$AEMP_LOG_LEVEL` (`trace` … `critical`), else
/// `notice`.
struct LiveNodeBackend: NodeBackend {
    /// A logger writing to standard error at `level`.
    static func logger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "aemp", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = level
        return logger
    }

    /// A logger writing to standard error at `$AEMP_LOG_LEVEL`, else at `level`.
    static func logger(defaultLevel level: Logger.Level) -> Logger {
        var logger = Logger(label: "aemp", factory: { StreamLogHandler.standardError(label: $0) })
        if let text = getenv("AEMP_LOG_LEVEL").map({ String(cString: $0) }), let chosen = Logger.Level(rawValue: text.lowercased()) {
            logger.logLevel = chosen
        } else {
            logger.logLevel = level
        }
        return logger
    }

    func run(_ configuration: NodeConfiguration, options: RunOptions, started: @escaping @Sendable (RunningNode) -> Void)
        async throws
    {
        let logger = Self.logger(level: options.logLevel)
        let node: Node
        var dataGroup: (any EventLoopGroup)?
        do {
            if let priority = options.dataPriority { dataGroup = try await Node.makeDataGroup(priority: priority) }
            node = try await Node.start(configuration, dataGroup: dataGroup, logger: logger)
        } catch {
            try? await dataGroup?.shutdownGracefully()
            throw CLIError("run: \(error)")
        }
        let receiver = SendFile.Receiver(directory: options.sendfileDirectory, logger: logger)
        node.registerDataConnFunction(SendFile.functionName) { context, arguments, handle in
            receiver.accept(context, arguments, handle)
        }
        var services: [any Service] = [node]
        var running = RunningNode(nodeID: node.nodeID, listenerAddresses: node.listenerAddresses)
        if let address = options.metricsAddress {
            do {
                let registry = PrometheusCollectorRegistry()
                MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
                let endpoint = try await MetricsEndpoint.start(
                    host: address.host, port: address.port, node: node, registry: registry, logger: logger)
                services.append(endpoint)
                running.metricsAddress = endpoint.address
            } catch {
                await node.shutdown()
                try? await dataGroup?.shutdownGracefully()
                throw CLIError("run: cannot serve metrics on \(address.host):\(address.port): \(error)")
            }
        }
        if let address = options.dashboardAddress {
            do {
                let dashboard = try await DashboardEndpoint.start(host: address.host, port: address.port, node: node, logger: logger)
                services.append(dashboard)
                running.dashboardURL = dashboard.url
            } catch {
                for case let endpoint as MetricsEndpoint in services { await endpoint.close() }
                await node.shutdown()
                try? await dataGroup?.shutdownGracefully()
                throw CLIError("run: cannot serve the dashboard on \(address.host):\(address.port): \(error)")
            }
        }
        // The node, the metrics endpoint and the dashboard as a service group: the first SIGINT or SIGTERM shuts
        // them down gracefully (the endpoints first, then the node, which flushes what is queued),
        // a second one ends the process at once.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }, logger: logger))
        started(running)
        // One persistent watcher for both signals (a second dispatch source for a signal after the
        // first was cancelled would never fire on Linux).
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
        let watcher = Task {
            var received = 0
            for await signal in signals {
                received += 1
                if received == 1 {
                    logger.notice(
                        "\(signal) received: shutting down gracefully (up to \(node.configuration.shutdownTimeout) to flush queued messages; send it again to exit at once)"
                    )
                    await group.triggerGracefulShutdown()
                } else {
                    logger.warning("\(signal) received again: exiting at once, without flushing")
                    exit(1)
                }
            }
        }
        try await group.run()
        watcher.cancel()
        try? await dataGroup?.shutdownGracefully()
    }

    /// Starts a client node, runs `body` with it and shuts it down, also when `body` throws.
    private func withClientNode<T: Sendable>(
        _ command: String, _ configuration: NodeConfiguration, _ body: (Node) async throws -> T
    ) async throws -> T {
        let node: Node
        do {
            node = try await Node.start(configuration, logger: Self.logger(defaultLevel: .notice))
        } catch {
            throw CLIError("\(command): \(error)")
        }
        do {
            let result = try await body(node)
            await node.shutdown()
            return result
        } catch {
            await node.shutdown()
            throw error
        }
    }

    func send(_ configuration: NodeConfiguration, to port: PortID, message: [Value], timeout: Duration) async throws -> [Value] {
        try await withClientNode("snd", configuration) { node in
            let first = FirstOf<[Value]>()
            let outcome = await first.wait(node: node, timeout: timeout) { finish in
                let reply = node.port { _, message in finish(message) }
                node.send(port, message)
                let monitor = node.monitor(port) { reason in finish(reason.values) }
                node.send(PortID.nodePort(of: port.node), [.text("snd"), .text(reply.description), .text("message sent successfully")])
                return { monitor.cancel(); node.kill(reply) }
            }
            guard let outcome else { throw CLIError("snd: no confirmation from \(port.node) within \(Self.seconds(timeout))") }
            return outcome
        }
    }

    func call(_ configuration: NodeConfiguration, port: PortID, message: [Value], timeout: Duration) async throws -> [Value] {
        try await withClientNode("cal", configuration) { node in
            let result: Result<[Value], CallError>
            do throws(CallError) {
                result = .success(try await node.call(port, message, timeout: timeout))
            } catch {
                result = .failure(error)
            }
            switch result {
            case .success(let reply):
                return reply
            case .failure(.timeout):
                throw CLIError("cal: no reply from \(port) within \(Self.seconds(timeout))")
            case .failure(.portDied(let reason)):
                throw CLIError("cal: \(port) died: \(Self.text(reason))")
            case .failure(.nodeShutDown):
                throw CLIError("cal: the node was shut down")
            }
        }
    }

    func monitor(_ configuration: NodeConfiguration, port: PortID) async throws -> KillReason {
        try await withClientNode("mon", configuration) { node in
            let first = FirstOf<KillReason>()
            let reason = await first.wait(node: node, timeout: nil) { finish in
                let monitor = node.monitor(port) { reason in finish(reason) }
                // Monitoring a node port opens no connection (spec §5.4); a message to the node's
                // `devnull` does, so `aemp mon '<node>#'` sees the node go down (or never come up).
                if port.name.isEmpty { node.send(port, [.text("devnull")]) }
                return { monitor.cancel() }
            }
            return reason ?? .normal
        }
    }

    func evaluate(_ configuration: NodeConfiguration, node target: NodeID, code: String, timeout: Duration) async throws -> [Value] {
        try await withClientNode("eval", configuration) { node in
            let first = FirstOf<Result<[Value], CLIError>>()
            let outcome = await first.wait(node: node, timeout: timeout) { finish in
                let reply = node.port { _, message in finish(.success(message)) }
                let monitor = node.monitor(PortID.nodePort(of: target)) { reason in
                    finish(.failure(CLIError("eval: \(target) is down: \(Self.text(reason))")))
                }
                node.evalOn(target, code, reply: [.text(reply.description)])
                return { monitor.cancel(); node.kill(reply) }
            }
            guard let outcome else { throw CLIError("eval: no reply from \(target) within \(Self.seconds(timeout))") }
            return try outcome.get()
        }
    }

    func upNodes(_ configuration: NodeConfiguration, timeout: Duration) async throws -> [NodeID] {
        guard !configuration.seeds.isEmpty else { throw CLIError("nodes: no seeds configured (aemp setseeds host:port)") }
        return try await withClientNode("nodes", configuration) { node in
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            var up = await node.upNodes()
            while up.isEmpty {
                guard clock.now < deadline else {
                    throw CLIError(
                        "nodes: no seed connection within \(Self.seconds(timeout)) (seeds: \(configuration.seeds.joined(separator: " ")))")
                }
                try await Task.sleep(for: .milliseconds(20))
                up = await node.upNodes()
            }
            var result = Set(up)
            // The seeds know every node with a listener (database family 'l).
            let remaining = max(deadline - clock.now, .milliseconds(200))
            if let keys = try? await node.dbKeys(DatabaseFamilyName.listeners, timeout: remaining) {
                result.formUnion(keys.compactMap(NodeID.init))
            }
            result.remove(node.nodeID)
            return Array(result)
        }
    }

    func trace(_ configuration: NodeConfiguration, from start: NodeID?, timeout: Duration) async throws -> NetworkTrace {
        guard !configuration.seeds.isEmpty else { throw CLIError("trace: no seeds configured (aemp setseeds host:port)") }
        return try await withClientNode("trace", configuration) { node in
            let clock = ContinuousClock()
            let deadline = clock.now + timeout
            var master = await node.databaseMaster()
            while master == nil {
                guard clock.now < deadline else {
                    throw CLIError(
                        "trace: no seed connection within \(Self.seconds(timeout)) (seeds: \(configuration.seeds.joined(separator: " ")))")
                }
                try await Task.sleep(for: .milliseconds(20))
                master = await node.databaseMaster()
            }
            return await node.traceNetwork(from: start ?? master!, timeout: timeout)
        }
    }

    func sendFile(
        _ configuration: NodeConfiguration, to target: NodeID, file: SendFile.LocalFile, remotePath: String,
        timeout: Duration, progress: @escaping @Sendable (SendFile.Progress) -> Void
    ) async throws -> SendFile.Outcome {
        try await withClientNode("sendfile", configuration) { node in
            let handle: Handle
            do {
                handle = try await node.dataConnection(
                    to: target.rawValue, timeout: timeout, function: SendFile.functionName,
                    arguments: [.text(remotePath), .int(Int64(file.size))])
            } catch {
                throw CLIError("sendfile: cannot open a data connection to \(target): \(error)")
            }
            return try await SendFile.send(file, remotePath: remotePath, to: target, over: handle, progress: progress)
        }
    }

    /// `5 seconds`, `1.5 seconds`.
    static func seconds(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let value = attoseconds == 0 ? String(seconds) : String(Double(seconds) + Double(attoseconds) / 1e18)
        return value == "1" ? "1 second" : "\(value) seconds"
    }

    /// A kill reason's values joined by spaces, as `aemp mon` prints them.
    static func text(_ reason: KillReason) -> String {
        reason.values.map(ArgumentRules.plain).joined(separator: " ")
    }
}

/// Waits for the first of several asynchronous outcomes (a reply, a monitor, a timeout).
final class FirstOf<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T?, Never>?
        var done = false
        var cleanup: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    /// Runs `start` with a `finish` function and waits until `finish` is called or `timeout` passes
    /// (`nil` when it passed). `start` returns the cleanup to run afterwards (cancel monitors, kill
    /// reply ports); it keeps what it captured alive until then.
    func wait(
        node: Node, timeout: Duration?,
        _ start: (@escaping @Sendable (T) -> Void) -> @Sendable () -> Void
    ) async -> T? {
        await withCheckedContinuation { (continuation: CheckedContinuation<T?, Never>) in
            state.withLock { $0.continuation = continuation }
            let cleanup = start { [self] value in finish(value) }
            let runNow = state.withLock { state -> Bool in
                if state.done { return true }
                state.cleanup = cleanup
                return false
            }
            if runNow { cleanup() }
            if let timeout {
                node.after(timeout) { [self] in finish(nil) }
            }
        }
    }

    private func finish(_ value: T?) {
        let (continuation, cleanup) = state.withLock { state -> (CheckedContinuation<T?, Never>?, (@Sendable () -> Void)?) in
            guard !state.done else { return (nil, nil) }
            state.done = true
            defer { state.continuation = nil; state.cleanup = nil }
            return (state.continuation, state.cleanup)
        }
        cleanup?()
        continuation?.resume(returning: value)
    }
}
