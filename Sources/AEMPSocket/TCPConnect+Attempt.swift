import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The state machine behind one `tcpConnect`: resolve, then try each target in turn.
///
/// Confined to its event loop (reached through a `NIOLoopBoundBox`); every method runs there.
final class TCPConnector {
    /// Where the targets come from.
    enum Targets: Sendable {
        case resolve(host: String, service: String, resolver: DNSResolver)
        case given([ConnectTarget])
    }

    private struct Attempt {
        let number: Int
        let target: ConnectTarget
        var channel: (any Channel)?
        var timer: Scheduled<Void>?
    }

    private enum State {
        case starting
        /// Between two attempts (the previous one was abandoned, the next not started yet).
        case between
        case resolving(Task<Void, Never>)
        case connecting(Attempt)
        case connected(Attempt)
        case finished
    }

    /// NIO's own connect timeout, set far out: the attempt timer of this class decides.
    private static let backstopTimeout: TimeAmount = .hours(24 * 365)

    let eventLoop: any EventLoop
    private let prepare: TCPConnectPrepare?
    private let connect: @Sendable (TCPConnectOutcome) -> Void
    private let cancelled: TCPLockedBox<Bool>
    /// The box this connector lives in, for the closures it hands to NIO (weak: the box owns the connector).
    private weak var box: NIOLoopBoundBox<TCPConnector>?
    private var state = State.starting
    private var targets: [ConnectTarget] = []
    private var nextTarget = 0
    private var attemptCount = 0
    private var failures: [TCPConnectAttemptFailure] = []
    private var label = ""

    private init(
        eventLoop: any EventLoop,
        prepare: TCPConnectPrepare?,
        connect: @escaping @Sendable (TCPConnectOutcome) -> Void,
        cancelled: TCPLockedBox<Bool>
    ) {
        self.eventLoop = eventLoop
        self.prepare = prepare
        self.connect = connect
        self.cancelled = cancelled
    }

    /// Creates a connector on `eventLoop`, starts it on the next loop iteration and returns its guard.
    static func start(
        targets: Targets,
        on eventLoop: any EventLoop,
        prepare: TCPConnectPrepare?,
        connect: @escaping @Sendable (TCPConnectOutcome) -> Void
    ) -> TCPConnectGuard {
        let cancelled = TCPLockedBox(false)
        let box = NIOLoopBoundBox.makeBoxSendingValue(
            TCPConnector(eventLoop: eventLoop, prepare: prepare, connect: connect, cancelled: cancelled),
            as: TCPConnector.self,
            eventLoop: eventLoop
        )
        // Never call back before the caller holds the guard: always start from a fresh loop iteration.
        eventLoop.execute {
            let connector = box.value
            connector.box = box
            connector.begin(targets)
        }
        return TCPConnectGuard(connector: box, cancelled: cancelled)
    }

    private var isCancelled: Bool { cancelled.withLock { $0 } }

    private func begin(_ source: Targets) {
        guard case .starting = state, let box else { return }
        switch source {
        case .given(let list):
            label = list.map { "\($0.perlHost) \($0.perlService)" }.joined(separator: ", ")
            targets = list
            startNextAttempt()
        case .resolve(let host, let service, let resolver):
            label = "\(host) \(service)"
            let task = Task {
                let result: Result<[ConnectTarget], SocketError>
                do throws(SocketError) {
                    result = .success(try await resolveConnectTargets(host: host, service: service, resolver: resolver))
                } catch {
                    result = .failure(error)
                }
                box.eventLoop.execute { box.value.resolved(result) }
            }
            state = .resolving(task)
        }
    }

    private func resolved(_ result: Result<[ConnectTarget], SocketError>) {
        guard case .resolving = state else { return }
        switch result {
        case .success(let list):
            targets = list
            startNextAttempt()
        case .failure(let error):
            finish(.failed(error))
        }
    }

    /// Starts the next target, skipping targets that cannot even be expressed as a socket address.
    private func startNextAttempt() {
        guard let box, !isCancelled else {
            state = .finished
            return
        }
        while nextTarget < targets.count {
            let target = targets[nextTarget]
            nextTarget += 1
            attemptCount += 1
            let number = attemptCount
            let address: SocketAddress
            do {
                address = try SocketAddress(target)
            } catch {
                record(target, error)
                continue
            }
            guard let bootstrap = ClientBootstrap(validatingGroup: eventLoop) else {
                let message = "tcpConnect needs a NIOPosix event loop, not \(eventLoop)"
                finish(.failed(SocketError(.invalidArgument, message)))
                return
            }
            state = .connecting(Attempt(number: number, target: target))
            bootstrap
                .channelOption(.autoRead, value: false)
                .channelOption(.tcpOption(.tcp_nodelay), value: 0)
                .connectTimeout(Self.backstopTimeout)
                .channelInitializer { channel in
                    box.value.prepareAttempt(number, channel: channel)
                }
                .connect(to: address)
                .hop(to: eventLoop)
                .assumeIsolated()
                .whenComplete { result in
                    self.attemptFinished(number, result)
                }
            return
        }
        finishFailed()
    }

