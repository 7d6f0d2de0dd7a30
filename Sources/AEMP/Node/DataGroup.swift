import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the threads of a data group are scheduled next to the other threads of the process.
///
/// Data connections (AEMPDataConn) move bulk bytes as fast as the cores allow. On a machine whose
/// cores a transfer keeps busy, a node's loop that has a message to answer waits for a core behind
/// them; a lower priority for the data threads lets it have one first. Priorities are per thread on
/// Linux and apply only there; elsewhere ``Node/makeDataGroup(numberOfThreads:priority:)`` refuses
/// anything but ``normal``.
public enum DataThreadPriority: Sendable, Hashable, CustomStringConvertible {
    /// Scheduled like every other thread: a transfer shares the cores evenly with the node's loops.
    case normal
    /// A nice value from 0 (normal) to 19 (lowest). Linux: `setpriority` on the thread.
    case nice(Int32)
    /// Runs when the process's normal threads leave a core free: a normal thread that wakes up
    /// takes the core from it at once. Linux: `SCHED_IDLE` on the thread. Other processes are
    /// unaffected where each service has its own control group (systemd), and so are sessions
    /// with autogrouping; within one group, a transfer slows down while the process's own normal
    /// threads keep every core busy.
    case background

    public var description: String {
        switch self {
        case .normal: "normal"
        case .nice(let value): "nice \(value)"
        case .background: "background"
        }
    }

    /// Gives the calling thread this priority.
    func applyToCurrentThread() throws(NodeError) {
        switch self {
        case .normal:
            return
        case .nice(let value):
            guard (0...19).contains(value) else {
                throw NodeError("a data thread's nice value must be 0 to 19 (at most normal priority), not \(value)")
            }
            #if os(Linux)
            // Linux keeps a nice value per thread; `who` 0 is the calling thread.
            guard setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, value) == 0 else {
                throw NodeError("cannot set the data thread's nice value to \(value): \(String(cString: strerror(errno)))")
            }
            #else
            throw NodeError("data thread priorities are supported on Linux only")
            #endif
        case .background:
            #if os(Linux)
            var parameters = sched_param()
            parameters.sched_priority = 0
            // SCHED_IDLE (5): not exported by the Glibc module; pid 0 is the calling thread.
            guard sched_setscheduler(0, 5, &parameters) == 0 else {
                throw NodeError("cannot give the data thread background priority (SCHED_IDLE): \(String(cString: strerror(errno)))")
            }
            #else
            throw NodeError("data thread priorities are supported on Linux only")
            #endif
        }
    }
}

extension Node {
    /// Makes an event loop group for data connections whose threads run at `priority`; pass it to
    /// ``start(_:group:dataGroup:logger:)`` as `dataGroup`. You own it: shut it down after the
    /// nodes that use it.
    ///
    /// - Parameters:
    ///   - numberOfThreads: how many loops (threads). A node keeps all its data connections on one
    ///     of them; more loops let several nodes of the process transfer in parallel.
    ///   - priority: how the threads are scheduled.
    /// - Throws: ``NodeError`` when a thread cannot be given `priority` (a nice value outside 0…19,
    ///   a system that refuses, or not Linux); the group is shut down then.
    public static func makeDataGroup(
        numberOfThreads: Int = 1, priority: DataThreadPriority
    ) async throws -> MultiThreadedEventLoopGroup {
        precondition(numberOfThreads > 0, "a data group needs at least one thread")
        let group = MultiThreadedEventLoopGroup(numberOfThreads: numberOfThreads)
        do {
            for loop in group.makeIterator() {
                try await loop.submit { try priority.applyToCurrentThread() }.get()
            }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        return group
    }

    /// The group data connections live on when ``start(_:group:dataGroup:logger:)`` is given no
    /// `dataGroup`: one per process, made when a node first needs a data loop (its first data
    /// connection), never shut down, with one thread per core
    /// (named `AEMP-DATA-…`) at ``DataThreadPriority/background`` priority on Linux (where that is
    /// refused, e.g. by a seccomp filter, and elsewhere, at normal priority).
    public static var defaultDataGroup: MultiThreadedEventLoopGroup { sharedDataGroup }
}

/// Made on first use (a global is initialised once, thread-safely). Each loop's first task lowers
/// its thread's priority, before anything else runs there.
private let sharedDataGroup: MultiThreadedEventLoopGroup = {
    let group = MultiThreadedEventLoopGroup._makePerpetualGroup(
        threadNamePrefix: "AEMP-DATA-", numberOfThreads: System.coreCount)
    #if os(Linux)
    for loop in group.makeIterator() {
        loop.execute { try? DataThreadPriority.background.applyToCurrentThread() }
    }
    #endif
    return group
}()
