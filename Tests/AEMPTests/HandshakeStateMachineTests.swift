import NIOCore
import Testing

@testable import AEMP

typealias Directive = HandshakeStateMachine.Directive

/// Runs two Swift machines against each other in memory (no sockets), TLS simulated.
struct HandshakePair {
    var a: HandshakeStateMachine
    var b: HandshakeStateMachine
    var aDirectives: [Directive] = []
    var bDirectives: [Directive] = []

    init(_ a: HandshakeConfiguration, _ b: HandshakeConfiguration, aNonce: String? = nil, bNonce: String? = nil) {
        self.a = HandshakeStateMachine(configuration: a, peerAddress: "127.0.0.1:2", nonce: aNonce ?? HandshakeNonce.generate())
        self.b = HandshakeStateMachine(configuration: b, peerAddress: "127.0.0.1:1", nonce: bNonce ?? HandshakeNonce.generate())
    }

    mutating func run() {
        var toA = ByteBuffer()
        var toB = ByteBuffer()
        func deliver(_ directives: [Directive], to buffer: inout ByteBuffer) {
            for case .send(let text) in directives { buffer.writeString(text) }
        }
        var new = a.start()
        aDirectives += new
        deliver(new, to: &toB)
        new = b.start()
        bDirectives += new
        deliver(new, to: &toA)
        for _ in 0..<10 {
            new = a.receive(&toA)
            aDirectives += new
            deliver(new, to: &toB)
            new = b.receive(&toB)
            bDirectives += new
            deliver(new, to: &toA)
            let aTLS = aDirectives.contains { if case .startTLS = $0 { true } else { false } }
            let bTLS = bDirectives.contains { if case .startTLS = $0 { true } else { false } }
            if aTLS && bTLS {
                new = a.tlsEstablished()
                aDirectives += new
                deliver(new, to: &toB)
                new = b.tlsEstablished()
                bDirectives += new
                deliver(new, to: &toA)
            }
            if a.isFinished && b.isFinished { return }
        }
    }

    static func result(_ directives: [Directive]) -> HandshakeResult? {
        for case .authenticated(let result) in directives { return result }
        return nil
    }

    static func error(_ directives: [Directive]) -> HandshakeError? {
        for case .fail(let error) in directives { return error }
        return nil
    }

    var aResult: HandshakeResult? { Self.result(aDirectives) }
    var bResult: HandshakeResult? { Self.result(bDirectives) }
    var aError: HandshakeError? { Self.error(aDirectives) }
    var bError: HandshakeError? { Self.error(bDirectives) }
}

func config(
    _ name: String, secret: String? = "s3cret", tls: Bool = false, offer: [AuthMethod] = AuthMethod.defaultOffer,
    accept: [AuthMethod] = AuthMethod.defaultAccept, framings: [Framing] = Framing.supported
) -> HandshakeConfiguration {
    HandshakeConfiguration(
        nodeID: NodeID(name)!, secret: secret, tlsAvailable: tls, authOffer: offer, authAccept: accept, framings: framings)
}

@Suite("Handshake state machine")
struct HandshakeStateMachineTests {
    @Test func twoSwiftNodesWithSecret() throws {
        var pair = HandshakePair(config("a"), config("b"))
        pair.run()
        let a = try #require(pair.aResult)
        let b = try #require(pair.bResult)
        #expect(a.peerNodeID.rawValue == "b" && b.peerNodeID.rawValue == "a")
        #expect(a.sendFraming == .cbor && a.receiveFraming == .cbor)
        #expect(a.sendAuth == .hmacSHA3_512 && !a.tls && a.trusted)
    }

    /// Framing per direction: each side sends the first of the **peer's** list that it speaks.
    @Test(arguments: [
        ([Framing.json], [Framing.cbor, .json], Framing.json, Framing.json),
        ([Framing.cbor, .json], [Framing.json, .cbor], Framing.json, Framing.cbor),
        ([Framing.storable, .cbor], [Framing.storable, .json, .cbor], Framing.cbor, Framing.cbor),
    ])
    func framingPerDirection(_ aList: [Framing], _ bList: [Framing], _ aSends: Framing, _ bSends: Framing) throws {
        var pair = HandshakePair(config("a", framings: aList), config("b", framings: bList))
        pair.run()
        let a = try #require(pair.aResult)
        let b = try #require(pair.bResult)
        #expect(a.sendFraming == aSends && b.receiveFraming == aSends)
        #expect(b.sendFraming == bSends && a.receiveFraming == bSends)
    }

