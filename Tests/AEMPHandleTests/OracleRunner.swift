import Foundation
import NIOCore
import NIOPosix

@testable import AEMPHandle

/// Carries a non-Sendable value into a loop task (the harness thread waits for the task).
struct Box<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Replays one oracle scenario against a real socket pair and records what happens.
final class OracleRun: @unchecked Sendable {
    typealias Object = Oracle.Object

    let scenario: Object
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var loop: any EventLoop { group.next() }
    private let lock = NSLock()
    private var events: [Object] = []
    private var step = 0
    private var inCall = false
    var depth = 0
    var aborted = false
    var handle: Handle?
    var core: HandleCore?
    private var channel: (any Channel)?
    private var handleFD: Int32 = -1
    private var peerFD: Int32 = -1
    private var peerReceived: [UInt8] = []
    private var peerEOF = false
    var reactionCounts: [String: Int] = [:]
    let templates: [String: Object]
    let reactions: [Object]

    init(_ scenario: Object) {
        self.scenario = scenario
        self.templates = scenario["templates"] as? [String: Object] ?? [:]
        self.reactions = scenario["reactions"] as? [Object] ?? []
    }

    // MARK: Recording

    func record(_ event: Object) {
        var event = event
        lock.lock()
        event["step"] = step
        event["in"] = inCall ? "call" : "loop"
        event["depth"] = depth
        events.append(event)
        lock.unlock()
    }

    private var eventCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return events.count
    }

    func bytes(_ buffer: ByteBuffer?) -> Any {
        guard let buffer else { return NSNull() }
        return Oracle.canonical(Array(buffer.readableBytesView))
    }

    // MARK: Running

    /// Runs the scenario; returns the canonical events and final state.
    func run() throws -> (events: [Object], final: Object) {
        let setup = scenario["setup"] as? Object ?? [:]
        let pair = try Bench.makePair(tcp: (scenario["transport"] as? String) == "tcp")
        handleFD = pair.handle
        peerFD = pair.peer
        let channel = try ClientBootstrap(group: group)
            .channelOption(ChannelOptions.autoRead, value: false)
            .withConnectedSocket(pair.handle).wait()
        self.channel = channel
        defer {
            try? loop.submit { self.handle = nil }.wait()
            try? channel.close().wait()
            close(peerFD)
            try? group.syncShutdownGracefully()
        }
        let boxedSetup = Box(setup)
        try loop.submit {
            self.inCall = true
            let handle = Handle(channel: channel, options: self.options(boxedSetup.value))
            handle.core.uncaughtErrorHook = { [unowned self] message in
                self.record(["ev": "croak", "message": message])
                self.aborted = true
            }
            self.handle = handle
            self.core = handle.core
            self.inCall = false
        }.wait()
        settle()
        let actions = scenario["actions"] as? [Object] ?? []
        for (index, action) in actions.enumerated() {
            step = index + 1
            try performTop(action)
            settle()
        }
        step = actions.count + 1
        var quietRounds = 0
        for _ in 0..<500 where quietRounds < 2 {
            let (data, eof) = Bench.readAvailable(peerFD)
            peerReceived += data
            let sawNew = !data.isEmpty || (eof && !peerEOF)
            peerEOF = peerEOF || eof
            settle()
            quietRounds = sawNew ? 0 : quietRounds + 1
        }
        let final = try loop.submit { () -> Box<Object> in
            var final: Object = [
                "handle": self.status, "peer_eof": self.peerEOF,
                "peer_received": Oracle.canonical(self.peerReceived),
                "rbuf": NSNull(), "wbuf_len": NSNull(),
            ]
            if let handle = self.handle, !handle.isDestroyed {
                final["rbuf"] = self.bytes(handle.readBuffer)
                final["wbuf_len"] = handle.writeBufferLength
            }
            return Box(final)
        }.wait().value
        lock.lock()
        defer { lock.unlock() }
        return (events, final)
    }

    private var status: String {
        guard let handle else { return "dropped" }
        return handle.isDestroyed ? "destroyed" : "alive"
    }

    /// Runs the loop until nothing is left to do (bounded).
    private func settle() {
        var quiet = 0
        var last: [Int] = []
        for _ in 0..<3000 {
            guard
                let snapshot = try? loop.submit({ () -> [Int] in
                    guard let core = self.core else { return [self.eventCount, 0, 0, 0, 0] }
                    let busy = core.stashReadScheduled || core.flushScheduled
                        || (core.reading && (core.stash != nil || core.stashEnd != nil))
                    return [
                        self.eventCount, busy ? 1 : 0, core.reading ? 1 : 0, core.inflight,
                        self.channel?.isActive == true ? 1 : 0,
                    ]
                }).wait()
            else { return }
            var busy = snapshot[1] == 1
            if snapshot[4] == 1 {
                if snapshot[2] == 1, Bench.ready(handleFD, events: Int32(POLLIN)) { busy = true }
                if snapshot[3] > 0, Bench.ready(handleFD, events: Int32(POLLOUT)) { busy = true }
            }
            if busy {
                quiet = 0
                usleep(500)
                continue
            }
            quiet = snapshot == last ? quiet + 1 : 0
            last = snapshot
            if quiet >= 2 { return }
            usleep(2000)
        }
    }

    static let peerOps: Set<String> = ["peer_write", "peer_close", "peer_close_fully", "peer_read", "wait_ms", "settle"]

    private func performTop(_ action: Object) throws {
        let op = action["op"] as? String ?? ""
        switch op {
        case "peer_write":
            if let error = Bench.writeAll(peerFD, Oracle.bytes(action["data"])) {
                inCall = true
                record(["ev": "peer_error", "op": "write", "errno": Bench.errnoName(error)])
                inCall = false
            }
        case "peer_close":
            shutdown(peerFD, Int32(SHUT_WR))
        case "peer_close_fully":
            close(peerFD)
            peerFD = -1
        case "peer_read":
            let (data, eof) = peerFD >= 0 ? Bench.readAvailable(peerFD) : ([], false)
            peerReceived += data
            peerEOF = peerEOF || eof
            var event: Object = ["ev": "peer_read", "eof": peerEOF]
            if (action["record"] as? String) != "none" { event["data"] = Oracle.canonical(data) }
            inCall = true
            record(event)
            inCall = false
        case "wait_ms":
            usleep(useconds_t((action["ms"] as? Int ?? 0) * 1000))
        case "settle":
            break
        case "seq" where action["batched"] == nil:
            // Consecutive handle actions run in one loop task: no loop iteration between them.
            var batch: [Object] = []
            for sub in action["do"] as? [Object] ?? [] {
                if Self.peerOps.contains(sub["op"] as? String ?? "") {
                    if !batch.isEmpty { try performTop(["op": "seq", "do": batch, "batched": true]) }
                    batch = []
                    try performTop(sub)
                } else {
                    batch.append(sub)
                }
            }
            if !batch.isEmpty { try performTop(["op": "seq", "do": batch, "batched": true]) }
        default:
            let boxed = Box(action)
            try loop.submit {
                self.inCall = true
                self.aborted = false
                self.execute([boxed.value], on: self.handle, data: nil, topLevel: true)
                self.inCall = false
            }.wait()
        }
    }
}
