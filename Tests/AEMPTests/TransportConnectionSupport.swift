import AEMPCodecs
import AEMPHandle
import Foundation
import NIOCore
import NIOPosix

@testable import AEMP

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Test plumbing for ``TransportConnection``: loopback socket pairs, a recording delegate, a raw
/// blocking peer that speaks the handshake through the sans-IO machine, and TLS certificates.
enum TransportTest {
    static let group = MultiThreadedEventLoopGroup.singleton

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Two connected TCP sockets on 127.0.0.1: (dialling side, accepted side).
    static func socketPair() throws -> (dialler: Int32, acceptor: Int32) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw Failure("socket: \(errno)") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(listener, raw, length) == 0 && listen(listener, 4) == 0 && getsockname(listener, raw, &length) == 0
            }
        }
        guard bound else { throw Failure("bind/listen: \(errno)") }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard client >= 0 else { throw Failure("socket: \(errno)") }
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
        }
        guard connected else {
            close(client)
            throw Failure("connect: \(errno)")
        }
        let server = accept(listener, nil, nil)
        guard server >= 0 else {
            close(client)
            throw Failure("accept: \(errno)")
        }
        return (client, server)
    }

    /// Polls `condition` every millisecond for at most `seconds`.
    @discardableResult
    static func wait(seconds: Double = 10, until condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition() {
            if Date() >= deadline { return false }
            usleep(1000)
        }
        return true
    }

    static func configuration(
        _ node: String, secret: String? = "transport-secret", tls: Bool = false,
        framings: [Framing] = Framing.supported
    ) -> HandshakeConfiguration {
        HandshakeConfiguration(nodeID: NodeID(node)!, secret: secret, tlsAvailable: tls, framings: framings)
    }

    /// A variety of message elements that survive both framings unchanged.
    static func elements(_ index: Int) -> [Value] {
        [
            .text("tag\(index)"), .int(Int64(index)), .int(-Int64(index) * 1_000_003), .float(2.5),
            .null, .bool(index % 2 == 0), .text("ünï \(String(repeating: "x", count: index % 50))"),
            .array([.int(1), .text("two"), .null]),
            .map([(key: .text("a"), value: .text("b")), (key: .text("n"), value: .int(Int64(index)))]),
        ]
    }
}

/// One ``TransportConnection`` on a real socket, with a delegate that records everything.
final class TransportEndpoint: TransportConnectionDelegate, @unchecked Sendable {
    let handle: Handle
    private let lock = NSLock()
    private var _messages: [[Value]] = []
    private var _closed: (message: String, authenticated: Bool)?
    private var _closedCount = 0
    private var _result: HandshakeResult?
    private var _greetings: [Greeting] = []
    private var _events: [String] = []

    // Loop-only state (set before start, then read on the loop).
    var connection: TransportConnection?
    var alreadyConnected: Set<NodeID> = []
    var enterDataPhase = true
    var onReceived: ((TransportEndpoint, [Value]) -> Void)?
    var onAuthenticated: ((TransportEndpoint, HandshakeResult) -> Void)?

    init(fd: Int32) throws {
        handle = try Handle.make(socket: fd, group: TransportTest.group).wait()
    }

    deinit {
        // Ends whatever still runs on the handle (the connection lets go of it then).
        handle.destroy()
    }

    /// Creates and starts the connection on the handle's loop.
    func start(
        _ configuration: HandshakeConfiguration, tls: TLSContext? = nil,
        direction: TransportConnection.Direction, protocolName: String = Greeting.aemp,
        dataConnID: String? = nil, timeout: Duration = .seconds(10), fixed: (Greeting, String)? = nil
    ) throws {
        try onLoop {
            let connection: TransportConnection
            if let (greeting, nonce) = fixed {
                connection = TransportConnection(
                    handle: self.handle, configuration: configuration, tls: tls, direction: direction,
                    greeting: greeting, nonce: nonce, handshakeTimeout: timeout, delegate: self)
            } else {
                connection = TransportConnection(
                    handle: self.handle, configuration: configuration, tls: tls, direction: direction,
                    protocolName: protocolName, dataConnID: dataConnID, handshakeTimeout: timeout, delegate: self)
            }
            self.connection = connection
            connection.start()
        }
    }