    @Test func wrongSecret() {
        var pair = HandshakePair(config("a", secret: "one"), config("b", secret: "two"))
        pair.run()
        #expect(pair.aError?.code == .authenticationFailure)
        #expect(pair.bError?.code == .authenticationFailure)
        #expect(pair.aResult == nil && pair.bResult == nil)
    }

    @Test func tlsWithSHA3() throws {
        var pair = HandshakePair(config("a", secret: nil, tls: true), config("b", secret: nil, tls: true))
        pair.run()
        let roles = (pair.aDirectives + pair.bDirectives).compactMap { if case .startTLS(let r) = $0 { r } else { nil } }
        #expect(Set(roles) == [.client, .server])
        let a = try #require(pair.aResult)
        #expect(a.tls && a.sendAuth == .tlsSHA3_512 && a.receiveAuth == .tlsSHA3_512 && a.trusted)
        #expect(pair.bResult?.tls == true)
    }

    @Test func tlsAnonMarksPeerUntrusted() throws {
        var pair = HandshakePair(
            config("a", secret: nil, tls: true, offer: [.tlsAnon]), config("b", secret: nil, tls: true, accept: [.tlsAnon]))
        pair.run()
        // b accepts only tls_anon, so a sends it; a accepts the default list, b sends tls_sha3_512.
        let b = try #require(pair.bResult)
        #expect(b.receiveAuth == .tlsAnon && !b.trusted)
        let a = try #require(pair.aResult)
        #expect(a.receiveAuth == .tlsSHA3_512 && a.trusted)
    }

    @Test func tlsOnlyWhenBothSidesHaveIt() throws {
        var pair = HandshakePair(config("a", tls: true), config("b"))
        pair.run()
        #expect(pair.aResult?.tls == false && pair.aResult?.sendAuth == .hmacSHA3_512)
    }

    @Test func tlsWithHMACSelectedIsUnsupported() {
        var pair = HandshakePair(config("a", tls: true), config("b", tls: true, accept: [.hmacSHA3_512]))
        pair.run()
        #expect(pair.aError?.message == "hmac_sha3_512: fatal, selected unsupported snd auth method")
    }

    @Test(arguments: [true, false])
    func identicalNonces(_ tls: Bool) {
        var pair = HandshakePair(config("a", tls: tls), config("b", tls: tls), aNonce: "same", bNonce: "same")
        pair.run()
        #expect(pair.aError?.code == .identicalNonces)
        #expect(pair.bError?.message == "authentication error, identical nonces")
    }

    @Test func noSecretAndNoTLS() {
        var pair = HandshakePair(config("a", secret: nil), config("b", secret: ""))
        pair.run()
        #expect(pair.aError?.message == "unable to handshake TLS and no shared secret configured")
        #expect(pair.bError?.code == .noSecretOrTLS)
    }

    /// Like Perl, the Swift node never sends `cleartext`, even when it is in `auth_offer`.
    @Test func cleartextIsNeverSent() {
        var pair = HandshakePair(config("a", offer: [.cleartext, .hmacSHA3_512]), config("b", accept: [.cleartext]))
        pair.run()
        #expect(pair.aError?.message == "cleartext: fatal, selected unsupported snd auth method")
    }

