import AEMPSocket
import AEMPTestSupport
import Foundation
import Testing

// Replays every case of Tests/Fixtures/vectors/socket-ip.json (Perl AnyEvent::Socket 7.17) against the
// Swift parsers and formatters.
//
// How Perl's functions map to ours (no deviation involved):
// - parse_ipv4($t)      == parseIPv4(t)
// - parse_ipv6($t)      == parseIPv6(t)?.ipv4Mapped   (ours returns 4 bytes for IPv4 forms: the issue)
// - parse_address($t)   == parseIP(t)                 (aton; the vectors' parse_ip is missing in Perl)
// - format_ipv4($4)     == formatIP(4 bytes)
// - format_ipv6($16)    == formatIP(16 bytes)
// - format_address($n)  == formatIP(n.ipv4Unmapped)   (ours keeps ::ffff:a.b.c.d: the issue)
//
// Every remaining difference is listed by input in `IPVectorDeviations` with its reason.

/// One `kind: "parse"` case.
struct IPParseVector: Sendable, CustomTestStringConvertible {
    var input: String
    var parseIPv4: PerlBytes
    var parseIPv6: PerlBytes
    var parseAddress: PerlBytes
    /// parser name -> formatter name -> Perl's text.
    var formats: [String: [String: String]]
    var rfc5952: String?

    var testDescription: String { SocketVectors.escaped(input) }
}

/// One `kind: "format_raw"` case.
struct IPFormatVector: Sendable, CustomTestStringConvertible {
    var input: [UInt8]
    var formatIPv4: String?
    var formatIPv6: String?
    var formatAddress: String?
    var rfc5952: String?

    var testDescription: String { SocketVectors.hex(input) }
}

/// A Perl function result: bytes, `undef`, or an exception.
enum PerlBytes: Sendable, Equatable, CustomStringConvertible {
    case bytes([UInt8])
    case undef
    case dies(String)

    init(_ json: Any?) {
        if let text = json as? String {
            self = .bytes(SocketVectors.bytes(hex: text))
        } else if let object = json as? [String: Any], let message = object["error"] as? String {
            self = .dies(message)
        } else {
            self = .undef
        }
    }

    init(_ address: IPAddress?) {
        self = address.map { .bytes($0.bytes) } ?? .undef
    }

    var description: String {
        switch self {
        case .bytes(let bytes): SocketVectors.hex(bytes)
        case .undef: "undef"
        case .dies(let message): "dies(\(SocketVectors.escaped(message)))"
        }
    }
}

/// Loading and hex helpers shared by the AEMPSocket vector tests.
enum SocketVectors {
    static func cases(_ file: String) throws -> [[String: Any]] {
        try Fixtures.list("vectors/\(file)", key: "cases")
    }

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var high: UInt8?
        for byte in hex.utf8 {
            let digit: UInt8 =
                switch byte {
                case 0x30...0x39: byte - 0x30
                case 0x61...0x66: byte - 0x61 + 10
                default: byte - 0x41 + 10
                }
            if let pending = high {
                result.append(pending << 4 | digit)
                high = nil
            } else {
                high = digit
            }
        }
        return result
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func escaped(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\0": out += "\\0"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func parseCases() throws -> [IPParseVector] {
        try cases("socket-ip.json").filter { $0["kind"] as? String == "parse" }.map { json in
            IPParseVector(
                input: try #require(json["input"] as? String),
                parseIPv4: PerlBytes(json["parse_ipv4"]),
                parseIPv6: PerlBytes(json["parse_ipv6"]),
                parseAddress: PerlBytes(json["parse_address"]),
                formats: json["format"] as? [String: [String: String]] ?? [:],
                rfc5952: (json["ref"] as? [String: Any])?["rfc5952_of_parse_ipv6"] as? String)
        }
    }

    static func formatCases() throws -> [IPFormatVector] {
        try cases("socket-ip.json").filter { $0["kind"] as? String == "format_raw" }.map { json in
            IPFormatVector(
                input: bytes(hex: try #require(json["input_hex"] as? String)),
                formatIPv4: json["format_ipv4"] as? String,
                formatIPv6: json["format_ipv6"] as? String,
                formatAddress: json["format_address"] as? String,
                rfc5952: (json["ref"] as? [String: Any])?["rfc5952"] as? String)
        }
    }
}

/// The inputs where this port deliberately differs from Perl 7.17, with what we return and why.
/// The same list is in the doc comments of `parseIPv4`, `parseIPv6`, `parseIP` and `formatIP`.
enum IPVectorDeviations {
    /// Our results for one input: hex for `parseIPv4`, `parseIPv6` (direct, not re-mapped) and
    /// `parseIP`; `nil` = returns nil.
    struct Parse {
        var ipv4: String?
        var ipv6: String?
        var address: String?
        var reason: String
    }

