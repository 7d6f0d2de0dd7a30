#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Logging
import Synchronization

/// Waiting for Ctrl-C (SIGINT) or SIGTERM, for `aemp run`: a backend's `run` starts its node, calls
/// `started`, then `await Termination.waitForSignal()` and shuts the node down.
enum Termination {
    /// Suspends until the process receives one of `signals` and returns its number. While the wait
    /// is active those signals do not end the process; afterwards their default action is restored
    /// unless `restoreDefault` is false (they stay ignored).
    static func waitForSignal(_ signals: [Int32] = [SIGINT, SIGTERM], restoreDefault: Bool = true) async -> Int32 {
        let wait = SignalWait(restoreDefault: restoreDefault)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            wait.start(signals, continuation)
        }
    }

    /// The signal's name, e.g. `SIGTERM`.
    static func name(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "signal \(number)"
        }
    }

    /// From now on, the next SIGINT or SIGTERM ends the process at once with status 1 (after a log
    /// line): the way out of a graceful shutdown that takes too long.
    static func exitOnNextSignal(_ logger: Logger) {
        Task.detached {
            let number = await waitForSignal(restoreDefault: false)
            logger.warning("\(name(number)) received again: exiting at once, without flushing")
            exit(1)
        }
    }
}

/// One wait for a signal: the dispatch sources and the continuation to resume once.
private final class SignalWait: Sendable {
    private struct State {
        var sources: [any DispatchSourceSignal] = []
        var continuation: CheckedContinuation<Int32, Never>?
    }

    private let state = Mutex(State())
    private let restoreDefault: Bool

    init(restoreDefault: Bool) {
        self.restoreDefault = restoreDefault
    }

    func start(_ signals: [Int32], _ continuation: CheckedContinuation<Int32, Never>) {
        state.withLock { state in
            state.continuation = continuation
            for number in signals {
                // The disposition must be "ignore" so the signal only reaches the dispatch source.
                _ = signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [self] in fire(number, signals) }
                source.resume()
                state.sources.append(source)
            }
        }
    }

    private func fire(_ number: Int32, _ signals: [Int32]) {
        let pending = state.withLock { state in
            defer { state = State() }
            return (state.continuation, state.sources)
        }
        guard let continuation = pending.0 else { return }
        for source in pending.1 { source.cancel() }
        if restoreDefault {
            for other in signals { _ = signal(other, SIG_DFL) }
        }
        continuation.resume(returning: number)
    }
}
