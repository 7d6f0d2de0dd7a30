import AEMPTestSupport
import AEMPSocket
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SeededRandom {
    /// A random address, biased towards zero groups and the special prefixes the formatter
    /// treats differently.
    mutating func address() -> IPAddress {
        if Bool.random(using: &self) {
            return IPAddress(bytes: (0..<4).map { _ in UInt8.random(in: 0...255, using: &self) })!
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for group in 0..<8 where Int.random(in: 0..<3, using: &self) == 0 {
            bytes[2 * group] = Bool.random(using: &self) ? 0 : UInt8.random(in: 0...255, using: &self)
            bytes[2 * group + 1] = UInt8.random(in: 0...255, using: &self)
        }
        switch Int.random(in: 0..<8, using: &self) {
        case 0: bytes.replaceSubrange(0..<12, with: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
        case 1: bytes.replaceSubrange(0..<12, with: [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0])
        case 2: bytes.replaceSubrange(0..<12, with: [UInt8](repeating: 0, count: 12))
        default: break
        }
        return IPAddress(bytes: bytes)!
    }
}

/// Hex of an optional address, for readable expectations.
private func hex(_ address: IPAddress?) -> String? {
    address.map { SocketVectors.hex($0.bytes) }
}

@Suite("IPAddress parsing and formatting: own cases")
struct IPAddressTests {
    /// IPv4 forms and failures beyond the vector file. `nil` = no parse.
    static let ipv4: [(String, String?)] = [
        ("10.1", "0a000001"), ("10.0x020304", "0a020304"), ("0x12345678", "12345678"),
        ("0377.0377.0377.0377", "ffffffff"), ("0X12.0x34.0X56.0x78", "12345678"), ("0Xff", "000000ff"),
        ("0x0000000000000000000000000000000000000000ff.1", "ff000001"),
        ("0000000000000000000000000000000000000000377.1", "ff000001"),
        ("4294967295", "ffffffff"), ("0xfFfFfFfF", "ffffffff"), ("037777777777", "ffffffff"),
        ("1.2.3.0", "01020300"), ("0.0.0.0", "00000000"), ("1.2.3.00", "01020300"),
        ("255.255.255.0377", "ffffffff"), ("0.0xffffff", "00ffffff"), ("0.0.0xffff", "0000ffff"),
        ("1.2.3.4.", nil), ("0x", nil), ("0x.0", nil), ("1.0x", nil), ("0xg", nil), ("0x-1", nil),
        ("1.2.3.0x100", nil), ("1.2.0x10000", nil), ("1.0x1000000", nil), ("0x100000000", nil),
        ("4294967296", nil), ("99999999999999999999999999999999", nil), ("0377777777777", nil),
        ("09", nil), ("0.08", nil), ("1e3", nil), ("1.2.3.4%eth0", nil), ("1.2.3.4\u{0}", nil),
        ("\u{0}", nil), ("1.2.3.4\u{A0}", nil), ("1.2.3.4\u{2028}", nil), ("٤", nil), ("1.2.3.4\n", nil),
        ("1.2.3.4 ", nil), ("+0", nil), ("0x+1", nil), ("1.2.3.4.5.6.7.8", nil), (".", nil), ("", nil),
    ]

    @Test("parseIPv4 table", arguments: ipv4)
    func parseIPv4Table(text: String, expected: String?) {
        #expect(hex(parseIPv4(text)) == expected)
        // IPv4 forms come back 4 bytes long from every parser.
        #expect(hex(parseIPv6(text)) == expected)
        #expect(hex(parseIP(text)) == expected)
    }

    /// IPv6 forms and failures beyond the vector file. `nil` = no parse.
    static let ipv6: [(String, String?)] = [
        ("::", "00000000000000000000000000000000"),
        ("::0:0:0:0:0:0:0", "00000000000000000000000000000000"),
        ("0:0:0:0:0:0:0::", "00000000000000000000000000000000"),
        ("0:0:0::0:0:0:0", "00000000000000000000000000000000"),
        ("0:0:0:0:0:0:0:0:", nil), ("::0:0:0:0:0:0:0:0", nil), ("0:0:0:0::0:0:0:0", nil),
        ("1:2:3:4:5:6:7::", "00010002000300040005000600070000"),
        ("::2:3:4:5:6:7:8", "00000002000300040005000600070008"),
        ("FFFF:ffff:FfFf:fFfF:0:0:0:1", "ffffffffffffffff0000000000000001"),
        ("0000:0000:0000:0000:0000:0000:0000:0001", "00000000000000000000000000000001"),
        ("::ffff:0:1.2.3.4", "0000000000000000ffff000001020304"),
        ("1:2:3:4:5:6:255.255.255.255", "000100020003000400050006ffffffff"),
        ("::1:2:3:4:5:1.2.3.4", "00000001000200030004000501020304"),
        ("1:2:3:4:5::1.2.3.4", "00010002000300040005000001020304"),
        ("::ffff:0377.0.0.1", "00000000000000000000ffffff000001"),
        ("::ffff:0xff.0.0.1", "00000000000000000000ffffff000001"),
        ("::1.2.3.4", "00000000000000000000000001020304"),
        ("1::2:3:4:5:6:7:8", nil), ("::1:2:3:4:5:6:7:8", nil), ("1:2:3:4:5:6:7:8:9", nil),
        ("1:2:3:4:5:6::1.2.3.4", nil), ("1:2:3:4:5:6:7:1.2.3.4", nil), ("1.2.3.4::", nil),
        ("::1.2.3.4:5", nil), ("::1.2.3.4.5", nil), ("::256.1.1.1", nil), ("::1.2.3.0x100", nil),
        ("::ffff:4294967295", nil), ("::ffff:1.2.3.4%0", nil), ("::12345", nil), ("::00000", nil),
        ("::g", nil), ("::-1", nil), ("::%", nil), ("%", nil), (":", nil), ("::::", nil), (":::1", nil),
        ("1::2::3", nil), ("1:2", nil), (":1::2", nil), ("1::2:", nil), ("[::1]", nil), ("::1 ", nil),
        ("::1\n", nil), ("\t::1", nil), ("::1\u{0}", nil), ("fe80::1%eth0", nil), ("::１", nil),
        ("::ffff:1.2.3.4\n", nil), ("ffff", nil), ("", nil),
    ]

    @Test("parseIPv6 table", arguments: ipv6)
    func parseIPv6Table(text: String, expected: String?) {
        #expect(hex(parseIPv6(text)) == expected)
        #expect(parseIPv4(text) == nil)
    }

    @Test("parseIP unmaps IPv4-mapped addresses in every notation")
    func parseIPUnmaps() {
        for text in ["::ffff:1.2.3.4", "::FFFF:102:304", "0:0:0:0:0:ffff:0102:0304", "::ffff:1.2.0x304", "1.2.3.4"] {
            #expect(hex(parseIP(text)) == "01020304", "\(text)")
        }
        // Only ::ffff:0:0/96 is unmapped; the IPv4-translated and -compatible forms stay IPv6.
        #expect(hex(parseIP("::ffff:0:1.2.3.4")) == "0000000000000000ffff000001020304")
        #expect(hex(parseIP("::1.2.3.4")) == "00000000000000000000000001020304")
        #expect(hex(parseIP("::1")) == "00000000000000000000000000000001")
        #expect(parseIP("unix/") == nil)
        #expect(parseIP("localhost") == nil)
    }

    /// RFC 5952 cases: (16 bytes in hex, text).
    static let formats: [(String, String)] = [
        ("00000000000000000000000000000000", "::"),
        ("00000000000000000000000000000001", "::1"),
        ("00010000000000000000000000000000", "1::"),
        ("20010db8000000000000000000000001", "2001:db8::1"),
        ("20010db8000000000001000000000001", "2001:db8::1:0:0:1"),  // tie: the first run wins
        ("20010db8000000010001000100010001", "2001:db8:0:1:1:1:1:1"),  // one zero group stays
        ("20010db8000000000000000100000000", "2001:db8::1:0:0"),
        ("00000000000100000000000000000000", "0:0:1::"),  // the longer run wins
        ("000100000000000000000000000000ff", "1::ff"),
        ("abcdef0123456789abcdef0123456789", "abcd:ef01:2345:6789:abcd:ef01:2345:6789"),
        ("000a00b00c00d0000e0f0f0f0ff0f00f", "a:b0:c00:d000:e0f:f0f:ff0:f00f"),
        ("00000000000000000000ffff01020304", "::ffff:1.2.3.4"),
        ("00000000000000000000ffff00000000", "::ffff:0.0.0.0"),
        ("00000000000000000000ffffffffffff", "::ffff:255.255.255.255"),
        ("0000000000000000ffff000001020304", "::ffff:0:1.2.3.4"),
        ("0000000000000000ffff000000000000", "::ffff:0:0.0.0.0"),
        ("0000000000000000fffe000001020304", "::fffe:0:102:304"),
        ("00000000000000000001ffff01020304", "::1:ffff:102:304"),
        ("0000000000000000000000000000ffff", "::ffff"),
        ("00000000000000000000000001020304", "::102:304"),
        ("0064ff9b000000000000000001020304", "64:ff9b::102:304"),
        ("ffffffffffffffffffffffffffffffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("fe800000000000000000000000000001", "fe80::1"),
    ]

    @Test("formatIP writes RFC 5952 text", arguments: formats)
    func formatTable(hexBytes: String, text: String) throws {
        let address = try #require(IPAddress(bytes: SocketVectors.bytes(hex: hexBytes)))
        #expect(formatIP(address) == text)
        #expect(address.description == text)
        #expect(formatIP(bytes: address.bytes) == text)
        #expect(hex(parseIPv6(text)) == hexBytes)
    }

    @Test("formatIP writes dotted quads without leading zeros")
    func formatIPv4() throws {
        let table: [([UInt8], String)] = [
            ([0, 0, 0, 0], "0.0.0.0"), ([1, 2, 3, 4], "1.2.3.4"), ([255, 255, 255, 255], "255.255.255.255"),
            ([10, 100, 9, 99], "10.100.9.99"), ([127, 0, 0, 1], "127.0.0.1"),
        ]
        for (bytes, text) in table {
            #expect(formatIP(try #require(IPAddress(bytes: bytes))) == text)
            #expect(formatIP(bytes: bytes) == text)
        }
        #expect("\(IPAddress.ipv4Loopback) \(IPAddress.ipv6Loopback) \(IPAddress.ipv6Any)" == "127.0.0.1 ::1 ::")
    }

    @Test("formatIP(bytes:) takes any collection of 4 or 16 bytes")
    func formatRawCollections() {
        #expect(formatIP(bytes: [4, 3, 2, 1].reversed()) == "1.2.3.4")
        #expect(formatIP(bytes: [9, 1, 2, 3, 4, 9][1..<5]) == "1.2.3.4")
        #expect(formatIP(bytes: repeatElement(0, count: 16)) == "::")
        #expect(formatIP(bytes: (0..<16).lazy.map { UInt8($0) }) == "1:203:405:607:809:a0b:c0d:e0f")
        for count in [0, 1, 2, 3, 5, 8, 15, 17, 32] {
            #expect(formatIP(bytes: [UInt8](repeating: 1, count: count)) == nil, "\(count) bytes")
        }
    }

    @Test("IPv4-mapped conversions")
    func mapping() throws {
        let v4 = try #require(IPAddress(bytes: [1, 2, 3, 4]))
        let mapped = v4.ipv4Mapped
        #expect(hex(mapped) == "00000000000000000000ffff01020304")
        #expect(mapped.isIPv4Mapped)
        #expect(!v4.isIPv4Mapped)
        #expect(mapped.ipv4Unmapped == v4)
        #expect(v4.ipv4Unmapped == v4)
        #expect(mapped.ipv4Mapped == mapped)
        #expect(IPAddress.ipv6Loopback.ipv4Unmapped == .ipv6Loopback)
        let translated = try #require(parseIPv6("::ffff:0:1.2.3.4"))
        #expect(!translated.isIPv4Mapped)
        #expect(translated.ipv4Unmapped == translated)
        #expect(formatIP(mapped.ipv4Unmapped) == "1.2.3.4")
    }

    @Test("format and parse round-trip over random addresses")
    func roundTripProperty() throws {
        var random = SeededRandom(seed: 0xae4d_0001)
        for _ in 0..<3000 {
            let address = random.address()
            let text = formatIP(address)
            #expect(parseIP(text) == address.ipv4Unmapped, "\(text)")
            if address.family == .ipv6 {
                #expect(parseIPv6(text) == address, "\(text)")
            } else {
                #expect(parseIPv4(text) == address, "\(text)")
            }
            // formatIP(parseIP(x)) is a fixed point.
            let reparsed = try #require(parseIP(text))
            #expect(formatIP(reparsed) == formatIP(address.ipv4Unmapped))
            #expect(parseIP(formatIP(reparsed)) == reparsed)
        }
    }

    @Test("long and hostile inputs fail quickly without trapping")
    func hostileInputs() {
        let inputs = [
            String(repeating: "0", count: 100_000), String(repeating: "f", count: 100_000),
            String(repeating: "1.", count: 50_000), String(repeating: ":", count: 100_000),
            String(repeating: "1:", count: 50_000) + "1", "::" + String(repeating: "0", count: 100_000) + ".1",
            "0x" + String(repeating: "f", count: 100_000), String(repeating: "9", count: 30),
        ]
        for text in inputs {
            _ = parseIPv4(text)
            _ = parseIPv6(text)
        }
        #expect(hex(parseIPv4(String(repeating: "0", count: 100_000))) == "00000000")
        #expect(parseIPv6(String(repeating: "1:", count: 50_000) + "1") == nil)
        #expect(parseIPv4("0x" + String(repeating: "f", count: 100_000)) == nil)
    }

    #if os(Linux)
    /// glibc as an independent oracle, on generated inputs.
    @Test("parseIPv4 agrees with glibc inet_aton on generated inet_aton forms")
    func ipv4AgainstGlibc() {
        var random = SeededRandom(seed: 0xae4d_0002)
        let digitSets = ["0123456789", "01234567", "0123456789abcdefABCDEF", "89xX."]
        var accepted = 0
        for _ in 0..<5000 {
            var parts: [String] = []
            for _ in 0..<Int.random(in: 1...5, using: &random) {
                var part = ["", "0", "0x", "0X"].randomElement(using: &random)!
                let digits = Array(digitSets.randomElement(using: &random)!)
                for _ in 0..<Int.random(in: 0...11, using: &random) { part.append(digits.randomElement(using: &random)!) }
                parts.append(part)
            }
            let text = parts.joined(separator: ".")
            var address = in_addr()
            let glibc: String? =
                inet_aton(text, &address) == 1
                ? withUnsafeBytes(of: &address) { SocketVectors.hex($0) } : nil
            #expect(hex(parseIPv4(text)) == glibc, "\(text)")
            if glibc != nil { accepted += 1 }
        }
        #expect(accepted > 500, "the generator must produce enough valid addresses")
    }

    @Test("parseIPv6 agrees with glibc inet_pton on generated colon forms")
    func ipv6AgainstGlibc() {
        var random = SeededRandom(seed: 0xae4d_0003)
        let hexDigits = Array("0123456789abcdefABCDEF")
        var accepted = 0
        for _ in 0..<5000 {
            var pieces: [String] = []
            for _ in 0..<Int.random(in: 0...10, using: &random) {
                var piece = ""
                for _ in 0..<Int.random(in: 0...5, using: &random) { piece.append(hexDigits.randomElement(using: &random)!) }
                pieces.append(piece)
            }
            var text = pieces.joined(separator: ":")
            if Int.random(in: 0..<4, using: &random) == 0 {
                // A dotted-decimal tail in glibc's strict form.
                text += ":" + (0..<4).map { _ in String(Int.random(in: 0...255, using: &random)) }.joined(separator: ".")
            }
            guard text.contains(":") else { continue }
            var address = in6_addr()
            let glibc: String? =
                inet_pton(AF_INET6, text, &address) == 1
                ? withUnsafeBytes(of: &address) { SocketVectors.hex($0) } : nil
            #expect(hex(parseIPv6(text)) == glibc, "\(text)")
            if glibc != nil { accepted += 1 }
        }
        #expect(accepted > 200, "the generator must produce enough valid addresses")
    }

    @Test("formatIP agrees with glibc inet_ntop outside ::/96 and ::ffff:0:0:0/96")
    func formatAgainstGlibc() {
        var random = SeededRandom(seed: 0xae4d_0004)
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        for _ in 0..<3000 {
            let address = random.address()
            let bytes = address.bytes
            // glibc writes ::a.b.c.d for ::/96 and hex for the translated prefix; RFC 5952 differs.
            if bytes.count == 16, bytes[0..<12].allSatisfy({ $0 == 0 }) { continue }
            if bytes.count == 16, bytes[0..<8].allSatisfy({ $0 == 0 }), bytes[8..<12] == [0xff, 0xff, 0, 0] { continue }
            let family = address.family == .ipv4 ? AF_INET : AF_INET6
            let written = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
            guard written != nil else {
                Issue.record("inet_ntop failed")
                continue
            }
            let glibc = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(formatIP(address) == glibc)
            var parsed = in6_addr()
            if family == AF_INET6 {
                #expect(inet_pton(AF_INET6, formatIP(address), &parsed) == 1)
            }
        }
    }
    #endif
}
