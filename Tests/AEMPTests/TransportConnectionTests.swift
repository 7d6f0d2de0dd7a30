import AEMPCodecs
import AEMPHandle
import Foundation
import NIOCore
import AEMPTestSupport
import Testing

@testable import AEMP

/// ``TransportConnection`` on real loopback sockets: handshakes, framings, failures, TLS, DataConn.
@Suite("TransportConnection", .serialized)
struct TransportConnectionTests {
    typealias Endpoint = TransportEndpoint

    /// Two connections, dialler and acceptor, on one socket pair.
    static func pair(
        dialler: HandshakeConfiguration, acceptor: HandshakeConfiguration,
        diallerTLS: TLSContext? = nil, acceptorTLS: TLSContext? = nil,
        diallerProtocol: String = Greeting.aemp, dataConnID: String? = nil,
        configure: (Endpoint, Endpoint) -> Void = { _, _ in }
    ) throws -> (dialler: Endpoint, acceptor: Endpoint) {
        let fds = try TransportTest.socketPair()
        let a = try Endpoint(fd: fds.dialler)
        let b = try Endpoint(fd: fds.acceptor)
        configure(a, b)
        try a.start(
            dialler, tls: diallerTLS, direction: .dialled(address: "127.0.0.1:4040"), protocolName: diallerProtocol,
            dataConnID: dataConnID)
        try b.start(acceptor, tls: acceptorTLS, direction: .accepted(peerAddress: "127.0.0.1:55555"))
        return (a, b)
    }

    /// A connection on one end and a raw blocking peer on the other.
    static func withRawPeer(
        _ configuration: HandshakeConfiguration = TransportTest.configuration("swift"),
        timeout: Duration = .seconds(10)
    ) throws -> (Endpoint, RawPeer) {
        let fds = try TransportTest.socketPair()
        let endpoint = try Endpoint(fd: fds.acceptor)
        let peer = RawPeer(fd: fds.dialler)
        try endpoint.start(configuration, direction: .accepted(peerAddress: nil), timeout: timeout)
        return (endpoint, peer)
    }

    /// A connection whose raw peer completed an hmac handshake offering only `framing`.
    static func authenticatedRawPeer(framing: Framing) throws -> (Endpoint, RawPeer) {
        let (endpoint, peer) = try withRawPeer()
        var machine = HandshakeStateMachine(
            configuration: TransportTest.configuration("raw", framings: [framing]), peerAddress: "127.0.0.1:1")
        let result = try peer.handshake(&machine).get()
        #expect(result.sendFraming == framing && result.receiveFraming == framing)
        #expect(TransportTest.wait { endpoint.result != nil })
        return (endpoint, peer)
    }

    // MARK: Handshake and data exchange

    struct FramingCase: Sendable, CustomStringConvertible {
        var dialler: [Framing]
        var acceptor: [Framing]
        /// What the dialler sends / receives.
        var send: Framing
        var receive: Framing
        var description: String { "\(send.rawValue)/\(receive.rawValue)" }
    }

    static let framingCases = [
        FramingCase(dialler: [.cbor, .json], acceptor: [.cbor, .json], send: .cbor, receive: .cbor),
        FramingCase(dialler: [.json, .cbor], acceptor: [.cbor, .json], send: .cbor, receive: .json),
        FramingCase(dialler: [.json], acceptor: [.cbor, .json], send: .json, receive: .json),
    ]

