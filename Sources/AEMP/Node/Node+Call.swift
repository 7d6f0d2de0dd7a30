import AEMPCodecs
import NIOCore
import Synchronization

/// Why a ``Node/call(_:_:timeout:)`` got no reply.
public enum CallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No reply arrived in time.
    case timeout(Duration)
    /// The called port died (or its node was lost) before replying.
    case portDied(KillReason)
    /// The node was shut down.
    case nodeShutDown

    /// A readable explanation.
    public var description: String {
        switch self {
        case .timeout(let duration): "no reply within \(duration)"
        case .portDied(let reason): "the called port died: \(reason)"
        case .nodeShutDown: "the node was shut down"
        }
    }
}

extension Node {
    /// Sends `message` followed by a fresh reply port to `port`, and calls `callback` with the first
    /// message the reply port gets. Perl: `cal $port, @msg, $cb, $timeout`.
    ///
    /// The reply port is killed afterwards. On timeout, or when `port` dies first, `callback` gets the
    /// error instead (Perl calls the callback with no arguments then).
    /// - Parameters:
    ///   - port: the port to call.
    ///   - message: the request elements (the reply port ID is appended).
    ///   - timeout: how long to wait (Perl's default is 30 seconds).
    ///   - callback: gets the reply elements or the reason there is none; runs on the node's loop.
    public func call(
        _ port: PortID, _ message: [Value], timeout: Duration = .seconds(30),
        callback: @escaping @Sendable (Result<[Value], CallError>) -> Void
    ) {
        let replyName = names.withLock { $0.nextLocalName() }
        perform { core in
            guard !core.isShutDown else {
                callback(.failure(.nodeShutDown))
                return
            }
            let reply = PortID(node: core.nodeID, name: replyName)
            var finished = false
            var timer: Scheduled<Void>?
            var monitorKey: MonitorKey?
            let finish: (Result<[Value], CallError>) -> Void = { result in
                guard !finished else { return }
                finished = true
                timer?.cancel()
                if let monitorKey { core.cancel(monitorKey) }
                core.kill(name: replyName, reason: .normal)
                callback(result)
            }
            let loopFinish = NIOLoopBound(finish, eventLoop: core.eventLoop)
            core.createPort(name: replyName) { _, reply in loopFinish.value(.success(reply)) }
            monitorKey = core.monitor(port, .callback { reason in loopFinish.value(.failure(.portDied(reason))) })
            timer = core.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: timeout.timeAmount) {
                finish(.failure(.timeout(timeout)))
            }
            core.send(to: port, message + [.text(reply.description)])
        }
    }

    /// Sends `message` plus a reply port to `port` and returns the reply. Perl: `cal`.
    ///
    /// - Throws: ``CallError`` on timeout, when the port dies, or when the node shuts down.
    public func call(_ port: PortID, _ message: [Value], timeout: Duration = .seconds(30)) async throws(CallError) -> [Value] {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<[Value], CallError>, Never>) in
            call(port, message, timeout: timeout) { continuation.resume(returning: $0) }
        }
        return try result.get()
    }

    /// Sends `message` to `port` after a delay. Perl: `after $timeout, $port, @msg`.
    public func after(_ delay: Duration, send message: [Value], to port: PortID) {
        perform { core in
            core.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: delay.timeAmount) {
                core.send(to: port, message)
            }
        }
    }

    /// Runs `body` on the node's loop after a delay. Perl: `after $timeout, $cb`.
    public func after(_ delay: Duration, _ body: @escaping @Sendable () -> Void) {
        eventLoop.scheduleTask(in: delay.timeAmount) { body() }
    }
}
