import NIOCore
import Testing

@testable import AEMP

@Suite("Greeting line 1")
struct GreetingTests {
    /// Every greeting line 1 of the capture parses and formats back to the same bytes.
    @Test(arguments: Captures.greetingLines)
    func capturedGreetingsRoundTrip(_ line: String) throws {
        let greeting = try Greeting(parsing: line)
        #expect(greeting.line == line)
        #expect(greeting.version == "1")
        #expect(greeting.versionNumber == 1)
        #expect(greeting.authMethods == AuthMethod.defaultAccept)
        #expect(greeting["provider"] == "AE-2.01")
        #expect(greeting["peeraddr"]?.hasPrefix("127.0.0.1:") == true)
        #expect(!greeting.wantsTLS)
        if greeting.protocolName == Greeting.aemp {
            #expect(greeting["mproto"] == "1" && greeting["gproto"] == "1")
        } else {
            #expect(greeting.protocolName == Greeting.aempDataConn)
            #expect(greeting["mproto"] == nil)
            #expect(greeting["dataconn_id"]?.hasSuffix("@" + greeting.nodeID.rawValue) == true)
        }
    }

    @Test func capturedGreetingCount() throws {
        _ = try Captures.loadedConnections.get()
        #expect(Captures.greetingLines.count == 20)
    }

    @Test func fieldsOfTheWorkedExample() throws {
        let greeting = try Greeting(parsing: HandshakeAuthTests.l1)
        #expect(greeting.protocolName == "aemp")
        #expect(greeting.nodeID == NodeID("client-json"))
        #expect(greeting.framings == [.json])
        #expect(greeting.items.map(\.key) == ["peeraddr", "mproto", "gproto", "provider"])
        #expect(greeting["peeraddr"] == "127.0.0.1:4040")
        #expect(greeting["missing"] == nil)
    }

    @Test func dataConnGreetingOfConnection5() throws {
        let line = try #require(try Captures.connection(5).clientLines(1).first)
        let greeting = try Greeting(parsing: line)
        #expect(greeting.protocolName == "aemp-dataconn")
        #expect(greeting.nodeID.rawValue == "dc-line")
        #expect(greeting["dataconn_id"] == "b@dc-line")
        #expect(greeting.framings == [.cbor, .json, .storable])
        #expect(!Framing.storable.isSupported)
    }

    @Test func itemSyntax() throws {
        let greeting = try Greeting(parsing: "aemp;1;n;;;a=b=c;bare;empty=;a=last;tls=1.0")
        #expect(greeting.authMethods.isEmpty && greeting.framings.isEmpty)
        #expect(greeting.items[0] == Greeting.Item(key: "a", value: "b=c"))
        #expect(greeting.items[1] == Greeting.Item(key: "bare", value: nil))
        #expect(greeting["bare"] == nil)
        #expect(greeting["empty"] == "")
        #expect(greeting["a"] == "last")
        #expect(greeting.wantsTLS)
        #expect(greeting.line == "aemp;1;n;;;a=b=c;bare;empty=;a=last;tls=1.0")
    }

    @Test(arguments: [("1.0", true), ("1", true), ("1.9", true), ("2", false), ("0.5", false), ("abc", false), ("", false)])
    func tlsKey(_ value: String, _ wanted: Bool) throws {
        #expect(try Greeting(parsing: "aemp;1;n;x;json;tls=\(value)").wantsTLS == wanted)
    }

    @Test(arguments: [("1", 1.0), ("1.0", 1.0), ("01", 1.0), (" 1", 1.0), ("2", 2.0), ("1abc", 1.0), ("abc", 0.0), ("", 0.0), ("-3.5", -3.5), ("1e1", 10.0)])
    func perlNumbers(_ text: String, _ value: Double) {
        #expect(PerlNumber.parse(text) == value)
    }

    @Test(arguments: [
        "aemp;1;n;x", "aemp", "", "aemp;1;;x;json", "aemp;1;a#b;x;json",
        "aemp;1;\(String(repeating: "n", count: NodeID.maximumLength + 1));x;json",
    ])
    func malformedGreetings(_ line: String) {
        #expect(throws: HandshakeError(.unparsableGreeting, "")) { try Greeting(parsing: line) }
    }