    @Test(arguments: framingCases)
    func handshakeAndManyMessagesBothWays(_ framing: FramingCase) throws {
        let (a, b) = try Self.pair(
            dialler: TransportTest.configuration("alpha", framings: framing.dialler),
            acceptor: TransportTest.configuration("beta", framings: framing.acceptor))
        try #require(TransportTest.wait { a.result != nil && b.result != nil })
        let ra = try #require(a.result)
        let rb = try #require(b.result)
        #expect(ra.peerNodeID == NodeID("beta") && rb.peerNodeID == NodeID("alpha"))
        #expect(ra.sendFraming == framing.send && ra.receiveFraming == framing.receive)
        #expect(rb.sendFraming == framing.receive && rb.receiveFraming == framing.send)
        #expect(ra.sendAuth == .hmacSHA3_512 && rb.receiveAuth == .hmacSHA3_512 && !ra.tls && ra.trusted)
        #expect(ra.protocolName == Greeting.aemp)
        #expect(a.greetings.map(\.nodeID) == [NodeID("beta")!] && b.greetings.map(\.nodeID) == [NodeID("alpha")!])
        #expect(b.greetings.first?["peeraddr"] == "127.0.0.1:4040")
        #expect(a.greetings.first?["peeraddr"] == "127.0.0.1:55555")
        #expect(try a.onLoop { a.connection!.peerGreeting?.nodeID } == NodeID("beta"))

        let count = 300
        for index in 0..<count {
            if index % 2 == 0 {
                try a.send("port\(index)", TransportTest.elements(index))
                try b.send(message: [.text("back\(index)")] + TransportTest.elements(index))
            } else {
                try a.send(message: [.text("port\(index)")] + TransportTest.elements(index))
                try b.send("back\(index)", TransportTest.elements(index))
            }
        }
        #expect(TransportTest.wait { a.messages.count == count && b.messages.count == count })
        for (index, message) in b.messages.enumerated() {
            #expect(message == [.text("port\(index)")] + TransportTest.elements(index))
        }
        for (index, message) in a.messages.enumerated() {
            #expect(message == [.text("back\(index)")] + TransportTest.elements(index))
        }
        // JSON cannot carry NaN: nothing is written and the stream stays intact.
        if framing.send == .json {
            #expect(throws: TransportSendError.self) { try a.send("x", [.float(.nan)]) }
            #expect(throws: TransportSendError.self) { try a.send(message: [.text("x"), .float(.infinity)]) }
            try a.send("after", [])
            #expect(TransportTest.wait { b.messages.count == count + 1 })
            #expect(b.messages.last == [.text("after")])
        }
        try a.close()
        #expect(TransportTest.wait { b.closed != nil })
        #expect(b.closed?.message == "Unexpected end-of-file" && b.closed?.authenticated == true)
        #expect(a.closed == nil)
        #expect(throws: TransportSendError.self) { try a.send("late", []) }
    }

