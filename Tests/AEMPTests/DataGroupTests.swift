import AEMP
import Foundation
import NIOCore
import NIOPosix
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The groups data connections live on, and the priority of their threads.
@Suite("Node: data groups")
struct DataGroupTests {
    /// The calling thread's scheduling: policy (Linux `SCHED_*`), nice value and name.
    struct Scheduling: Sendable, Equatable {
        var policy: Int32
        var nice: Int32
        var name: String

        static func current() -> Scheduling {
            errno = 0
            let nice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            return Scheduling(
                policy: sched_getscheduler(0), nice: nice, name: name.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    static func scheduling(of group: any EventLoopGroup) async throws -> [Scheduling] {
        var all: [Scheduling] = []
        for loop in group.makeIterator() {
            all.append(try await loop.submit { Scheduling.current() }.get())
        }
        return all
    }

    static let schedIdle: Int32 = 5
    static let schedOther: Int32 = 0

    @Test func theDefaultGroupRunsInTheBackgroundOnEveryCore() async throws {
        let threads = try await Self.scheduling(of: Node.defaultDataGroup)
        #expect(threads.count == System.coreCount)
        for thread in threads {
            #expect(thread.policy == Self.schedIdle)
            #expect(thread.name.hasPrefix("AEMP-DATA-"))
        }
        #expect(Node.defaultDataGroup === Node.defaultDataGroup)
    }

    @Test(arguments: [Int32(0), 7, 19])
    func aNiceGroupRunsAtItsNiceValue(_ nice: Int32) async throws {
        let group = try await Node.makeDataGroup(numberOfThreads: 2, priority: .nice(nice))
        let threads = try await Self.scheduling(of: group)
        #expect(threads.map(\.nice) == [nice, nice])
        #expect(threads.map(\.policy) == [Self.schedOther, Self.schedOther])
        try await group.shutdownGracefully()
    }

    @Test func aBackgroundGroupOfYourOwn() async throws {
        let group = try await Node.makeDataGroup(priority: .background)
        #expect(try await Self.scheduling(of: group).map(\.policy) == [Self.schedIdle])
        try await group.shutdownGracefully()
    }

    @Test func aNormalGroupKeepsNormalScheduling() async throws {
        let group = try await Node.makeDataGroup(priority: .normal)
        let threads = try await Self.scheduling(of: group)
        #expect(threads.map(\.policy) == [Self.schedOther])
        #expect(threads.map(\.nice) == [Scheduling.current().nice])
        try await group.shutdownGracefully()
    }

    /// A nice value that would raise the data threads above the node's, or is no nice value, is refused.
    @Test(arguments: [Int32(-1), -20, 20, 40])
    func aNiceValueOutsideTheRangeIsRefused(_ nice: Int32) async throws {
        let error = await #expect(throws: NodeError.self) {
            _ = try await Node.makeDataGroup(priority: .nice(nice))
        }
        #expect(error?.message == "a data thread's nice value must be 0 to 19 (at most normal priority), not \(nice)")
    }

    @Test func prioritiesDescribeThemselves() {
        #expect(DataThreadPriority.normal.description == "normal")
        #expect(DataThreadPriority.nice(10).description == "nice 10")
        #expect(DataThreadPriority.background.description == "background")
    }
}
