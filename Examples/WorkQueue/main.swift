// aemp-workqueue: a work queue of distributed actors across processes (Examples/WorkQueue/README.md).
//
//   aemp-workqueue queue [bind=127.0.0.1:4060] [secret=...]
//   aemp-workqueue worker <name> [seed=127.0.0.1:4060] [work-ms=100] [secret=...]
//   aemp-workqueue submit [seed=127.0.0.1:4060] [jobs=20] [secret=...]
//
// The queue process runs a `WorkQueue` actor and registers it in the global database (family
// "workqueue"). A worker process finds it there and offers its `Worker` actor with
// `queue.join(worker)`; the queue hands each job to an idle worker with `worker.perform(job)`. A
// submitter calls `queue.submit(texts)` and gets every result back. A worker that dies mid-job (its
// call throws the kill reason) is dropped and its job goes back to the front of the queue.
import AEMP
import AEMPCodecs
import AEMPDistributed
import Distributed
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Writes a line to standard output at once (a test or a pipe reads it while we run).
func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(1, $0, strlen($0)) }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("aemp-workqueue: \(message)\n".utf8))
    exit(1)
}

/// A job: on the wire a map `{id, text}` (a Perl hash).
struct Job: Codable, Sendable {
    var id: Int
    var text: String
}

/// What a worker made of a job: `{id, words, worker}`.
struct JobResult: Codable, Sendable {
    var id: Int
    var words: Int
    var worker: String
}

/// The queue: jobs wait until a worker is idle; results go back to whoever submitted them.
distributed actor WorkQueue {
    typealias ActorSystem = NodeActorSystem

    private var pending: [Job] = []
    private var idle: [Worker] = []
    private var waiting: [Int: CheckedContinuation<JobResult, Never>] = [:]
    private var nextID = 1

    /// A worker offers itself. Perl: `cal $queue, "join", $worker_port, sub { ... }`.
    distributed func join(_ worker: Worker) {
        say("worker \(worker.id) joined")
        idle.append(worker)
        dispatch()
    }

    /// Runs every text as a job and returns the results in order, once all are done. Perl:
    /// `cal $queue, "submit", ["a b", "c"], sub { my ($ok, $results) = @_ }`.
    distributed func submit(_ texts: [String]) async -> [JobResult] {
        let jobs = texts.map { text in
            defer { nextID += 1 }
            return Job(id: nextID, text: text)
        }
        say("submitted \(jobs.count) jobs")
        var results: [JobResult] = []
        for job in jobs {
            results.append(await withCheckedContinuation { continuation in
                waiting[job.id] = continuation
                pending.append(job)
                dispatch()
            })
        }
        return results
    }

    /// Hands pending jobs to idle workers.
    private func dispatch() {
        while !pending.isEmpty, !idle.isEmpty {
            let job = pending.removeFirst()
            let worker = idle.removeFirst()
            Task { await self.run(job, on: worker) }
        }
    }

    private func run(_ job: Job, on worker: Worker) async {
        do {
            let result = try await worker.perform(job)
            waiting.removeValue(forKey: job.id)?.resume(returning: result)
            idle.append(worker)
        } catch {
            say("worker \(worker.id) failed on job \(job.id) (\(error)): job requeued, worker dropped")
            pending.insert(job, at: 0)
        }
        dispatch()
    }
}

/// A worker: counts a job's words, taking `workTime` to do it.
distributed actor Worker {
    typealias ActorSystem = NodeActorSystem

    let name: String
    let workTime: Duration

    init(name: String, workTime: Duration, actorSystem: NodeActorSystem) {
        self.name = name
        self.workTime = workTime
        self.actorSystem = actorSystem
    }

    distributed func perform(_ job: Job) async throws -> JobResult {
        try await Task.sleep(for: workTime)
        say("\(name) did job \(job.id)")
        return JobResult(id: job.id, words: job.text.split(separator: " ").count, worker: name)
    }
}

let defaultSecret = "aemp-workqueue-example"
let defaultAddress = "127.0.0.1:4060"
let family = "workqueue"

