#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// Examples/WorkQueue run as its README says: a queue, workers and submitters as real processes,
/// talking through distributed actors.
@Suite("Example: work queue of distributed actors", .serialized, .enabled(if: AempBinary.path != nil, "needs the built executables"))
struct WorkQueueExampleTests {
    static var workQueue: String? {
        AempBinary.path.map { URL(fileURLWithPath: $0).deletingLastPathComponent().appendingPathComponent("aemp-workqueue").path }
    }

    static func start(_ arguments: [String]) throws -> AempProcess {
        guard let workQueue, FileManager.default.isExecutableFile(atPath: workQueue) else {
            throw CLITestFailure("aemp-workqueue was not built next to aemp")
        }
        return try AempProcess(arguments, environment: ["PATH": "/usr/bin:/bin"], executable: workQueue)
    }

    @Test("two workers share the jobs; a worker killed mid-job has its job requeued; all results arrive", .timeLimit(.minutes(2)))
    func queueAcrossProcesses() async throws {
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let queue = try Self.start(["queue", "bind=\(address)"])
        defer { queue.signal(SIGKILL) }
        #expect(await queue.waitUntil { $0.output.text.contains("work queue workqueue#") }, "\(queue.transcript)")

        let first = try Self.start(["worker", "w1", "seed=\(address)", "work-ms=30"])
        defer { first.signal(SIGKILL) }
        let second = try Self.start(["worker", "w2", "seed=\(address)", "work-ms=30"])
        defer { second.signal(SIGKILL) }
        #expect(await first.waitUntil { $0.output.text.contains("w1 joined the queue") }, "\(first.transcript)")
        #expect(await second.waitUntil { $0.output.text.contains("w2 joined the queue") }, "\(second.transcript)")

        let submit = try Self.start(["submit", "seed=\(address)", "jobs=20"])
        #expect(await submit.finish(timeout: .seconds(60)) == 0, "\(submit.transcript)")
        let summary = submit.output.text
        #expect(summary.contains("all 20 jobs done"), "\(submit.transcript)")
        #expect(summary.contains("w1: ") && summary.contains("w2: "), "both workers took jobs: \(summary)")

        // A slow third worker dies with a job in hand: the job goes back to the queue.
        let doomed = try Self.start(["worker", "w3", "seed=\(address)", "work-ms=400"])
        #expect(await doomed.waitUntil { $0.output.text.contains("w3 joined the queue") }, "\(doomed.transcript)")
        let more = try Self.start(["submit", "seed=\(address)", "jobs=12"])
        #expect(await doomed.waitUntil { $0.output.text.contains("w3 did job") }, "\(doomed.transcript)")
        doomed.signal(SIGKILL)
        #expect(await more.finish(timeout: .seconds(60)) == 0, "\(more.transcript)")
        #expect(more.output.text.contains("all 12 jobs done"), "\(more.transcript)")
        #expect(await queue.waitUntil { $0.output.text.contains("failed on job") && $0.output.text.contains("job requeued") },
                "\(queue.transcript)")

        // The queue goes away: the workers say so and exit.
        queue.signal(SIGKILL)
        #expect(await first.finish(timeout: .seconds(20)) == 0, "\(first.transcript)")
        #expect(first.output.text.contains("the queue is gone"), "\(first.transcript)")
    }
}