    /// Runs `prepare` with the fresh channel and arms the attempt timer.
    private func prepareAttempt(_ number: Int, channel: any Channel) -> EventLoopFuture<Void> {
        guard case .connecting(var attempt) = state, attempt.number == number else {
            return eventLoop.makeFailedFuture(SocketError(.cancelled, "connect attempt abandoned"))
        }
        attempt.channel = channel
        state = .connecting(attempt)
        var timeout = TCPConnectGuard.defaultAttemptTimeout
        if let prepare {
            do {
                if let chosen = try prepare(channel), chosen > .zero { timeout = chosen }
            } catch {
                return eventLoop.makeFailedFuture(error)
            }
        }
        // `prepare` may have cancelled (or dropped the guard): look again.
        guard case .connecting(var current) = state, current.number == number else {
            return eventLoop.makeFailedFuture(SocketError(.cancelled, "connect attempt abandoned"))
        }
        current.timer = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            self.attemptTimedOut(number, after: timeout)
        }
        state = .connecting(current)
        return eventLoop.makeSucceededVoidFuture()
    }

    private func attemptTimedOut(_ number: Int, after timeout: TimeAmount) {
        guard case .connecting(let attempt) = state, attempt.number == number else { return }
        // Leave the attempt before closing: the close fails the connect future at once, and that late result
        // must find the attempt abandoned.
        state = .between
        attempt.channel?.close(promise: nil)
        let milliseconds = timeout.nanoseconds / 1_000_000
        record(
            attempt.target,
            SocketError(.timedOut, "\(Self.place(attempt.target)): timed out after \(milliseconds) ms")
        )
        startNextAttempt()
    }

    private func attemptFinished(_ number: Int, _ result: Result<any Channel, any Error>) {
        guard case .connecting(var attempt) = state, attempt.number == number else {
            // A late result of an abandoned attempt (timed out or cancelled): never leak its socket.
            if case .success(let channel) = result { channel.close(promise: nil) }
            return
        }
        attempt.timer?.cancel()
        attempt.timer = nil
        switch result {
        case .success(let channel):
            if isCancelled {
                channel.close(promise: nil)
                state = .finished
                return
            }
            attempt.channel = channel
            state = .connected(attempt)
            let peer = channel.remoteAddress.flatMap(ConnectTarget.init) ?? attempt.target
            guard let box else {
                // Nobody can reach this connector any more (no guard, no retry): nobody would own the socket.
                channel.close(promise: nil)
                state = .finished
                return
            }
            let retry = TCPConnectRetry(connector: box, attempt: number, channel: channel)
            connect(.connected(TCPConnection(channel: channel, peer: peer), retry: retry))
        case .failure(let error):
            record(attempt.target, error)
            startNextAttempt()
        }
    }

    /// `retry` from the callback: reject attempt `number`'s connection and go on with the next target.
    func retry(attempt number: Int, channel: any Channel) {
        channel.close(promise: nil)
        guard case .connected(let attempt) = state, attempt.number == number else { return }
        record(
            attempt.target,
            SocketError(
                SocketError.Code(errno: ECONNABORTED),
                "\(Self.place(attempt.target)): connection rejected by retry"
            )
        )
        startNextAttempt()
    }

    /// The guard was cancelled or dropped.
    func cancel() {
        let previous = state
        state = .finished
        switch previous {
        case .starting, .between, .finished, .connected:
            // After a success the socket belongs to the callback; leave it alone.
            break
        case .resolving(let task):
            task.cancel()
        case .connecting(let attempt):
            attempt.timer?.cancel()
            attempt.channel?.close(promise: nil)
        }
    }

    private func record(_ target: ConnectTarget, _ error: any Error) {
        failures.append(TCPConnectAttemptFailure(target: target, error: Self.socketError(error, connecting: target)))
    }

    private func finishFailed() {
        let error: SocketError
        if let last = failures.last {
            error = SocketError(
                last.error.code,
                "cannot connect to \(label): \(last.error.message)",
                underlying: TCPConnectFailures(attempts: failures)
            )
        } else {
            error = SocketError(.noSuchAddress, "cannot connect to \(label): no address to try")
        }
        finish(.failed(error))
    }

    private func finish(_ outcome: TCPConnectOutcome) {
        state = .finished
        guard !isCancelled else { return }
        connect(outcome)
    }

    private static func place(_ target: ConnectTarget) -> String {
        switch target {
        case .ip(let address, let port):
            address.family == .ipv6
                ? "connect to [\(formatIP(address))]:\(port)" : "connect to \(formatIP(address)):\(port)"
        case .unix(let path):
            "connect to unix/ \(path)"
        }
    }

    /// Maps what NIO (or `prepare`) threw into an errno-style error naming the target.
    static func socketError(_ error: any Error, connecting target: ConnectTarget) -> SocketError {
        switch error {
        case let error as SocketError:
            return error
        case let error as IOError:
            let code = SocketError.Code(errno: error.errnoCode)
            return SocketError(code, "\(place(target)): \(code.systemDescription)", underlying: error)
        case ChannelError.connectTimeout(let timeout):
            return SocketError(
                .timedOut,
                "\(place(target)): timed out after \(timeout.nanoseconds / 1_000_000) ms",
                underlying: error
            )
        default:
            return SocketError(SocketError.Code(errno: EIO), "\(place(target)): \(error)", underlying: error)
        }
    }
}