    @Test func sendBeforeAuthenticationThrows() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        #expect(throws: TransportSendError.self) { try endpoint.send("early", [.int(1)]) }
        peer.closeSocket()
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.authenticated == false)
        #expect(endpoint.messages.isEmpty)
    }

    @Test func wrongSecretFailsOnBothSides() throws {
        let (a, b) = try Self.pair(
            dialler: TransportTest.configuration("alpha", secret: "one secret"),
            acceptor: TransportTest.configuration("beta", secret: "another secret"))
        #expect(TransportTest.wait { a.closed != nil && b.closed != nil })
        for side in [a, b] {
            #expect(side.closed?.message == "authentication failure/shared secret mismatch")
            #expect(side.closed?.authenticated == false)
            #expect(side.result == nil && side.messages.isEmpty)
        }
    }

    @Test func selfConnectionIsRefused() throws {
        let (a, b) = try Self.pair(
            dialler: TransportTest.configuration("same"), acceptor: TransportTest.configuration("same"))
        #expect(TransportTest.wait { a.closed != nil && b.closed != nil })
        #expect(a.closed?.message == "I refuse to talk to myself")
        #expect(b.closed?.message == "I refuse to talk to myself")
        // The greeting is reported first: a node learns that a seed is itself.
        #expect(a.greetings.map(\.nodeID) == [NodeID("same")!])
        #expect(a.result == nil && b.result == nil)
    }

    @Test func alreadyConnectedIsRefused() throws {
        let (a, b) = try Self.pair(
            dialler: TransportTest.configuration("alpha"), acceptor: TransportTest.configuration("beta"),
            configure: { _, acceptor in acceptor.alreadyConnected = [NodeID("alpha")!] })
        #expect(TransportTest.wait { a.closed != nil && b.closed != nil })
        #expect(b.closed?.message == "alpha already connected, not connecting again.")
        #expect(b.closed?.authenticated == false)
        #expect(a.closed?.authenticated == false)
        #expect(a.result == nil && b.result == nil)
    }

    @Test func handshakeTimeout() throws {
        let (endpoint, peer) = try Self.withRawPeer(timeout: .milliseconds(200))
        #expect(peer.readLines(2).count == 2)
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message == "Connection timed out")
        #expect(endpoint.closed?.authenticated == false)
        #expect(peer.waitForClose())
    }

    @Test func timeoutIsLiftedAfterAuthentication() throws {
        let fds = try TransportTest.socketPair()
        let endpoint = try Endpoint(fd: fds.acceptor)
        let peer = RawPeer(fd: fds.dialler)
        try endpoint.start(
            TransportTest.configuration("swift"), direction: .accepted(peerAddress: nil), timeout: .milliseconds(300))
        var machine = HandshakeStateMachine(
            configuration: TransportTest.configuration("raw"), peerAddress: "127.0.0.1:1")
        _ = try peer.handshake(&machine).get()
        usleep(600_000)
        #expect(endpoint.closed == nil)
        peer.write(CBOREncoder().encodeToBytes(.array([.text("p"), .int(1)])))
        #expect(TransportTest.wait { endpoint.messages.count == 1 })
    }

    @Test func oversizeGreetingFails() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        peer.write([UInt8](repeating: UInt8(ascii: "a"), count: 5000))
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message == "No space left on device")
        #expect(endpoint.greetings.isEmpty)
    }

    @Test func garbageAfterGreetingFails() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        let greeting = Greeting.local(
            nodeID: NodeID("raw")!, authAccept: AuthMethod.defaultAccept, framings: [.cbor], peerAddress: nil)
        peer.write(greeting.line + "\n" + HandshakeNonce.generate() + "\n")
        peer.write([0x01, 0xFF, 0xFE, 0x3B, 0x0A])
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message.hasSuffix("fatal, selected unsupported rcv auth method") == true)
        #expect(endpoint.greetings.count == 1 && endpoint.result == nil)
    }

    @Test func unparsableGreetingFails() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        peer.write("http/1.1;1;x;y;z\n")
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message == "unparsable greeting, expected 'aemp', got 'http/1.1'")
        #expect(endpoint.greetings.isEmpty)
    }

    @Test func endOfFileDuringHandshake() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        // Read the greeting first: closing with unread data would send a reset instead of a FIN.
        #expect(peer.readLines(2).count == 2)
        peer.closeSocket()
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message == "Unexpected end-of-file")
        #expect(endpoint.closed?.authenticated == false)
    }

    // MARK: Data phase failures

    @Test func malformedCBORFrameEndsTheStream() throws {
        let (endpoint, peer) = try Self.authenticatedRawPeer(framing: .cbor)
        var bytes = ByteBuffer()
        for index in 0..<3 { bytes.writeCBOR(.array([.text("p"), .int(Int64(index))])) }
        bytes.writeBytes([0xFF, 0xFF])
        bytes.writeCBOR(.array([.text("p"), .int(99)]))
        peer.write(bytes.readableBytesView)
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.messages == (0..<3).map { [.text("p"), .int(Int64($0))] })
        #expect(endpoint.closed?.message.hasPrefix("malformed cbor message:") == true)
        #expect(endpoint.closed?.authenticated == true)
        #expect(peer.waitForClose())
    }

    @Test(arguments: [
        (#"["p",0]["p",1]}["p",99]"#, "malformed json message:"),
        (#"["p",0] ["p",1] {"not":"an array"}["p",99]"#, "malformed json message: not an array"),
        (#"["p",0]["p",1][]["p",99]"#, "malformed json message: no port name"),
    ])
    func malformedJSONFrameEndsTheStream(_ input: String, _ expected: String) throws {
        let (endpoint, peer) = try Self.authenticatedRawPeer(framing: .json)
        peer.write(input)
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.messages == [[.text("p"), .int(0)], [.text("p"), .int(1)]])
        #expect(endpoint.closed?.message.hasPrefix(expected) == true)
        #expect(endpoint.closed?.authenticated == true)
    }

    @Test func cborByteStringPortNamesBecomeText() throws {
        let (endpoint, peer) = try Self.authenticatedRawPeer(framing: .cbor)
        var bytes = ByteBuffer()
        bytes.writeCBOR(.array([.bytes(ByteBuffer(string: "g_slave")), .bytes(ByteBuffer(string: "x"))]))
        bytes.writeCBOR(.array([.bytes(ByteBuffer(bytes: [0x63, 0x61, 0x66, 0xE9]))]))
        peer.write(bytes.readableBytesView)
        #expect(TransportTest.wait { endpoint.messages.count == 2 })
        #expect(endpoint.messages.first == [.text("g_slave"), .bytes(ByteBuffer(string: "x"))])
        #expect(endpoint.messages.last == [.text("café")])
    }

    @Test func oversizeCBORItemIsRefused() throws {
        let (endpoint, peer) = try Self.authenticatedRawPeer(framing: .cbor)
        // An array whose byte string claims 1 GiB: refused as soon as its head arrives.
        peer.write([0x82, 0x41, 0x70, 0x5A, 0x40, 0x00, 0x00, 0x00, 0x00])
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message.hasPrefix("malformed cbor message:") == true)
        #expect(endpoint.messages.isEmpty)
    }

    @Test func peerEndOfFileAfterMessages() throws {
        let (endpoint, peer) = try Self.authenticatedRawPeer(framing: .json)
        peer.write(#"["p","last words"]"#)
        peer.closeSocket()
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.messages == [[.text("p"), .text("last words")]])
        #expect(endpoint.closed?.message == "Unexpected end-of-file")
        #expect(endpoint.closed?.authenticated == true)
    }

    @Test func closeInsideReceivedStopsDelivery() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        try endpoint.onLoop {
            endpoint.onReceived = { endpoint, message in
                if message == [.text("p"), .int(2)] { endpoint.connection?.close() }
            }
        }
        var machine = HandshakeStateMachine(
            configuration: TransportTest.configuration("raw", framings: [.cbor]), peerAddress: "127.0.0.1:1")
        var bytes = ByteBuffer()
        for index in 0..<10 { bytes.writeCBOR(.array([.text("p"), .int(Int64(index))])) }
        // The messages travel in the same segment as the auth line: all are buffered at once.
        _ = try peer.handshake(&machine, appendingToAuthLine: Array(bytes.readableBytesView)).get()
        #expect(peer.waitForClose())
        #expect(endpoint.messages == (0..<3).map { [.text("p"), .int(Int64($0))] })
        #expect(endpoint.closed == nil)
    }

    @Test func closeDuringHandshakeReportsNothing() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        #expect(peer.readLines(2).count == 2)
        try endpoint.close()
        #expect(peer.waitForClose())
        usleep(50_000)
        #expect(endpoint.closed == nil && endpoint.closedCount == 0)
    }

    // MARK: TLS

    @Test func tlsWithNodeCertificates() throws {
        let certificates = try NodeCertificates.shared.get()
        let tlsA = try TLSContext.aempNode(certificatePEM: certificates.nodeA)
        let tlsB = try TLSContext.aempNode(certificatePEM: certificates.nodeB)
        let (a, b) = try Self.pair(
            dialler: TransportTest.configuration("alpha", secret: nil, tls: true),
            acceptor: TransportTest.configuration("beta", secret: nil, tls: true),
            diallerTLS: tlsA, acceptorTLS: tlsB)
        try #require(TransportTest.wait { a.result != nil && b.result != nil })
        for side in [a, b] {
            #expect(side.result?.tls == true)
            #expect(side.result?.sendAuth == .tlsSHA3_512 && side.result?.receiveAuth == .tlsSHA3_512)
            #expect(side.result?.trusted == true)
        }
        for index in 0..<50 {
            try a.send("p\(index)", TransportTest.elements(index))
            try b.send("q\(index)", TransportTest.elements(index))
        }
        #expect(TransportTest.wait { a.messages.count == 50 && b.messages.count == 50 })
        #expect(b.messages.last == [.text("p49")] + TransportTest.elements(49))
        #expect(a.messages.last == [.text("q49")] + TransportTest.elements(49))
        try a.close()
        #expect(TransportTest.wait { b.closed != nil })
        #expect(b.closed?.authenticated == true)
    }

    @Test func resetDuringHandshakeReportsTheSystemError() throws {
        let (endpoint, peer) = try Self.withRawPeer()
        // Closing with our greeting unread makes the kernel answer with a reset.
        usleep(50_000)
        peer.closeSocket()
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message == "Connection reset by peer")
        #expect(endpoint.closed?.authenticated == false)
    }

    @Test func tlsWithUntrustedCertificateFails() throws {
        let certificates = try NodeCertificates.shared.get()
        let (a, b) = try Self.pair(
            dialler: TransportTest.configuration("alpha", secret: nil, tls: true),
            acceptor: TransportTest.configuration("beta", secret: nil, tls: true),
            diallerTLS: try TLSContext.aempNode(certificatePEM: certificates.nodeA),
            acceptorTLS: try TLSContext.aempNode(certificatePEM: certificates.rogue))
        #expect(TransportTest.wait { a.closed != nil && b.closed != nil })
        #expect(a.result == nil && b.result == nil)
        #expect(a.closed?.authenticated == false && b.closed?.authenticated == false)
        #expect(a.closed?.message.isEmpty == false)
    }

    @Test func nodeContextNeedsKeyAndCertificate() throws {
        #expect(throws: HandleError.self) { try TLSContext.aempNode(certificatePEM: "no pem here") }
    }

    // MARK: DataConn

    @Test func dataConnHandsTheHandleOver() throws {
        let (a, b) = try Self.pair(
            dialler: TransportTest.configuration("alpha"), acceptor: TransportTest.configuration("beta"),
            diallerProtocol: Greeting.aempDataConn, dataConnID: "b@alpha",
            configure: { a, b in
                for (side, greeting) in [(a, "from alpha\n"), (b, "from beta\n")] {
                    side.enterDataPhase = false
                    side.onAuthenticated = { endpoint, _ in
                        let handle = endpoint.handle
                        handle.onError { _, error in endpoint.record("error \(error.message)") }
                        handle.onEof { _ in endpoint.record("eof") }
                        handle.pushWrite(greeting)
                        handle.pushRead(.line()) { _, line in endpoint.record("line \(line.string)") }
                    }
                }
            })
        #expect(TransportTest.wait { a.events.count >= 1 && b.events.count >= 1 })
        #expect(a.events == ["line from beta"])
        #expect(b.events == ["line from alpha"])
        #expect(a.result?.protocolName == Greeting.aempDataConn)
        #expect(b.result?.protocolName == Greeting.aempDataConn)
        #expect(b.result?.peerGreeting["dataconn_id"] == "b@alpha")
        #expect(a.closed == nil && b.closed == nil)
        #expect(try a.onLoop { a.connection!.isConnected } == false)
        try a.close()  // does nothing: the handle belongs to the new owner
        try a.onLoop { a.handle.pushWrite("still here\n") }
        try b.onLoop { b.handle.pushRead(.line()) { _, line in b.record("line \(line.string)") } }
        #expect(TransportTest.wait { b.events.count == 2 })
        #expect(b.events.last == "line still here")
        try a.onLoop { a.handle.destroy() }
        try b.onLoop { b.handle.destroy() }
    }

    @Test func dataConnBytesAfterTheAuthLineStayInTheHandle() throws {
        let (endpoint, peer) = try Self.withRawPeer(TransportTest.configuration("beta"))
        try endpoint.onLoop {
            endpoint.enterDataPhase = false
            endpoint.onAuthenticated = { endpoint, _ in
                endpoint.record("buffered \(endpoint.handle.readBuffer.readableBytes)")
                endpoint.handle.onError { _, error in endpoint.record("error \(error.message)") }
                endpoint.handle.pushRead(.line()) { _, line in endpoint.record("line \(line.string)") }
            }
        }
        var machine = HandshakeStateMachine(
            configuration: TransportTest.configuration("alpha"), protocolName: Greeting.aempDataConn,
            peerAddress: "127.0.0.1:4040", dataConnID: "c@alpha")
        let payload = "raw bytes\n"
        let result = try peer.handshake(&machine, appendingToAuthLine: Array(payload.utf8)).get()
        #expect(result.protocolName == Greeting.aempDataConn)
        #expect(TransportTest.wait { endpoint.events.count >= 2 })
        #expect(endpoint.events == ["buffered \(payload.utf8.count)", "line raw bytes"])
        #expect(endpoint.messages.isEmpty && endpoint.closed == nil)
        try endpoint.onLoop { endpoint.handle.destroy() }
    }

    // MARK: Captures

    @Test(arguments: [2, 3])
    func replayOfCapturedSession(_ number: Int) throws {
        let captured = try Captures.connection(number)
        let (clientLines, _) = try CapturedConnection.lines(captured.clientBytes, count: 3)
        let (serverLines, serverRest) = try CapturedConnection.lines(captured.serverBytes, count: 3)
        let greeting = try Greeting(parsing: clientLines[0])
        let nonce = String(decoding: clientLines[1], as: UTF8.self)
        let configuration = HandshakeConfiguration(
            nodeID: greeting.nodeID, secret: Captures.secret, authAccept: greeting.authMethods,
            framings: greeting.framings)

        // The server's messages, decoded independently of the connection.
        let serverAuth = String(decoding: serverLines[2], as: UTF8.self).split(separator: ";")
        let framing = Framing(rawValue: String(serverAuth[2]))
        var expected: [[Value]] = []
        var rest = ByteBuffer(bytes: serverRest)
        var json = JSONStreamDecoder()
        var cbor = CBORStreamDecoder()
        while true {
            let value: Value? = if framing == .json { try json.next(from: &rest) } else { try cbor.next(from: &rest) }
            guard case .array(var elements)? = value else { break }
            if case .bytes(let name) = elements[0] { elements[0] = .text(String(buffer: name)) }
            expected.append(elements)
        }
        #expect(expected.count >= 3)

        let fds = try TransportTest.socketPair()
        let endpoint = try Endpoint(fd: fds.dialler)
        let peer = RawPeer(fd: fds.acceptor)
        try endpoint.start(
            configuration, direction: .dialled(address: "127.0.0.1:4040"), fixed: (greeting, nonce))
        let sent = peer.readLines(2)
        #expect(sent == clientLines.prefix(2).map { String(decoding: $0, as: UTF8.self) })
        peer.write(captured.serverBytes)
        let auth = peer.readLines(1)
        #expect(auth == [String(decoding: clientLines[2], as: UTF8.self)])
        #expect(TransportTest.wait { endpoint.messages.count == expected.count })
        #expect(endpoint.messages == expected)
        let result = try #require(endpoint.result)
        #expect(result.peerNodeID == NodeID("echo") && result.receiveFraming == framing)
        #expect(endpoint.closed == nil)
        peer.closeSocket()
        #expect(TransportTest.wait { endpoint.closed != nil })
        #expect(endpoint.closed?.message == "Unexpected end-of-file")
    }
}