    static let posixHex = "0X is a hex prefix in POSIX, which Perl's docs promise; Perl rejects it"
    static let newline = "a trailing newline is trailing garbage (the issue); Perl's regex $ lets it through"
    static let dies = "Perl dies on an octal/hex value above 32 bits or a newline after hex; nil instead"

    static let parse: [String: Parse] = [
        "0X7f.0.0.1": Parse(ipv4: "7f000001", ipv6: "7f000001", address: "7f000001", reason: posixHex),
        "0x7f.0X0.0.1": Parse(ipv4: "7f000001", ipv6: "7f000001", address: "7f000001", reason: posixHex),
        "0XFFFFFFFF": Parse(ipv4: "ffffffff", ipv6: "ffffffff", address: "ffffffff", reason: posixHex),
        "1.2.3.4\n": Parse(reason: newline),
        "1.2\n": Parse(reason: newline),
        "010\n": Parse(reason: newline),
        "::ffff:1.2.3.4\n": Parse(reason: newline),
        "0x10\n": Parse(reason: dies),
        "::1\n": Parse(reason: dies),
        "1:2:3:4:5:6:7:8\n": Parse(reason: dies),
        "0x100000000": Parse(reason: dies),
        "0x10000000000000000": Parse(reason: dies),
        "040000000000": Parse(reason: dies),
        "1::2:3:4:5:6:7:8": Parse(
            reason: "RFC 4291: '::' stands for one or more zero groups, so 8 groups plus '::' is malformed"),
        "::1:2:3:4:5:1.2.3.4": Parse(
            ipv6: "00000001000200030004000501020304", address: "00000001000200030004000501020304",
            reason: "RFC 4291 form (5 groups + IPv4 tail + '::' = 8 groups); Perl wrongly rejects it"),
        "unix/": Parse(
            reason: "parse_address returns the 2-byte UNIX token, which IPAddress cannot hold; callers test 'unix/'"),
    ]

    /// IPv4-compatible addresses (`::/96`, not `::` or `::1`): RFC 5952 hex text, where Perl
    /// writes the deprecated dotted form. Keyed by the 16 bytes in hex.
    static let rfc5952Format: [String: String] = [
        "00000000000000000000000000000002": "::2",
        "0000000000000000000000000000000a": "::a",
        "0000000000000000000000000000ffff": "::ffff",
        "00000000000000000000000000010000": "::1:0",
        "00000000000000000000000000010080": "::1:80",
        "00000000000000000000000001000002": "::100:2",
        "00000000000000000000000001020003": "::102:3",
        "00000000000000000000000001020304": "::102:304",
    ]
    static let rfc5952Reason = "RFC 5952 (the issue) writes ::/96 in hex; Perl writes ::a.b.c.d"

    /// Raw byte strings that are neither 4 nor 16 bytes: `formatIP(bytes:)` returns nil, while
    /// Perl's formatters pad or truncate them (and format_address answers `unix/` for `01 00 ...`).
    static let wrongLength = "only 4 or 16 bytes are addresses; Perl pads/truncates or answers 'unix/'"
}

@Suite("socket-ip.json vectors")
struct IPVectorTests {
    @Test("parse: parseIPv4 / parseIPv6 / parseIP equal Perl", arguments: try SocketVectors.parseCases())
    func parse(vector: IPParseVector) {
        let ipv4 = PerlBytes(parseIPv4(vector.input))
        let ipv6 = PerlBytes(parseIPv6(vector.input))
        let ipv6Mapped = PerlBytes(parseIPv6(vector.input)?.ipv4Mapped)
        let address = PerlBytes(parseIP(vector.input))

        if let deviation = IPVectorDeviations.parse[vector.input] {
            func expected(_ hex: String?) -> PerlBytes { hex.map { .bytes(SocketVectors.bytes(hex: $0)) } ?? .undef }
            #expect(ipv4 == expected(deviation.ipv4), "\(deviation.reason)")
            #expect(ipv6 == expected(deviation.ipv6), "\(deviation.reason)")
            #expect(address == expected(deviation.address), "\(deviation.reason)")
            // A listed deviation must really differ from Perl somewhere.
            let perlMapped = vector.parseIPv6
            #expect(
                ipv4 != vector.parseIPv4 || ipv6Mapped != perlMapped || address != vector.parseAddress,
                "listed as a deviation but equals Perl")
            return
        }
        #expect(ipv4 == vector.parseIPv4, "parse_ipv4")
        #expect(ipv6Mapped == vector.parseIPv6, "parse_ipv6 (as parseIPv6(_:)?.ipv4Mapped)")
        #expect(address == vector.parseAddress, "parse_address")
        // The issue's rule: IPv4 forms come back from parseIPv6 as 4 bytes.
        if case .bytes = vector.parseIPv4 { #expect(ipv6 == vector.parseIPv4, "parseIPv6 of an IPv4 form") }
    }

