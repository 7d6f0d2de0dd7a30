import AEMPTestSupport
import NIOCore
import Testing

@testable import AEMP

/// Replays both sides of every captured Perl handshake through the Swift state machine: with the
/// captured greeting and nonce it must send the captured bytes and accept the captured peer.
@Suite("Handshake replay of the captures")
struct HandshakeReplayTests {
    enum Side: String, CaseIterable, Sendable { case client, server }

    struct Case: Sendable, CustomStringConvertible {
        var connection: CapturedConnection
        var side: Side
        var chunk: Int
        var description: String { "\(connection) \(side.rawValue) chunk \(chunk)" }
        var own: [UInt8] { side == .client ? connection.clientBytes : connection.serverBytes }
        var peer: [UInt8] { side == .client ? connection.serverBytes : connection.clientBytes }
    }

    static let completedCases: [Case] = Captures.connections.filter(\.completed).flatMap { connection in
        Side.allCases.flatMap { side in [1, 97, 100_000].map { Case(connection: connection, side: side, chunk: $0) } }
    }

    /// A machine that sends exactly what one side of the capture sent.
    static func machine(for own: [UInt8]) throws -> HandshakeStateMachine {
        let lines = try CapturedConnection.lines(own, count: 2).lines
        let greeting = try Greeting(parsing: lines[0])
        let configuration = HandshakeConfiguration(
            nodeID: greeting.nodeID, secret: Captures.secret, authAccept: greeting.authMethods,
            framings: greeting.framings)
        return HandshakeStateMachine(
            configuration: configuration, greeting: greeting, nonce: String(decoding: lines[1], as: UTF8.self))
    }

    @Test(arguments: completedCases)
    func replay(_ replay: Case) throws {
        var machine = try Self.machine(for: replay.own)
        let ownLines = try CapturedConnection.lines(replay.own, count: 3).lines
        let (peerLines, peerRest) = try CapturedConnection.lines(replay.peer, count: 3)
        var directives = machine.start()
        var buffer = ByteBuffer()
        var offset = 0
        while offset < replay.peer.count, !machine.isFinished {
            buffer.writeBytes(replay.peer[offset..<min(offset + replay.chunk, replay.peer.count)])
            offset += replay.chunk
            directives += machine.receive(&buffer)
        }
        guard directives.count == 4 else {
            Issue.record("unexpected directives \(directives)")
            return
        }
        // 1. Both greeting lines, byte for byte as captured.
        let greetingBytes = Array((ownLines[0] + [0x0A] + ownLines[1] + [0x0A]))
        #expect(directives[0] == .send(String(decoding: greetingBytes, as: UTF8.self)))
        #expect(Array(replay.own.prefix(greetingBytes.count)) == greetingBytes)
        // 2. The peer's greeting.
        let peerGreeting = try Greeting(parsing: peerLines[0])
        #expect(directives[1] == .peerGreeted(peerGreeting))
        // 3. The auth line, byte for byte as captured.
        #expect(directives[2] == .send(String(decoding: ownLines[2] + [0x0A], as: UTF8.self)))
        // 4. Authenticated, with the framings both auth lines announced.
        guard case .authenticated(let result) = directives[3] else {
            Issue.record("not authenticated: \(directives[3])")
            return
        }
        let ownAuth = String(decoding: ownLines[2], as: UTF8.self).split(separator: ";")
        let peerAuth = String(decoding: peerLines[2], as: UTF8.self).split(separator: ";")
        #expect(result.peerNodeID == peerGreeting.nodeID)
        #expect(result.sendFraming.rawValue == ownAuth[2])
        #expect(result.receiveFraming.rawValue == peerAuth[2])
        #expect(result.sendAuth == .hmacSHA3_512 && result.receiveAuth == .hmacSHA3_512)
        #expect(!result.tls && result.trusted)
        let isDataConn = replay.connection.number == 5 || replay.connection.number == 7
        #expect(result.protocolName == (isDataConn ? Greeting.aempDataConn : Greeting.aemp))
        // Everything after the auth line stays in the buffer for the data phase.
        if replay.chunk >= replay.peer.count {
            #expect(Array(buffer.readableBytesView) == peerRest)
        }
    }

    /// CR LF line endings from a peer are accepted; the CR is not part of the hashed lines.
    @Test(arguments: [2, 3, 9])
    func crlfLineEndings(_ number: Int) throws {
        let connection = try Captures.connection(number)
        var machine = try Self.machine(for: connection.serverBytes)
        let (lines, rest) = try CapturedConnection.lines(connection.clientBytes, count: 3)
        var buffer = ByteBuffer()
        for line in lines {
            buffer.writeBytes(line)
            buffer.writeString("\r\n")
        }
        buffer.writeBytes(rest)
        let directives = machine.receive(&buffer)
        guard case .authenticated(let result) = directives.last else {
            Issue.record("not authenticated: \(directives)")
            return
        }
        #expect(result.peerGreeting.line == String(decoding: lines[0], as: UTF8.self))
        #expect(Array(buffer.readableBytesView) == rest)
    }