    @Test func notUTF8() {
        let bytes: [UInt8] = Array("aemp;1;n".utf8) + [0xFF, 0xFE] + Array(";x;json".utf8)
        #expect(throws: HandshakeError(.unparsableGreeting, "")) { try Greeting(parsing: bytes) }
    }

    @Test func localGreetingHasPerlsKeys() throws {
        let node = try NodeID(validating: "swift")
        let greeting = Greeting.local(
            nodeID: node, authAccept: AuthMethod.defaultAccept, framings: Framing.supported, peerAddress: "127.0.0.1:4040")
        #expect(
            greeting.line
                == "aemp;1;swift;tls_sha3_512,hmac_sha3_512,tls_anon,cleartext;cbor,json;provider=swift-aemp/AE-2.01;peeraddr=127.0.0.1:4040;mproto=1;gproto=1"
        )
        let dataConn = Greeting.local(
            protocolName: Greeting.aempDataConn, nodeID: node, authAccept: [.hmacSHA3_512], framings: [.json],
            peerAddress: nil, tls: true, dataConnID: "b@swift")
        #expect(dataConn.line == "aemp-dataconn;1;swift;hmac_sha3_512;json;provider=swift-aemp/AE-2.01;tls=1.0;dataconn_id=b@swift")
        #expect(dataConn.wantsTLS)
        #expect(try Greeting(parsing: dataConn.line) == dataConn)
    }

    @Test func protocolAndVersionPeek() {
        #expect(Greeting.protocolAndVersion(of: Array("aemp;2;x".utf8)) == ("aemp", "2"))
        #expect(Greeting.protocolAndVersion(of: Array("GET / HTTP/1.1".utf8)) == ("GET / HTTP/1.1", ""))
        #expect(Greeting.protocolAndVersion(of: []) == ("", ""))
    }
}

@Suite("Handshake line reader")
struct HandshakeLineReaderTests {
    @Test func splitsLinesAndStripsCR() throws {
        var reader = HandshakeLineReader()
        var buffer = ByteBuffer(string: "one\r\ntwo\nthr")
        #expect(try reader.nextLine(from: &buffer) == Array("one".utf8))
        #expect(try reader.nextLine(from: &buffer) == Array("two".utf8))
        #expect(try reader.nextLine(from: &buffer) == nil)
        #expect(buffer.readableBytes == 3)
        buffer.writeString("ee\n\nrest")
        #expect(try reader.nextLine(from: &buffer) == Array("three".utf8))
        #expect(try reader.nextLine(from: &buffer) == [])
        #expect(try reader.nextLine(from: &buffer) == nil)
        #expect(buffer.readableBytes == 4)
    }

    @Test(arguments: [1, 2, 7, 64])
    func byteByByteInput(_ chunk: Int) throws {
        let text = Array("aemp;1;x;y;z\nnonce\r\nauth;tok;json\n".utf8)
        var reader = HandshakeLineReader()
        var buffer = ByteBuffer()
        var lines: [[UInt8]] = []
        var offset = 0
        while offset < text.count {
            buffer.writeBytes(text[offset..<min(offset + chunk, text.count)])
            offset += chunk
            while let line = try reader.nextLine(from: &buffer) { lines.append(line) }
        }
        #expect(lines.map { String(decoding: $0, as: UTF8.self) } == ["aemp;1;x;y;z", "nonce", "auth;tok;json"])
    }

    @Test func limitOfUnconsumedInput() throws {
        var reader = HandshakeLineReader()
        var buffer = ByteBuffer(repeating: UInt8(ascii: "x"), count: 4096)
        #expect(try reader.nextLine(from: &buffer) == nil)
        buffer.writeString("x")
        #expect(throws: HandshakeError.lineTooLong) { try reader.nextLine(from: &buffer) }
    }

    @Test func limitOfOneLine() throws {
        var reader = HandshakeLineReader()
        var exact = ByteBuffer(repeating: UInt8(ascii: "x"), count: 4096)
        exact.writeString("\n")
        #expect(try reader.nextLine(from: &exact)?.count == 4096)
        var long = ByteBuffer(repeating: UInt8(ascii: "x"), count: 4097)
        long.writeString("\n")
        let error = #expect(throws: HandshakeError.self) { try reader.nextLine(from: &long) }
        #expect(error?.message == "No space left on device")
    }
}