    @Test("parse: formatIP reproduces Perl's format_* of every parse result", arguments: try SocketVectors.parseCases())
    func formatParsed(vector: IPParseVector) throws {
        let results = ["parse_ipv4": vector.parseIPv4, "parse_ipv6": vector.parseIPv6, "parse_address": vector.parseAddress]
        for (parser, formats) in vector.formats {
            guard case .bytes(let bytes)? = results[parser] else {
                Issue.record("format recorded for \(parser) without a result")
                continue
            }
            for (formatter, perlText) in formats {
                if parser == "parse_address", vector.input == "unix/" {
                    // The UNIX token: see IPVectorDeviations.parse["unix/"].
                    #expect(formatIP(bytes: bytes) == nil, "\(IPVectorDeviations.wrongLength)")
                    continue
                }
                let address = try #require(IPAddress(bytes: bytes))
                let ours = formatter == "format_address" ? formatIP(address.ipv4Unmapped) : formatIP(address)
                if let rfcText = IPVectorDeviations.rfc5952Format[SocketVectors.hex(bytes)] {
                    #expect(ours == rfcText, "\(parser).\(formatter): \(IPVectorDeviations.rfc5952Reason)")
                    #expect(ours != perlText, "listed as a deviation but equals Perl")
                    if parser == "parse_ipv6" { #expect(ours == vector.rfc5952, "ref.rfc5952_of_parse_ipv6") }
                } else {
                    #expect(ours == perlText, "\(parser).\(formatter)")
                }
            }
        }
    }

    @Test("format_raw: formatIP(bytes:) equals Perl", arguments: try SocketVectors.formatCases())
    func formatRaw(vector: IPFormatVector) {
        let ours = formatIP(bytes: vector.input)
        switch vector.input.count {
        case 4:
            #expect(ours == vector.formatIPv4, "format_ipv4")
            #expect(ours == vector.formatAddress, "format_address")
        case 16:
            let unmapped = IPAddress(bytes: vector.input).map { formatIP($0.ipv4Unmapped) }
            if let rfcText = IPVectorDeviations.rfc5952Format[SocketVectors.hex(vector.input)] {
                #expect(ours == rfcText, "\(IPVectorDeviations.rfc5952Reason)")
                #expect(unmapped == rfcText, "\(IPVectorDeviations.rfc5952Reason)")
                #expect(ours != vector.formatIPv6, "listed as a deviation but equals Perl")
            } else {
                #expect(ours == vector.formatIPv6, "format_ipv6")
                #expect(unmapped == vector.formatAddress, "format_address (as formatIP(_:ipv4Unmapped))")
            }
            // Every 16-byte result is the RFC 5952 reference text.
            #expect(ours == vector.rfc5952, "ref.rfc5952")
        default:
            #expect(ours == nil, "\(IPVectorDeviations.wrongLength)")
        }
    }

    @Test("missing_function: parse_ip / format_ip are parse_address / format_address")
    func missingFunctions() throws {
        let missing = try SocketVectors.cases("socket-ip.json").filter { $0["kind"] as? String == "missing_function" }
        #expect(Set(missing.compactMap { $0["function"] as? String }) == ["parse_ip", "format_ip"])
        // Perl dies when they are called; ours are the working aliases the docs meant.
        #expect(parseIP("10.1.2.3")?.bytes == [10, 1, 2, 3])
        #expect(formatIP(IPAddress(bytes: [1, 2, 3, 5])!) == "1.2.3.5")
    }

    @Test("the vector file has the documented case counts")
    func caseCounts() throws {
        #expect(try SocketVectors.parseCases().count == 346)
        #expect(try SocketVectors.formatCases().count == 55)
    }
}
