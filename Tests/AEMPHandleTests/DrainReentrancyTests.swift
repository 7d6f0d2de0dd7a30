import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

/// How deep `onDrain` callbacks nest when each one writes a little more that the kernel takes at once.
///
/// Perl AnyEvent::Handle 7.17 calls the next `on_drain` from inside the `push_write` of the previous
/// one, so a chain of refills nests one level per refill: depths 1, 2, 3 for two refills, and 10 001
/// levels for 10 000 refills over TCP loopback (an AF_UNIX pair stops at 279, when its socket buffer
/// fills). SwiftNIO does not re-enter a flush that is running: a write made by a callback inside the
/// completion of a write goes out when the running flush continues, so the chain runs iteratively at
/// depth 2 at most. The difference is documented in the ReadQueue article and on ``Handle/onDrain(_:)``.
@Suite("onDrain re-entrancy", .timeLimit(.minutes(2)))
struct DrainReentrancyTests {
    /// The callbacks' bookkeeping; touched on the handle's loop only.
    final class Probe: @unchecked Sendable {
        let refills: Int
        var depth = 0
        var calls = 0
        var depths: [Int] = []
        var maxDepth = 0
        /// The lowest and highest address of a local variable in a callback: how far the stack grew.
        var lowestFrame = UInt.max
        var highestFrame = UInt.min
        var expected: [UInt8] = []
        let finished = DispatchSemaphore(value: 0)

        init(refills: Int) {
            self.refills = refills
        }

        /// The `onDrain` callback: records its depth and, for the first `refills` calls, writes one line.
        func drain(_ handle: Handle) {
            depth += 1
            defer { depth -= 1 }
            calls += 1
            var marker = calls
            let frame = withUnsafeMutablePointer(to: &marker) { UInt(bitPattern: $0) }
            lowestFrame = min(lowestFrame, frame)
            highestFrame = max(highestFrame, frame)
            if depths.count < 100 { depths.append(depth) }
            maxDepth = max(maxDepth, depth)
            if calls <= refills {
                let line = "x\(calls)\n"
                expected += Array(line.utf8)
                handle.pushWrite(line)
            } else if calls == refills + 1 {
                finished.signal()
            }
        }
    }

    /// Runs a chain of `refills` on a handle over a real connection while the peer reads everything;
    /// returns the probe and the bytes the peer read.
    static func runChain(refills: Int, tcp: Bool) throws -> (probe: Probe, received: [UInt8]) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let pair = try Bench.makePair(tcp: tcp)
        defer { close(pair.peer) }
        let errors = Collector()
        let handle = try Handle.make(socket: pair.handle, group: group) {
            var options = HandleOptions()
            options.onError = { _, error in errors.add("\(error)") }
            return options
        }.wait()
        defer { handle.destroyAndWait() }
        let probe = Probe(refills: refills)
        // As in the Perl script: setting the callback runs it at once (the buffer is empty).
        try handle.eventLoop.submit { handle.onDrain(probe.drain) }.wait()
        // The socket may fill up meanwhile: the rest of the chain runs as the peer reads.
        var received: [UInt8] = []
        var finished = false
        let deadline = Date().addingTimeInterval(30)
        while !finished, Date() < deadline {
            received += Bench.readAvailable(pair.peer).bytes
            finished = probe.finished.wait(timeout: .now() + .milliseconds(1)) == .success
        }
        #expect(finished, "the chain did not finish")
        #expect(errors.all.isEmpty)
        let total = try handle.eventLoop.submit { probe.expected.count }.wait()
        let rest = Bench.readUntil(pair.peer, count: total - min(total, received.count), seconds: 10).bytes
        return (probe, received + rest)
    }

    @Test("two refills: depths 1, 2, 2 (Perl: 1, 2, 3); the bytes arrive in order", arguments: [false, true])
    func twoRefills(tcp: Bool) throws {
        let (probe, received) = try Self.runChain(refills: 2, tcp: tcp)
        #expect(probe.calls == 3)
        #expect(probe.depths == [1, 2, 2])
        #expect(String(decoding: received, as: UTF8.self) == "x1\nx2\n")
    }

    @Test("10 000 refills: the depth stays at 2 at most and every byte arrives in order", arguments: [false, true])
    func longChain(tcp: Bool) throws {
        let refills = 10_000
        let (probe, received) = try Self.runChain(refills: refills, tcp: tcp)
        #expect(probe.calls == refills + 1)
        #expect(probe.maxDepth <= 2)
        #expect(received.count == probe.expected.count)
        #expect(received == probe.expected)
        // Perl would be 10 001 callbacks deep here; the frames of our callbacks stay close together.
        #expect(probe.highestFrame - probe.lowestFrame < 64 * 1024)
    }
}