    func onLoop<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
        try handle.eventLoop.submit(body).wait()
    }

    func send(_ port: String, _ elements: [Value]) throws {
        try onLoop { try self.connection!.send(portName: port, elements) }
    }

    func send(message: [Value]) throws {
        try onLoop { try self.connection!.send(message) }
    }

    func close() throws {
        try onLoop { self.connection?.close() }
    }

    func record(_ event: String) {
        lock.withLock { _events.append(event) }
    }

    var messages: [[Value]] { lock.withLock { _messages } }
    var closed: (message: String, authenticated: Bool)? { lock.withLock { _closed } }
    var closedCount: Int { lock.withLock { _closedCount } }
    var result: HandshakeResult? { lock.withLock { _result } }
    var greetings: [Greeting] { lock.withLock { _greetings } }
    var events: [String] { lock.withLock { _events } }

    // MARK: Delegate (on the loop)

    func connection(_ c: TransportConnection, greetedBy greeting: Greeting) {
        lock.withLock { _greetings.append(greeting) }
    }

    func connection(_ c: TransportConnection, isAlreadyConnected node: NodeID) -> Bool {
        alreadyConnected.contains(node)
    }

    func connectionAuthenticated(_ c: TransportConnection, _ result: HandshakeResult) -> Bool {
        lock.withLock { _result = result }
        onAuthenticated?(self, result)
        return enterDataPhase
    }

    func connection(_ c: TransportConnection, received message: [Value]) {
        lock.withLock { _messages.append(message) }
        onReceived?(self, message)
    }

    func connection(_ c: TransportConnection, closedWith message: String, authenticated: Bool) {
        lock.withLock {
            _closed = (message, authenticated)
            _closedCount += 1
        }
    }
}

/// The other end of a socket, driven by the test thread with blocking calls (every wait bounded).
final class RawPeer: @unchecked Sendable {
    let fd: Int32
    private(set) var received = ByteBuffer()
    private var open = true

    init(fd: Int32) { self.fd = fd }

    deinit { closeSocket() }

    func write(_ bytes: some Sequence<UInt8>) {
        let data = Array(bytes)
        var offset = 0
        while offset < data.count {
            let count = data[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return }
            offset += count
        }
    }

    func write(_ text: String) { write(Array(text.utf8)) }

    /// Reads what is available (waiting at most `seconds` for something); `false` on EOF/timeout.
    @discardableResult
    func readSome(seconds: Double = 10) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(seconds * 1000)) > 0 else { return false }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return false }
        received.writeBytes(chunk[0..<count])
        return true
    }

    /// Reads until `count` LF-terminated lines have arrived; returns them (without LF), consumed.
    func readLines(_ count: Int, seconds: Double = 10) -> [String] {
        var lines: [String] = []
        let deadline = Date().addingTimeInterval(seconds)
        while lines.count < count {
            let view = received.readableBytesView
            if let newline = view.firstIndex(of: 0x0A) {
                let length = newline - view.startIndex
                lines.append(received.readString(length: length)!)
                received.moveReaderIndex(forwardBy: 1)
                continue
            }
            guard Date() < deadline, readSome(seconds: deadline.timeIntervalSinceNow) else { break }
        }
        return lines
    }

    /// Whether the other side closed (EOF or reset) within `seconds`.
    func waitForClose(seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { return true }
            received.writeBytes(chunk[0..<count])
        }
        return false
    }

    /// Runs the handshake with `machine` (no TLS). `extra` is appended to the test append bytes to the
    /// write that carries this side's auth line. Returns the result, or the failure text.
    func handshake(
        _ machine: inout HandshakeStateMachine, appendingToAuthLine extra: [UInt8] = []
    ) -> Result<HandshakeResult, TransportTest.Failure> {
        var directives = machine.start()
        let deadline = Date().addingTimeInterval(10)
        while true {
            for directive in directives {
                switch directive {
                case .send(let text):
                    let isAuthLine = text.utf8.filter { $0 == 0x0A }.count == 1
                    write(Array(text.utf8) + (isAuthLine ? extra : []))
                case .peerGreeted:
                    break
                case .startTLS:
                    return .failure(TransportTest.Failure("TLS not supported by the raw peer"))
                case .authenticated(let result):
                    return .success(result)
                case .fail(let error):
                    return .failure(TransportTest.Failure(error.message))
                }
            }
            guard Date() < deadline, readSome(seconds: deadline.timeIntervalSinceNow) else {
                return .failure(TransportTest.Failure("peer closed or timed out during handshake"))
            }
            directives = machine.receive(&received)
        }
    }

    func closeSocket() {
        guard open else { return }
        open = false
        close(fd)
    }
}
