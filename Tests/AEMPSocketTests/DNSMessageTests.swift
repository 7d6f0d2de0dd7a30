import AEMPTestSupport
import Testing

@testable import AEMPSocket

@Suite struct DNSMessageTests {
    /// Header: id 0x1234, response, RD+RA, NOERROR, given counts.
    static func header(id: UInt16 = 0x1234, flags: UInt16 = 0x8180, qd: UInt16 = 1, an: UInt16 = 0) -> [UInt8] {
        [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(flags >> 8), UInt8(flags & 0xFF),
         UInt8(qd >> 8), UInt8(qd & 0xFF), UInt8(an >> 8), UInt8(an & 0xFF), 0, 0, 0, 0]
    }

    /// `www.example.com` question, type A, class IN (starts at offset 12).
    static let question: [UInt8] =
        [3] + Array("www".utf8) + [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0, 0, 1, 0, 1]

    @Test func encodesQuery() throws {
        let query = try DNSMessage.query(id: 0xBEEF, name: "www.Example.com.", type: .aaaa)
        #expect(Array(query[0..<12]) == [0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(Array(query[12...]) == [3] + Array("www".utf8) + [7] + Array("Example".utf8) + [3] + Array("com".utf8) + [0, 0, 28, 0, 1])
    }

    @Test(arguments: ["", ".", "a..b", ".a", String(repeating: "x", count: 64) + ".com",
                      (0..<130).map { _ in "ab" }.joined(separator: ".")])
    func rejectsInvalidNames(_ name: String) {
        if name == "." || name == "" {
            // The root is a valid query name.
            #expect((try? DNSMessage.query(id: 1, name: name, type: .a)) != nil)
            return
        }
        #expect(throws: SocketError(.invalidArgument)) { try DNSMessage.query(id: 1, name: name, type: .a) }
    }

    @Test func decodesCompressedAnswers() throws {
        var bytes = Self.header(an: 3) + Self.question
        // www.example.com A 192.0.2.1 via pointer to the question name.
        bytes += [0xC0, 12, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 192, 0, 2, 1]
        // www.example.com CNAME mail.<pointer to example.com at 16>
        bytes += [0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7, 4] + Array("mail".utf8) + [0xC0, 16]
        // SRV 10 20 5222 target "." (root)
        bytes += [0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 60, 0, 7, 0, 10, 0, 20, 0x14, 0x66, 0]
        let message = try DNSMessage.decode(bytes)
        #expect(message.id == 0x1234)
        #expect(message.isResponse && !message.isTruncated && message.responseCode == 0)
        #expect(message.questions.count == 1)
        #expect(message.questions[0].name == "www.example.com" && message.questions[0].type == .a)
        #expect(message.answers.count == 3)
        #expect(message.answers[0].data == .address(try #require(IPAddress(bytes: [192, 0, 2, 1]))))
        #expect(message.answers[0].ttl == 3600)
        #expect(message.answers[1].data == .cname("mail.example.com"))
        #expect(message.answers[2].data == .srv(SRVRecord(priority: 10, weight: 20, port: 5222, target: ".")))
    }

    @Test func namesAreLowercased() throws {
        let bytes = Self.header(qd: 1) + [3] + Array("WwW".utf8) + [0, 0, 1, 0, 1]
        #expect(try DNSMessage.decode(bytes).questions[0].name == "www")
    }

    @Test func truncatedMessageSkipsAnswers() throws {
        // TC set and an answer count, but the answer section is cut off: still decodes.
        let bytes = Self.header(flags: 0x8380, an: 5) + Self.question + [0xC0]
        let message = try DNSMessage.decode(bytes)
        #expect(message.isTruncated)
        #expect(message.answers.isEmpty)
    }

