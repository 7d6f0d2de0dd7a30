import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

@Suite("Data-phase message framing")
struct MessageFramingTests {
    /// Connection 2 (JSON both ways): decode the whole data phase after the auth lines, then write
    /// every message again — the bytes must equal what Perl sent.
    @Test(arguments: [(true, 26), (false, 19)])
    func capturedJSONStreamRoundTrips(_ clientToServer: Bool, _ count: Int) throws {
        let connection = try Captures.connection(2)
        let rest = try CapturedConnection.lines(clientToServer ? connection.clientBytes : connection.serverBytes, count: 3).rest
        var decoder = MessageStreamDecoder.json()
        var buffer = ByteBuffer(bytes: rest)
        var messages: [[Value]] = []
        while let message = try decoder.next(from: &buffer) { messages.append(message) }
        #expect(buffer.readableBytes == 0)
        #expect(messages.count == count)
        var written = ByteBuffer()
        for message in messages { try written.writeJSONMessage(message) }
        #expect(Array(written.readableBytesView) == rest)
        if clientToServer {
            #expect(messages[0] == [.text(""), .text("g_slave")])
        } else {
            #expect(messages[0] == [.text(""), .text("g_global")])
        }
    }

    @Test(arguments: [1, 3, 50])
    func splitInput(_ chunk: Int) throws {
        let bytes = Array(#"["","g_slave"] ["","g_find","echo"]"#.utf8) + Array("\n[\"DIIBdJVBPb\",1,2.5]".utf8)
        var decoder = MessageStreamDecoder.json()
        var buffer = ByteBuffer()
        var messages: [[Value]] = []
        var offset = 0
        while offset < bytes.count {
            buffer.writeBytes(bytes[offset..<min(offset + chunk, bytes.count)])
            offset += chunk
            while let message = try decoder.next(from: &buffer) { messages.append(message) }
        }
        #expect(messages.count == 3)
        #expect(messages[2] == [.text("DIIBdJVBPb"), .int(1), .float(2.5)])
    }

    @Test func nonArrayMessagesAreErrors() throws {
        var decoder = MessageStreamDecoder.json()
        var object = ByteBuffer(string: #"{"a":1}"#)
        #expect(throws: MessageFramingError.self) { try decoder.next(from: &object) }
        var scalar = ByteBuffer(string: #""text" "#)
        var fresh = MessageStreamDecoder.json()
        #expect(throws: JSONError.self) { try fresh.next(from: &scalar) }
        #expect(MessageFramingError("x").description == "x")
    }

    @Test func lastMessageAtEndOfStream() throws {
        var decoder = MessageStreamDecoder.json()
        var buffer = ByteBuffer(string: #"["a"]"#)
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == [.text("a")])
        #expect(try decoder.decodeLast(buffer: &buffer, seenEOF: true) == nil)
        var partial = ByteBuffer(string: #"["a""#)
        #expect(try decoder.decode(buffer: &partial) == nil)
        #expect(throws: JSONError.self) { try decoder.decodeLast(buffer: &partial, seenEOF: true) }
    }

    @Test func unencodableMessageWritesNothing() {
        var buffer = ByteBuffer()
        #expect(throws: JSONError.self) { try buffer.writeJSONMessage([.text(""), .float(.infinity)]) }
        #expect(buffer.readableBytes == 0)
    }
}
