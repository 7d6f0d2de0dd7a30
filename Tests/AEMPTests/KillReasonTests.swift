import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

@Suite("Kill reasons")
struct KillReasonTests {
    static func json(_ values: [Value]) throws -> String {
        var buffer = ByteBuffer()
        _ = try buffer.writeJSON(.array(values))
        return String(buffer: buffer)
    }

    @Test func normal() {
        #expect(KillReason.normal.isNormal)
        #expect(KillReason.normal.values.isEmpty)
        #expect(KillReason.normal.tag == nil)
        #expect(KillReason.normal.description == "(normal)")
    }

    @Test func die() {
        let reason = KillReason.die("Illegal division by zero at (eval 18) line 1.\n\n")
        #expect(reason.values == [.text("die"), .text("Illegal division by zero at (eval 18) line 1.")])
        #expect(reason.tag == "die")
        #expect(KillReason.die("plain").string(at: 1) == "plain")
    }

    @Test(arguments: [
        (Value.text("hello"), "no callback found for message 'hello'"),
        (Value.text("a\tb\nc\u{e9}"), "no callback found for message 'a.b.c.'"),
        (Value.text(String(repeating: "x", count: 40)), "no callback found for message '\(String(repeating: "x", count: 30))'"),
        (Value.bytes(ByteBuffer(string: "g_slave")), "no callback found for message 'g_slave'"),
        (Value.int(42), "no callback found for message '42'"),
        (Value.null, "no callback found for message ''"),
        (Value.array([]), "no callback found for message 'ARRAY'"),
    ])
    func unhandledMessage(_ first: Value, _ text: String) {
        let reason = KillReason.unhandledMessage(firstElement: first)
        #expect(reason.values == [.text("unhandled_message"), .text(text)])
    }

    @Test func unhandledEmptyMessage() {
        #expect(KillReason.unhandledMessage(firstElement: nil).string(at: 1) == "no callback found for message ''")
    }

    /// The shapes observed in the capture (spec §5.3, §5.5).
    @Test func capturedShapes() throws {
        let echo2 = try NodeID(validating: "echo2")
        let lost = KillReason.transportError(node: echo2, message: KillReason.unexpectedEndOfFile)
        #expect(try Self.json(lost.values) == #"["transport_error","echo2","Unexpected end-of-file"]"#)
        #expect(lost.isTransportError)
        #expect(lost.description == "transport_error echo2 Unexpected end-of-file")
        let missing = KillReason.noSuchPort(PortID("echo#nonexistent")!)
        // S> ["","kil0","nonexistent","no_such_port","cannot monitor nonexistent port","echo#nonexistent"]
        let kil0: [Value] = [.text(""), .text("kil0"), .text("nonexistent")] + missing.values
        #expect(
            try Self.json(kil0)
                == #"["","kil0","nonexistent","no_such_port","cannot monitor nonexistent port","echo#nonexistent"]"#)
        let user = KillReason.user([.text("test_reason"), .text("killed by features.pl")])
        #expect(user.tag == "test_reason")
        #expect(try Self.json(user.values) == #"["test_reason","killed by features.pl"]"#)
        #expect(
            try Self.json(KillReason.transportError(node: NodeID("nosuchnode")!, message: KillReason.noKnownAddress).values)
                == #"["transport_error","nosuchnode","no known address"]"#)
        #expect(KillReason.transportError(node: echo2, message: KillReason.connectTimeout).string(at: 2) == "connect timeout")
        #expect(KillReason.switchedConnections == "switched connections")
    }

    @Test func dataConn() throws {
        #expect(
            try Self.json(KillReason.dataConn("b: no listeners found").values) == #"["AnyEvent::MP::DataConn","b: no listeners found"]"#)
        #expect(KillReason.dataConn(nil).values == [.text("AnyEvent::MP::DataConn"), .null])
    }

    /// Reasons from Perl over CBOR carry byte strings; tags still read as strings.
    @Test func byteStringTags() {
        let reason = KillReason([.bytes(ByteBuffer(string: "transport_error")), .bytes(ByteBuffer(string: "n")), .int(3)])
        #expect(reason.isTransportError)
        #expect(reason.string(at: 1) == "n")
        #expect(reason.string(at: 2) == nil)
        #expect(reason.string(at: 9) == nil)
        #expect(reason.description == "transport_error n 3")
        #expect(KillReason([.int(1)]).tag == nil)
    }

    @Test func perlStringsOfScalars() {
        #expect(KillReason.perlString(.float(2.5)) == "2.5")
        #expect(KillReason.perlString(.float(3)) == "3")
        #expect(KillReason.perlString(.bool(true)) == "1")
        #expect(KillReason.perlString(.bool(false)) == "")
        #expect(KillReason.perlString(.uint(UInt64.max)) == "18446744073709551615")
        #expect(KillReason.perlString(.map([])) == "HASH")
        #expect(KillReason.perlString(.simple(1)) == "SCALAR")
    }
}
