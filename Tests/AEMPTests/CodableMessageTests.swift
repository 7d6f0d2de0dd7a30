import AEMP
import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Testing

/// Typed messages over real nodes, and their wire shape checked against Perl's own CBOR::XS.
@Suite("Codable messages: typed send, decode and call; the shape Perl sees")
struct CodableMessageTests {
    struct Job: Codable, Equatable, Sendable {
        var name: String
        var tries: Int
        var tags: [String]
        var ratio: Double
        var urgent: Bool
        var note: String?
    }

    struct Sum: Codable, Equatable, Sendable {
        var total: Int
        var count: Int
    }

    static let job = Job(name: "resize", tries: 3, tags: ["a", "b"], ratio: 0.5, urgent: true, note: nil)

    @Test("send(encoding:) and decode: a struct and an Int arrive as they left", .timeLimit(.minutes(1)))
    func sendAndDecode() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        let inbox = seed.messagePort()
        try client.send(inbox.id, encoding: Self.job, 7)
        var iterator = inbox.messages.makeAsyncIterator()
        let message = try #require(await iterator.next())
        let (job, number) = try message.decode(Job.self, Int.self)
        #expect(job == Self.job && number == 7)
        // The wire shape: a map with text keys, then the integer.
        #expect(message.values.count == 2)
        #expect(message.values[0]["name"] == "resize" && message.values[0]["urgent"] == .bool(true))
        // Too few elements: a clear error.
        #expect {
            _ = try message.decode(Job.self, Int.self, String.self)
        } throws: { error in
            "\(error)".contains("the message has 2 elements; element 2 was expected")
        }
        await NodeNetworkTests.shutdown(client, seed)
    }

    @Test("a typed call decodes the reply", .timeLimit(.minutes(1)))
    func typedCall() async throws {
        let (seed, client) = try await NodeNetworkTests.pair()
        // Perl-style adder: the last element is the reply port.
        let adder = seed.port { context, message in
            guard let reply = message.last?.stringValue.flatMap(PortID.init) else { return }
            let numbers = try message.dropLast().map { try ValueDecoder().decode(Int.self, from: $0) }
            try context.node.send(reply, encoding: Sum(total: numbers.reduce(0, +), count: numbers.count))
        }
        let sum = try await client.call(adder, encoding: 1, 2, 39, returning: Sum.self, timeout: .seconds(5))
        #expect(sum == Sum(total: 42, count: 3))
        // A reply that does not fit the type throws a DecodingError.
        await #expect(throws: DecodingError.self) { () async throws in
            _ = try await client.call(adder, encoding: 1, returning: [String].self, timeout: .seconds(5))
        }
        await NodeNetworkTests.shutdown(client, seed)
    }

    // MARK: Perl

    static let perlAvailable: Bool =
        (try? ExternalTool.run(["perl", "-e", "use CBOR::XS; use JSON::XS; 1"], input: ""))?.status == 0

    @Test("Perl's CBOR::XS reads our message as the hash and number it means (a nil optional field is left out)", .enabled(if: perlAvailable))
    func perlReadsOurShape() throws {
        let message: [Value] = [try ValueEncoder().encode(Self.job), try ValueEncoder().encode(7)]
        let cbor = CBOREncoder().encode(.array(message))
        let hex = cbor.readableBytesView.map { String(format: "%02x", $0) }.joined()
        let script = """
            use CBOR::XS; use JSON::XS;
            my $hex = <STDIN>; chomp $hex;
            my $data = decode_cbor(pack "H*", $hex);
            $data->[0]{urgent} = $data->[0]{urgent} ? "true" : "false";   # Types::Serialiser boolean
            print JSON::XS->new->canonical->allow_nonref->encode($data);
            """
        let result = try ExternalTool.run(["perl", "-e", script], input: hex + "\n")
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output == #"[{"name":"resize","ratio":0.5,"tags":["a","b"],"tries":3,"urgent":"true"},7]"#)
    }

    @Test("a message Perl encodes (byte-string keys, 1 for true, a numeric string) decodes into the struct", .enabled(if: perlAvailable))
    func weReadPerlShape() throws {
        let script = """
            use CBOR::XS;
            print unpack "H*", encode_cbor [{ name => "resize", tries => "3", tags => ["a", "b"], ratio => 0.5, urgent => 1, note => undef }, 7];
            """
        let result = try ExternalTool.run(["perl", "-e", script], input: "")
        #expect(result.status == 0, "\(result.error)")
        let value = try CBORDecoder().decode(Self.bytes(fromHex: result.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        guard case .array(let elements) = value else {
            Issue.record("not an array: \(value)")
            return
        }
        let message = PortMessage(source: NodeID("perl")!, values: elements)
        let (job, number) = try message.decode(Job.self, Int.self)
        #expect(job == Self.job && number == 7)
    }

    static func bytes(fromHex hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex, let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex) {
            bytes.append(UInt8(hex[index..<next], radix: 16) ?? 0)
            index = next
        }
        return bytes
    }
}