    static let malformed: [(String, [UInt8])] = [
        ("empty", []),
        ("short header", [0x12, 0x34, 0x81, 0x80, 0, 1, 0]),
        ("question count without question", header(qd: 1)),
        ("label past end", header() + [10, 65, 66]),
        ("name without terminator", header() + [1, 65]),
        ("pointer to itself", header() + [0xC0, 12, 0, 1, 0, 1]),
        ("pointer loop", header(qd: 2) + [1, 65, 0xC0, 17, 0, 1, 0, 1] + [0xC0, 12, 0, 1, 0, 1]),
        ("forward pointer", header() + [0xC0, 20, 0, 1, 0, 1, 0, 0, 1, 65, 0]),
        ("pointer out of range", header() + [0xFF, 0xFF, 0, 1, 0, 1]),
        ("truncated pointer", header() + [0xC0]),
        ("extended label type", header() + [0x41, 0, 0, 1, 0, 1]),
        ("answer missing", header(an: 1) + question),
        ("rdata past end", header(an: 1) + question + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2]),
        ("A with 5 octets", header(an: 1) + question + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5]),
        ("AAAA with 4 octets", header(an: 1) + question + [0xC0, 12, 0, 28, 0, 1, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4]),
        ("SRV too short", header(an: 1) + question + [0xC0, 12, 0, 33, 0, 1, 0, 0, 0, 1, 0, 6, 0, 1, 0, 1, 0, 1]),
        ("CNAME length mismatch", header(an: 1) + question + [0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 1, 0, 3, 0, 0, 0]),
        ("name over 255 octets", header() + Array(repeating: [63] + Array(repeating: UInt8(97), count: 63), count: 5).flatMap { $0 } + [0, 0, 1, 0, 1]),
    ]

    @Test(arguments: malformed)
    func rejectsMalformed(_ name: String, _ bytes: [UInt8]) {
        #expect(throws: SocketError(.protocolError), "\(name)") { try DNSMessage.decode(bytes) }
    }

    @Test func hugeCountsDoNotAllocate() {
        // 65535 answers promised in a 12-octet message: fails fast, no large reservation.
        #expect(throws: SocketError(.protocolError)) { try DNSMessage.decode(Self.header(qd: 0, an: 0xFFFF)) }
    }

    @Test func replyChecks() throws {
        let server = DNSResolver.Nameserver(.ipv4Loopback, port: 53)
        let query = try DNSMessage.query(id: 0x1234, name: "www.example.com", type: .a)
        let key = DNSQueryKey(id: 0x1234, name: "www.example.com", type: .a, server: server)
        let good = FakeReply.answer(query, addresses: [try #require(parseIP("192.0.2.1"))])
        #expect(try key.accept(good).answers.count == 1)

        let wrongID = FakeReply.answer(query, addresses: [], id: 0x4321)
        let error = #expect(throws: SocketError(.protocolError)) { try key.accept(wrongID) }
        #expect(error?.message.contains("id") == true)

        var notResponse = good
        notResponse[2] &= 0x7F
        #expect(throws: SocketError(.protocolError)) { try key.accept(notResponse) }

        let otherQuestion = try DNSMessage.query(id: 0x1234, name: "www.example.org", type: .a)
        #expect(throws: SocketError(.protocolError)) { try key.accept(FakeReply.answer(otherQuestion, addresses: [])) }
        let otherType = try DNSMessage.query(id: 0x1234, name: "www.example.com", type: .aaaa)
        #expect(throws: SocketError(.protocolError)) { try key.accept(FakeReply.answer(otherType, addresses: [])) }
    }
}

@Suite struct DNSSRVOrderTests {

    @Test func prioritiesAscendAndAllRecordsKept() {
        let records = [
            SRVRecord(priority: 20, weight: 5, port: 3, target: "c"),
            SRVRecord(priority: 10, weight: 0, port: 1, target: "a"),
            SRVRecord(priority: 10, weight: 9, port: 2, target: "b"),
            SRVRecord(priority: 30, weight: 0, port: 4, target: "d"),
        ]
        var generator = SeededRandom(seed: 1)
        for _ in 0..<50 {
            let ordered = SRVRecord.rfc2782Order(records, using: &generator)
            #expect(ordered.map(\.priority) == [10, 10, 20, 30])
            #expect(Set(ordered) == Set(records))
        }
        #expect(SRVRecord.rfc2782Order([]).isEmpty)
    }

    @Test func weightsBiasTheOrder() {
        let heavy = SRVRecord(priority: 1, weight: 90, port: 1, target: "heavy")
        let light = SRVRecord(priority: 1, weight: 10, port: 2, target: "light")
        let zero = SRVRecord(priority: 1, weight: 0, port: 3, target: "zero")
        var generator = SeededRandom(seed: 42)
        var heavyFirst = 0
        var zeroFirst = 0
        let rounds = 2000
        for _ in 0..<rounds {
            let first = SRVRecord.rfc2782Order([light, zero, heavy], using: &generator)[0]
            if first == heavy { heavyFirst += 1 }
            if first == zero { zeroFirst += 1 }
        }
        // Expected shares: heavy 90/101, zero 1/101. Loose bounds; the generator is fixed.
        #expect(heavyFirst > rounds * 8 / 10)
        #expect(zeroFirst < rounds / 20)
    }
}
