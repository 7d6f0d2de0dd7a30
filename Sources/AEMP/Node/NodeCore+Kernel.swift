#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMPCodecs
import Logging

/// The failure of a remote evaluation, sent back as Perl's `$@`.
public struct EvalError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The error text.
    public var message: String

    /// Creates an error with its text.
    public init(_ message: String) {
        self.message = message
    }

    /// The error text.
    public var description: String { message }
}

extension NodeCore {
    /// The node-port tags the kernel itself handles (spec §5.2).
    static let kernelTags: Set<String> = ["mon1", "mon0", "kil0", "kil1", "snd", "can", "eval", "time", "devnull", ""]

    /// The function name of `spawn` (spec §5.2).
    static let spawnFunction = "AnyEvent::MP::_spawn"

    /// Handles a message to this node's node port: `[tag, args...]` (spec §5.2).
    ///
    /// Errors are only logged on this node, as Perl does; nothing is sent back.
    func handleNodeMessage(_ message: [Value], from source: NodeID) {
        let tag = message.first?.stringValue ?? ""
        let arguments = message.dropFirst()
        switch tag {
        case "":
            // `["", "", "shutdown", message]`: the peer is shutting down gracefully and will close
            // the connection once its queued messages are out (a no-op for Perl).
            if arguments.first?.stringValue == "shutdown", let link = remotes[source]?.link {
                link.peerShutdownMessage = arguments.dropFirst().first?.stringValue ?? "node shut down"
            }
            return
        case "devnull":
            return
        case "mon1":
            guard let name = arguments.first?.stringValue else { return malformed(tag, source) }
            if let port = port(named: name) {
                port.remoteWatchers.insert(source)
            } else {
                let reason = KillReason.noSuchPort(PortID(node: nodeID, name: name))
                sendNodeMessage(to: source, [.text("kil0"), .text(name)] + reason.values)
            }
        case "mon0":
            guard let name = arguments.first?.stringValue else { return malformed(tag, source) }
            port(named: name)?.remoteWatchers.remove(source)
        case "kil0":
            guard let name = arguments.first?.stringValue else { return malformed(tag, source) }
            remotes[source]?.fireMonitors(portName: name, KillReason(Array(arguments.dropFirst())))
        case "kil1":
            guard let name = arguments.first?.stringValue else { return malformed(tag, source) }
            kill(name: name, reason: KillReason(Array(arguments.dropFirst())))
        case "snd":
            guard let target = arguments.first?.stringValue.flatMap(PortID.init) else { return malformed(tag, source) }
            send(to: target, Array(arguments.dropFirst()), source: source)
        case "can":
            guard let asked = arguments.first?.stringValue else { return malformed(tag, source) }
            let known = Self.kernelTags.contains(asked) || functions.lookup(asked) != nil || isDatabaseTag(asked)
            reply(Array(arguments.dropFirst()), [.text(known ? "1" : "")], source: source)
        case "time":
            reply(Array(arguments), [.float(Self.secondsSinceEpoch())], source: source)
        case "eval":
            evaluate(Array(arguments), from: source)
        default:
            if isDatabaseTag(tag) {
                databaseReceive(tag: tag, Array(arguments), from: source)
            } else {
                callFunction(tag, Array(arguments), from: source)
            }
        }
    }

    private func malformed(_ tag: String, _ source: NodeID) {
        peerLogger(source).warning("error processing node message from \(source): malformed '\(tag)' message")
    }

    /// Sends `[@reply[1...], extra...]` to the port ID in `reply[0]` (Perl: `snd @reply, ...`).
    func reply(_ reply: [Value], _ extra: [Value], source: NodeID) {
        guard let first = reply.first else { return }
        guard let port = first.stringValue.flatMap(PortID.init) else {
            peerLogger(source).warning("error processing node message from \(source): reply port is not a port ID")
            return
        }
        send(to: port, Array(reply.dropFirst()) + extra)
    }

    /// Sends `["", tag, args...]` to a node's node port.
    func sendNodeMessage(to node: NodeID, _ message: [Value]) {
        send(to: PortID.nodePort(of: node), message)
    }

    // MARK: eval

