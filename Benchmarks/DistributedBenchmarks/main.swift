// Distributed actor calls next to `node.call` of the same bytes (issue #13): two nodes in one
// process, each on its own event loop thread, connected over loopback TCP. Rounds alternate between
// the two ways of calling so that both see the same machine state.
//
//   swift run -c release --package-path Benchmarks DistributedBenchmarks [rounds] [calls-per-round]
//
// - `call`: the client node calls a plain port with `node.call(port, ["greet(name:)", "Ann"])`; the
//   port's callback answers `(1, "Hello, Ann!")` on the server's loop.
// - `actor`: the client calls `greeter.greet(name: "Ann")` on a remote distributed actor; on the
//   server the call runs as a task on the actor and answers the same `(1, "Hello, Ann!")`.
// - `actor-on-loop`: the same actor running on the server node's loop (`NodeActorSystem.loopExecutor`).
// All three send and receive exactly the same frames. One call is in flight at a time (round trips).
// Each round prints `RESULT mode=... calls=N rate=calls/s p50_us p99_us cpu_us_per_call`; CPU is the
// whole process's (both nodes) user+system time, from getrusage.
import AEMP
import AEMPCodecs
import AEMPDistributed
import Distributed
import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

distributed actor Greeter {
    typealias ActorSystem = NodeActorSystem
    distributed func greet(name: String) -> String { "Hello, \(name)!" }
}

/// The same actor on the server node's event loop (``NodeActorSystem/loopExecutor``).
distributed actor LoopGreeter {
    typealias ActorSystem = NodeActorSystem
    nonisolated var unownedExecutor: UnownedSerialExecutor { actorSystem.loopExecutor }
    distributed func greet(name: String) -> String { "Hello, \(name)!" }
}

func emit(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
}

func cpuMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec)
    let system = Double(usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_stime.tv_usec)
    return user + system
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
}

let rounds = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 5 : 5
let callsPerRound = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 20_000 : 20_000

let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
let secret = "distributed-bench"
let server = try await Node.start(
    NodeConfiguration(nodeID: "dist-bench-server", binds: ["127.0.0.1:0"], secret: secret), group: group)
let client = try await Node.start(
    NodeConfiguration(nodeID: "dist-bench-client", binds: ["127.0.0.1:0"], seeds: server.listenerAddresses, secret: secret),
    group: group)
let serverSystem = NodeActorSystem(node: server)
let clientSystem = NodeActorSystem(node: client)

let greeter = Greeter(actorSystem: serverSystem)
let plain = server.port { context, message in
    guard message.count == 3, let name = message[1].stringValue, let reply = message[2].stringValue.flatMap(PortID.init)
    else { return }
    context.node.send(reply, [.int(1), .text("Hello, \(name)!")])
}
let remote = try Greeter.resolve(id: greeter.id, using: clientSystem)
let loopGreeter = LoopGreeter(actorSystem: serverSystem)
let loopRemote = try LoopGreeter.resolve(id: loopGreeter.id, using: clientSystem)

// Warm up: connect, and run both paths once.
_ = try await client.call(plain, ["greet(name:)", "Ann"], timeout: .seconds(10))
_ = try await remote.greet(name: "Ann")
_ = try await loopRemote.greet(name: "Ann")
emit("# \(rounds) rounds × \(callsPerRound) calls per mode, one in flight; \(ProcessInfo.processInfo.activeProcessorCount) CPUs")

func measure(_ mode: String, _ body: () async throws -> Void) async throws -> Double {
    var samples: [Double] = []
    samples.reserveCapacity(callsPerRound)
    let cpuStart = cpuMicroseconds()
    let start = ContinuousClock.now
    for _ in 0..<callsPerRound {
        let before = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - before
        samples.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
    }
    let wall = ContinuousClock.now - start
    let cpu = (cpuMicroseconds() - cpuStart) / Double(callsPerRound)
    let seconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
    samples.sort()
    let p50 = percentile(samples, 50)
    emit(
        "RESULT mode=\(mode) calls=\(callsPerRound) rate=\(Int(Double(callsPerRound) / seconds))"
            + " p50_us=\(String(format: "%.1f", p50)) p99_us=\(String(format: "%.1f", percentile(samples, 99)))"
            + " cpu_us_per_call=\(String(format: "%.1f", cpu))")
    return p50
}

var ratios: [Double] = []
var loopRatios: [Double] = []
for _ in 0..<rounds {
    let reference = try await measure("call") {
        let reply = try await client.call(plain, ["greet(name:)", "Ann"], timeout: .seconds(10))
        precondition(reply.count == 2)
    }
    let actor = try await measure("actor") {
        let greeting = try await remote.greet(name: "Ann")
        precondition(greeting == "Hello, Ann!")
    }
    let onLoop = try await measure("actor-on-loop") {
        let greeting = try await loopRemote.greet(name: "Ann")
        precondition(greeting == "Hello, Ann!")
    }
    ratios.append(actor / reference)
    loopRatios.append(onLoop / reference)
    emit(
        "RATIO p50 actor/call=\(String(format: "%.3f", actor / reference))"
            + " actor-on-loop/call=\(String(format: "%.3f", onLoop / reference))")
}
ratios.sort()
loopRatios.sort()
emit(
    "SUMMARY median p50 ratio actor/call=\(String(format: "%.3f", ratios[ratios.count / 2]))"
        + " actor-on-loop/call=\(String(format: "%.3f", loopRatios[loopRatios.count / 2]))")
await client.shutdown()
await server.shutdown()
try await group.shutdownGracefully()
