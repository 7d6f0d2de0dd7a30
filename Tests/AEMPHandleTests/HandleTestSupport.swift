import Foundation
import NIOCore
import NIOPosix

@testable import AEMPHandle

/// Thread-safe event list for callback tests.
final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []

    func add(_ item: String) {
        lock.lock()
        items.append(item)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return items
    }

    /// Waits (bounded) until `count` items arrived.
    @discardableResult
    func wait(for count: Int, seconds: Double = 5) -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        while all.count < count, Date() < deadline { usleep(1000) }
        return all
    }
}

/// A handle on one end of a socketpair, the raw peer on the other.
final class SocketPairFixture: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let peer: Int32
    let handle: Handle
    private var peerOpen = true

    init(options: @escaping @Sendable () -> HandleOptions = { HandleOptions() }) throws {
        let pair = try Bench.makePair(tcp: false)
        peer = pair.peer
        handle = try Handle.make(socket: pair.handle, group: group, options: options).wait()
    }

    func peerWrite(_ text: String) {
        _ = Bench.writeAll(peer, Array(text.utf8))
    }

    /// Reads until `count` bytes or EOF arrived (bounded).
    func peerRead(count: Int, seconds: Double = 5) -> (bytes: [UInt8], eof: Bool) {
        Bench.readUntil(peer, count: count, seconds: seconds)
    }

    func onLoop(_ body: @escaping @Sendable (Handle) -> Void) {
        let handle = self.handle
        try? group.next().submit { body(handle) }.wait()
    }

    /// Closes the peer's socket (once).
    func closePeer() {
        guard peerOpen else { return }
        peerOpen = false
        close(peer)
    }

    func shutdown() {
        let handle = self.handle
        try? group.next().submit { handle.destroy() }.wait()
        closePeer()
        try? group.syncShutdownGracefully()
    }
}

extension Handle {
    /// Destroys the handle on its loop and waits for it, so that a loop shut down afterwards has
    /// nothing of the handle left to run.
    func destroyAndWait() {
        try? eventLoop.submit { self.destroy() }.wait()
    }

    /// ``destroyAndWait()`` for async tests.
    func destroyOnLoop() async {
        try? await eventLoop.submit { self.destroy() }.get()
    }
}