    @Test func upgradesMustBeRegistered() {
        var configuration = config("a")
        configuration.protocolUpgrades = []
        var machine = HandshakeStateMachine(configuration: configuration, peerAddress: nil)
        let line = "aemp-dataconn;1;b;hmac_sha3_512;json;dataconn_id=b@b"
        #expect(
            HandshakePair.error(machine.receiveLine(Array(line.utf8)))?.message
                == "unparsable greeting, expected 'aemp', got 'aemp-dataconn'")
        var dialler = HandshakeStateMachine(configuration: config("a"), protocolName: Greeting.aempDataConn, peerAddress: nil)
        #expect(
            HandshakePair.error(dialler.receiveLine(Array("aemp-other;1;b;x;json".utf8)))?.message
                == "unparsable greeting, expected 'aemp-dataconn', got 'aemp-other'")
    }

    @Test func noCommonAuth() {
        var pair = HandshakePair(config("a"), config("b", accept: [.cleartext, AuthMethod(rawValue: "x")]))
        pair.run()
        #expect(pair.aError?.message == "cleartext,x: no common auth type supported")
    }

    @Test func noCommonFraming() {
        var pair = HandshakePair(config("a"), config("b", framings: [.storable]))
        pair.run()
        #expect(pair.aError?.message == "storable: no common framing method supported")
        #expect(pair.bError?.message == "cbor,json: no common framing method supported")
    }

    /// A peer authenticating with a method we do not accept.
    @Test func receivedMethodNotAccepted() {
        var pair = HandshakePair(config("a", accept: [.tlsSHA3_512, .hmacSHA3_512]), config("b"))
        pair.run()
        #expect(pair.aResult != nil)
        var refusing = HandshakePair(config("a", accept: [.tlsSHA3_512]), config("b"))
        refusing.run()
        // b may not send hmac (a does not list it), and there is no TLS.
        #expect(refusing.bError?.code == .noCommonAuth)
    }

    @Test func versionMismatch() {
        var machine = HandshakeStateMachine(configuration: config("a"), peerAddress: nil)
        let directives = machine.receiveLine(Array("aemp;2;b;hmac_sha3_512;json".utf8))
        #expect(directives.count == 2)
        #expect(HandshakePair.error(directives)?.message == "version mismatch (we: 1, they: 2)")
        #expect(machine.receiveLine(Array("more".utf8)).isEmpty)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1", "unparsable greeting, expected 'aemp', got 'GET / HTTP/1.1'"),
        ("aemp-foo;1;b;x;json", "unparsable greeting, expected 'aemp', got 'aemp-foo'"),
        ("", "unparsable greeting, expected 'aemp', got ''"),
        ("aemp;1;b", "unparsable greeting: 3 fields, expected at least 5"),
        ("aemp;1.0;b#c;x;json", "unparsable greeting: invalid node ID 'b#c': node ID contains '#'"),
        ("aemp;x;b;x;json", "version mismatch (we: 1, they: x)"),
    ])
    func garbageGreetings(_ line: String, _ message: String) {
        var machine = HandshakeStateMachine(configuration: config("a"), peerAddress: nil)
        #expect(HandshakePair.error(machine.receiveLine(Array(line.utf8)))?.message == message)
    }

    /// A DataConn dialler gets its own greeting echoed back (no self check applies to DataConn).
    @Test func echoAttack() {
        var machine = HandshakeStateMachine(
            configuration: config("a"), protocolName: Greeting.aempDataConn, peerAddress: "x", dataConnID: "b@a")
        var buffer = ByteBuffer()
        guard case .send(let greeting) = machine.start().first else { return }
        buffer.writeString(greeting)
        let directives = machine.receive(&buffer)
        #expect(HandshakePair.error(directives)?.message == "authentication error, echo attack?")
    }

    @Test func selfConnection() {
        var pair = HandshakePair(config("same"), config("same"))
        pair.run()
        #expect(pair.aError?.message == "I refuse to talk to myself")
        #expect(pair.bError?.code == .selfConnection)
    }

    @Test func oversizeGreeting() {
        var machine = HandshakeStateMachine(configuration: config("a"), peerAddress: nil)
        var buffer = ByteBuffer(repeating: UInt8(ascii: "a"), count: 5000)
        let directives = machine.receive(&buffer)
        #expect(HandshakePair.error(directives)?.code == .lineTooLong)
        #expect(HandshakePair.error(directives)?.message == "No space left on device")
        #expect(machine.isFinished)
    }

    /// Garbage instead of an auth line after a valid greeting.
    @Test(arguments: [
        ("GARBAGE", "GARBAGE: fatal, selected unsupported rcv auth method"),
        ("", ": fatal, selected unsupported rcv auth method"),
        ("hmac_sha3_512;deadbeef;json", "authentication failure/shared secret mismatch"),
        ("hmac_sha3_512", "authentication failure/shared secret mismatch"),
    ])
    func garbageAuthLine(_ line: String, _ message: String) {
        var pair = HandshakePair(config("a"), config("b"))
        var toA = ByteBuffer()
        _ = pair.a.start()
        guard case .send(let greeting) = pair.b.start().first else { return }
        toA.writeString(greeting + line + "\n")
        let directives = pair.a.receive(&toA)
        #expect(HandshakePair.error(directives)?.message == message)
    }

    /// Cleartext is accepted (even without TLS) when configured, and the framing must be usable.
    @Test func cleartextAndUnusableFraming() throws {
        var machine = HandshakeStateMachine(configuration: config("a", secret: "abc"), peerAddress: nil)
        _ = machine.start()
        _ = machine.receiveLine(Array("aemp;1;py;hmac_sha3_512;json".utf8))
        _ = machine.receiveLine(Array("nonce".utf8))
        let ok = machine.receiveLine(Array("cleartext;616263;json".utf8))
        let result = try #require(HandshakePair.result(ok))
        #expect(result.receiveAuth == .cleartext && result.receiveFraming == .json && result.sendFraming == .json)

        var strict = HandshakeStateMachine(
            configuration: config("a", secret: "abc", accept: [.hmacSHA3_512]), peerAddress: nil)
        _ = strict.receiveLine(Array("aemp;1;py;hmac_sha3_512;json".utf8))
        _ = strict.receiveLine(Array("nonce".utf8))
        #expect(
            HandshakePair.error(strict.receiveLine(Array("cleartext;616263;json".utf8)))?.message
                == "cleartext: fatal, selected unsupported rcv auth method")

        var framing = HandshakeStateMachine(configuration: config("a", secret: "abc"), peerAddress: nil)
        _ = framing.receiveLine(Array("aemp;1;py;hmac_sha3_512;json".utf8))
        _ = framing.receiveLine(Array("nonce".utf8))
        #expect(
            HandshakePair.error(framing.receiveLine(Array("cleartext;616263;storable".utf8)))?.message
                == "storable: unusable remote framing")
    }

    @Test func timeout() {
        var machine = HandshakeStateMachine(configuration: config("a"), peerAddress: nil)
        _ = machine.start()
        #expect(HandshakePair.error(machine.timedOut())?.message == "Connection timed out")
        #expect(machine.timedOut().isEmpty)
    }

    @Test func linesWhileTLSStarts() {
        var pair = HandshakePair(config("a", tls: true), config("b", tls: true))
        var toA = ByteBuffer()
        _ = pair.a.start()
        guard case .send(let greeting) = pair.b.start().first else { return }
        toA.writeString(greeting + "early\n")
        let directives = pair.a.receive(&toA)
        #expect(directives.contains { if case .startTLS = $0 { true } else { false } })
        #expect(String(buffer: toA) == "early\n")  // left for TLS
        #expect(HandshakePair.error(pair.a.receiveLine(Array("x".utf8)))?.code == .unexpectedInput)
        #expect(pair.a.tlsEstablished().isEmpty)
    }

    @Test func startIsIdempotent() {
        var machine = HandshakeStateMachine(configuration: config("a"), peerAddress: "1.2.3.4:5", nonce: "N")
        let first = machine.start()
        #expect(
            first == [.send("aemp;1;a;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;provider=swift-aemp/AE-2.01;peeraddr=1.2.3.4:5;mproto=1;gproto=1\nN\n")])
        #expect(machine.start().isEmpty)
        #expect(!machine.isFinished)
        #expect(machine.tlsEstablished().isEmpty)
    }

    @Test func upgradeNames() {
        #expect(HandshakeStateMachine.isUpgrade("aemp-dataconn"))
        #expect(HandshakeStateMachine.isUpgrade("aemp-x_1"))
        #expect(!HandshakeStateMachine.isUpgrade("aemp-"))
        #expect(!HandshakeStateMachine.isUpgrade("aemp-a b"))
        #expect(!HandshakeStateMachine.isUpgrade("aemp"))
    }
}