let arguments = Array(CommandLine.arguments.dropFirst())
guard let role = arguments.first else {
    fail("usage: aemp-workqueue queue [bind=host:port] | worker <name> [seed=host:port] [work-ms=N] | submit [seed=host:port] [jobs=N]")
}
/// `key=value` arguments.
let settings: [String: String] = Dictionary(
    arguments.dropFirst().compactMap { argument in
        argument.firstIndex(of: "=").map { (String(argument[..<$0]), String(argument[argument.index(after: $0)...])) }
    },
    uniquingKeysWith: { _, last in last })
/// The other arguments.
let positional = arguments.dropFirst().filter { !$0.contains("=") }
let secret = settings["secret"] ?? defaultSecret
/// Node log lines (to standard error) only for warnings and errors: the work is the output.
var logger: Logger {
    var logger = Logger(label: "aemp-workqueue")
    logger.logLevel = .warning
    return logger
}

func integer(_ key: String, default value: Int) -> Int {
    guard let text = settings[key] else { return value }
    guard let number = Int(text), number >= 0 else { fail("\(key) must be a whole number: \(text)") }
    return number
}

/// A node that reaches the queue's node through `seed`, and the queue actor found there.
func connectToQueue() async -> (NodeActorSystem, WorkQueue) {
    let seed = settings["seed"] ?? defaultAddress
    let node: Node
    do {
        node = try await Node.start(NodeConfiguration(binds: ["127.0.0.1:0"], seeds: [seed], secret: secret), logger: logger)
    } catch {
        fail("cannot start the node: \(error)")
    }
    let system = NodeActorSystem(node: node)
    do {
        return (system, try await system.firstActor(WorkQueue.self, in: family, timeout: .seconds(15)))
    } catch {
        fail("no work queue found through \(seed): \(error)")
    }
}

switch role {
case "queue":
    let address = settings["bind"] ?? defaultAddress
    let node: Node
    do {
        node = try await Node.start(
            NodeConfiguration(nodeID: "workqueue", binds: [address], seeds: [address], secret: secret), logger: logger)
    } catch {
        fail("cannot start the queue node: \(error)")
    }
    let system = NodeActorSystem(node: node)
    let queue = WorkQueue(actorSystem: system)
    system.register(queue, in: family)
    say("work queue \(queue.id) on \(node.listenerAddresses.joined(separator: " "))")
    try await node.run()  // until the node shuts down (Ctrl-C ends the process)
    _ = queue

case "worker":
    guard let name = positional.first else { fail("worker: which name? (aemp-workqueue worker w1)") }
    let (system, queue) = await connectToQueue()
    let worker = Worker(name: name, workTime: .milliseconds(integer("work-ms", default: 100)), actorSystem: system)
    do {
        try await queue.join(worker)
    } catch {
        fail("cannot join the queue: \(error)")
    }
    say("\(name) joined the queue \(queue.id)")
    let reason = try? await system.node.deathOf(queue.id)
    say("the queue is gone (\(reason.map { "\($0)" } ?? "node shut down")): \(name) stops")
    await system.node.shutdown()

case "submit":
    let count = integer("jobs", default: 20)
    let (system, queue) = await connectToQueue()
    let texts = (1...max(1, count)).map { index in
        Array(repeating: "word", count: index).joined(separator: " ")
    }
    let started = ContinuousClock.now
    let results: [JobResult]
    do {
        results = try await NodeActorSystem.withCallTimeout(.seconds(600)) { try await queue.submit(texts) }
    } catch {
        fail("the submission failed: \(error)")
    }
    var perWorker: [String: Int] = [:]
    for result in results { perWorker[result.worker, default: 0] += 1 }
    let summary = perWorker.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    let correct = results.enumerated().allSatisfy { index, result in result.words == index + 1 }
    say("all \(results.count) jobs done in \(ContinuousClock.now - started) (\(summary))\(correct ? "" : " WRONG RESULTS")")
    await system.node.shutdown()
    exit(correct ? 0 : 1)

default:
    fail("unknown role \(role): queue, worker or submit")
}