    private func evaluate(_ arguments: [Value], from source: NodeID) {
        guard let code = arguments.first?.stringValue else { return malformed("eval", source) }
        let reply = Array(arguments.dropFirst())
        if configuration.secure {
            peerLogger(source).warning("error processing node message from \(source): remote execution not allowed")
            return
        }
        let result: Result<[Value], EvalError> =
            builtinEvaluation(code) ?? evaluator?(code)
            ?? .failure(EvalError("eval is not supported by this node (\(nodeID) is a Swift node)\n"))
        guard !reply.isEmpty else {
            if case .failure(let error) = result {
                peerLogger(source).warning("error processing node message from \(source): \(error.message)")
            }
            return
        }
        switch result {
        case .success(let values):
            self.reply(reply, [.text("")] + values, source: source)
        case .failure(let error):
            self.reply(reply, [.text(error.message)], source: source)
        }
    }

    /// The Perl expressions a Swift node answers itself, as a Perl node would, with or without an
    /// evaluator: `AnyEvent::MP::Kernel::up_nodes` (optionally with `()` and a trailing `;`), the
    /// IDs of the connected nodes, which `aemp trace` asks every node for; and, verbatim,
    /// ``Node/nodeSummaryExpression`` and ``Node/databaseFamiliesExpression`` (the dashboard's
    /// questions).
    func builtinEvaluation(_ code: String) -> Result<[Value], EvalError>? {
        switch code.trimmingSpaces() {
        case Node.nodeSummaryExpression:
            let figures = self.summary()
            return .success([.int(figures.startedAt), .int(Int64(figures.ports)), .int(Int64(figures.queuedBytes ?? 0))])
        case Node.databaseFamiliesExpression:
            return .success((database.globalDatabase?.merged.keys.sorted() ?? []).map { .text($0) })
        default:
            break
        }
        var expression = Substring(code.trimmingSpaces())
        if expression.hasSuffix(";") { expression = expression.dropLast() }
        if expression.hasSuffix("()") { expression = expression.dropLast(2) }
        switch expression {
        case "AnyEvent::MP::Kernel::up_nodes": return .success(upNodes.map { .text($0.rawValue) })
        default: return nil
        }
    }

    // MARK: functions

    /// Calls a registered function by name (Perl: `snd_to_func` on the receiving side, and `spawn`).
    private func callFunction(_ name: String, _ arguments: [Value], from source: NodeID) {
        if name == Self.spawnFunction {
            spawnLocally(arguments, from: source)
            return
        }
        guard let (function, builtin) = functions.lookup(name) else {
            peerLogger(source).warning("error processing node message from \(source): \(name): undefined function")
            return
        }
        if configuration.secure, !builtin {
            peerLogger(source).warning("error processing node message from \(source): remote execution not allowed (\(name))")
            return
        }
        do {
            try function(FunctionContext(node: facade, port: nil, sourceNode: source), arguments)
        } catch {
            peerLogger(source).warning("error processing node message from \(source): \(Self.errorText(error))")
        }
    }

    /// The receiving side of `spawn`: `[newportname, initfunc, initdata...]`.
    private func spawnLocally(_ arguments: [Value], from source: NodeID) {
        guard arguments.count >= 2, let name = arguments[0].stringValue, let functionName = arguments[1].stringValue
        else { return malformed(Self.spawnFunction, source) }
        guard port(named: name) == nil, !name.isEmpty else {
            peerLogger(source).warning("error processing node message from \(source): spawn: port \(name) exists")
            return
        }
        createPort(name: name, callback: nil)
        let port = PortID(node: nodeID, name: name)
        guard let (function, builtin) = functions.lookup(functionName) else {
            kill(name: name, reason: .die("\(functionName): undefined function"))
            return
        }
        if configuration.secure, !builtin {
            kill(name: name, reason: .die("remote execution not allowed"))
            return
        }
        runInPort(name) {
            try function(FunctionContext(node: facade, port: port, sourceNode: source), Array(arguments.dropFirst(2)))
        }
    }
}

extension NodeCore {
    /// The wall-clock time in seconds since 1970 (Perl: `AE::time`), for the kernel's `time`
    /// request; read from the system clock so that the library needs no Foundation.
    static func secondsSinceEpoch() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