    /// Connection 1: the seed dialling itself. Both sides refuse after line 1 and send no auth line.
    @Test(arguments: Side.allCases)
    func selfConnectionIsRefused(_ side: Side) throws {
        let connection = try Captures.connection(1)
        let own = side == .client ? connection.clientBytes : connection.serverBytes
        let peer = side == .client ? connection.serverBytes : connection.clientBytes
        #expect(CapturedStreams.availableLines(own, upTo: 3).lines.count == 2)  // Perl sent only the greeting
        var machine = try Self.machine(for: own)
        var buffer = ByteBuffer(bytes: peer)
        let directives = machine.receive(&buffer)
        try #require(directives.count == 3, "\(directives)")
        // The greeting is reported first: the node learns that this seed is itself (spec §6.1).
        #expect(directives[1] == .peerGreeted(try Greeting(parsing: try CapturedConnection.lines(peer, count: 1).lines[0])))
        guard case .fail(let error) = directives.last else {
            Issue.record("expected failure, got \(directives)")
            return
        }
        #expect(error.code == .selfConnection)
        #expect(error.message == "I refuse to talk to myself")
        #expect(machine.isFinished)
        #expect(machine.receive(&buffer).isEmpty)
    }

    /// The wrong secret: the captured peer's token no longer verifies.
    @Test(arguments: [2, 3, 8])
    func wrongSecret(_ number: Int) throws {
        let connection = try Captures.connection(number)
        let greetingLines = try CapturedConnection.lines(connection.serverBytes, count: 2).lines
        let greeting = try Greeting(parsing: greetingLines[0])
        var machine = HandshakeStateMachine(
            configuration: HandshakeConfiguration(nodeID: greeting.nodeID, secret: "not-the-secret"),
            greeting: greeting, nonce: String(decoding: greetingLines[1], as: UTF8.self))
        var buffer = ByteBuffer(bytes: connection.clientBytes)
        let directives = machine.receive(&buffer)
        guard case .fail(let error) = directives.last else {
            Issue.record("expected failure, got \(directives)")
            return
        }
        #expect(error.code == .authenticationFailure)
        #expect(error.message == "authentication failure/shared secret mismatch")
        // Perl also sends its own auth line before it sees the wrong token (spec §2).
        #expect(directives.contains { if case .send(let s) = $0 { s.hasPrefix("hmac_sha3_512;") } else { false } })
    }

    /// Connection 5: the listener answers an `aemp-dataconn` dial with its `aemp` line and switches.
    @Test func listenerSwitchesToDataConn() throws {
        let connection = try Captures.connection(5)
        var machine = try Self.machine(for: connection.serverBytes)
        #expect(machine.protocolName == Greeting.aemp)
        var buffer = ByteBuffer(bytes: connection.clientBytes)
        let directives = machine.receive(&buffer)
        #expect(machine.protocolName == Greeting.aempDataConn)
        #expect(machine.localGreeting.protocolName == Greeting.aemp)
        guard case .authenticated(let result) = directives.last else {
            Issue.record("not authenticated: \(directives)")
            return
        }
        #expect(result.peerGreeting["dataconn_id"] == "b@dc-line")
        #expect(String(buffer: buffer) == "hello dataconn\n")
    }

    /// A DataConn endpoint skips the self and already-connected checks (spec §9.1).
    @Test func dataConnSkipsNodeChecks() throws {
        let connection = try Captures.connection(7)
        var machine = try Self.machine(for: connection.serverBytes)
        var buffer = ByteBuffer(bytes: connection.clientBytes)
        let directives = machine.receive(&buffer, isAlreadyConnected: { _ in true })
        guard case .authenticated = directives.last else {
            Issue.record("not authenticated: \(directives)")
            return
        }
        #expect(buffer.readableBytes == 65536)
    }

    /// Already connected: a greeting from a node with a working connection is refused (spec §3.3 step 5).
    @Test func alreadyConnected() throws {
        let connection = try Captures.connection(8)
        var machine = try Self.machine(for: connection.serverBytes)
        var buffer = ByteBuffer(bytes: connection.clientBytes)
        let directives = machine.receive(&buffer, isAlreadyConnected: { $0.rawValue == "echo2" })
        guard case .fail(let error) = directives.last else {
            Issue.record("expected failure, got \(directives)")
            return
        }
        #expect(error.code == .alreadyConnected)
        #expect(error.message == "echo2 already connected, not connecting again.")
    }
}
