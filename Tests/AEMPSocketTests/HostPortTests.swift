import AEMPSocket
import Foundation
import Testing

/// One `parse_hostport` or `format_hostport` case of socket-hostport.json.
struct HostPortVector: Sendable, CustomTestStringConvertible {
    var kind: String
    var input: String  // parse: the string; format: the host
    var defaultPort: String?  // parse: the second argument; format: the port
    var result: [String]?  // parse: the list; format: [text]
    var formatted: String?
    var reparse: [String]?

    var testDescription: String {
        let argument = defaultPort.map { ", \(SocketVectors.escaped($0))" } ?? ""
        return "\(kind)(\(SocketVectors.escaped(input))\(argument))"
    }

    static func load() throws -> [HostPortVector] {
        func text(_ value: Any?) -> String? {
            if let string = value as? String { return string }
            if let number = value as? Int { return String(number) }
            return nil
        }
        return try SocketVectors.cases("socket-hostport.json").compactMap { json in
            switch json["kind"] as? String {
            case "parse_hostport":
                return HostPortVector(
                    kind: "parse_hostport", input: try #require(json["input"] as? String),
                    defaultPort: text(json["default"]), result: json["result"] as? [String],
                    formatted: json["format_hostport"] as? String, reparse: json["reparse"] as? [String])
            case "format_hostport":
                return HostPortVector(
                    kind: "format_hostport", input: try #require(json["host"] as? String),
                    defaultPort: text(json["port"]), result: [try #require(json["result"] as? String)],
                    formatted: nil, reparse: json["reparse"] as? [String])
            default:
                return nil
            }
        }
    }
}

@Suite("socket-hostport.json vectors: parse_hostport / format_hostport")
struct HostPortVectorTests {
    static func pair(_ list: [String]?) -> HostPort? {
        guard let list, list.count == 2 else { return nil }
        return HostPort(host: list[0], port: list[1])
    }

    // No deviations: parseHostPort equals Perl on every recorded case. (Differences can only come
    // from parseIPv6, e.g. "1::2:3:4:5:6:7:8 80", which the file does not contain.)
    @Test("parse_hostport and format_hostport equal Perl", arguments: try HostPortVector.load())
    func replay(vector: HostPortVector) throws {
        if vector.kind == "parse_hostport" {
            let expected = Self.pair(vector.result)
            let ours = parseHostPort(vector.input, defaultPort: vector.defaultPort)
            #expect(ours == expected, "parse_hostport")
            // The throwing parser accepts exactly the same strings.
            let thrown = Result { () throws(SocketError) in
                try HostPort(parsing: vector.input, defaultPort: vector.defaultPort)
            }
            switch thrown {
            case .success(let value): #expect(value == expected)
            case .failure(let error):
                #expect(expected == nil, "threw \(error)")
                #expect(error.code == .invalidArgument)
            }
            if let expected {
                #expect(expected.description == vector.formatted, "format_hostport of the result")
                #expect(parseHostPort(expected.description) == Self.pair(vector.reparse), "reparse")
            }
        } else {
            let ours = formatHostPort(host: vector.input, port: vector.defaultPort)
            #expect(ours == vector.result?.first, "format_hostport")
            #expect(parseHostPort(ours) == Self.pair(vector.reparse), "reparse")
        }
    }

    @Test("the vector file has the documented case counts")
    func caseCounts() throws {
        let vectors = try HostPortVector.load()
        #expect(vectors.filter { $0.kind == "parse_hostport" }.count == 107)
        #expect(vectors.filter { $0.kind == "format_hostport" }.count == 18)
    }
}

@Suite("HostPort: own cases")
struct HostPortTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var input: String
        var defaultPort: String?
        var host: String?  // nil = no parse
        var port: String?
        var testDescription: String { SocketVectors.escaped(input) + (defaultPort.map { " default \($0)" } ?? "") }
    }

    /// AEMP binds and seeds, plus grammar corners the vector file does not cover.
    static let cases: [Case] = [
        Case(input: "1.2.3.4:4040", host: "1.2.3.4", port: "4040"),
        Case(input: "[::1]:4040", host: "::1", port: "4040"),
        Case(input: "[::ffff:1.2.3.4]:4040", host: "::ffff:1.2.3.4", port: "4040"),
        Case(input: "host:4040", host: "host", port: "4040"),
        Case(input: "*:4040", host: "*", port: "4040"),
        Case(input: "*", defaultPort: "4040", host: "*", port: "4040"),
        Case(input: "node.example", defaultPort: "4040", host: "node.example", port: "4040"),
        Case(input: "[2001:db8::1]", defaultPort: "4040", host: "2001:db8::1", port: "4040"),
        Case(input: "::1", defaultPort: "4040", host: "::1", port: "4040"),
        Case(input: " ::1 4040", host: "::1", port: "4040"),  // leading blanks are fine before IPv6
        Case(input: "\t::1#4040\r\n", host: "::1", port: "4040"),
        Case(input: "::1\t4040", host: "::1", port: "4040"),
        Case(input: "fe80::1 4040", host: "fe80::1", port: "4040"),
        Case(input: "[fe80::1]#4040", host: "fe80::1", port: "4040"),
        Case(input: "[::1]:aemp=4040", host: "::1", port: "aemp=4040"),
        Case(input: "host:80#x", host: "host", port: "80#x"),
        Case(input: "host\t", defaultPort: "9", host: "host\t", port: "9"),  // a tab belongs to a bare name
        Case(input: "unix/:/tmp/aemp.sock", host: "unix/", port: "/tmp/aemp.sock"),
        Case(input: "/tmp/a b:c", host: "unix/", port: "/tmp/a b:c"),
        Case(input: "/", defaultPort: "1", host: "unix/", port: "/"),
        Case(input: "héllo.example:80", host: "héllo.example", port: "80"),
        Case(input: "[ünï]:1", host: "ünï", port: "1"),
        Case(input: "1:2:3:4:5:6:7:8 80", host: "1:2:3:4:5:6:7:8", port: "80"),
        Case(input: "::ffff:127.1 80", host: "::ffff:127.1", port: "80"),
        // Perl accepts this one: our parseIPv6 rejects 8 groups plus "::" (RFC 4291).
        Case(input: "1::2:3:4:5:6:7:8 80"),
        Case(input: "::1%eth0 80"),
        Case(input: "::1:", defaultPort: "80"),
        Case(input: "[::1]x"),
        Case(input: "[::1]]:80"),
        Case(input: "host]:80"),
        Case(input: "]"),
        Case(input: "["),
        Case(input: "[a:b]:80"),
        Case(input: "host:80:"),
        Case(input: "host::80"),
        Case(input: "host#", defaultPort: "1", host: "host#", port: "1"),  // "#" belongs to a bare name
        Case(input: "host\n", defaultPort: ""),
        Case(input: "\n"),
        Case(input: "4040", defaultPort: nil),
    ]

    @Test("parseHostPort and HostPort(parsing:) agree with the table", arguments: cases)
    func table(_ row: Case) {
        let expected = row.host.map { HostPort(host: $0, port: row.port ?? "") }
        #expect(parseHostPort(row.input, defaultPort: row.defaultPort) == expected)
        #expect((try? HostPort(parsing: row.input, defaultPort: row.defaultPort)) == expected)
    }

    /// Each failure kind of the throwing parser, with a phrase its message must contain.
    static let errors: [(String, String?, String)] = [
        ("", nil, "empty or blank"),
        ("   ", "80", "empty or blank"),
        (" host:80", nil, "leading whitespace"),
        ("dead:beef:80", nil, "'dead:beef:80' looks like an IPv6 address"),
        ("::ffff:1.2.3.4:80", nil, "[address]:port"),
        ("[]:80", nil, "brackets hold no host"),
        ("[::1", nil, "without a matching"),
        ("[[::1]]:80", nil, "without a matching"),
        ("]:80", nil, "without a matching"),
        (":4040", nil, "no host"),
        ("localhost", nil, "no port given and no default"),
        ("::1:443", nil, "no port given"),
        ("host", "", "no port given"),
        ("host:", "80", "expected ':port'"),
        ("host: 80", nil, "expected ':port'"),
        ("host:80 90", nil, "expected ':port'"),
        ("[::1]:80:90", nil, "expected ':port'"),
        ("host[x", nil, "expected ':port'"),
        ("[host:with:colons]:1", nil, "host 'host:with:colons' contains ':'"),
        ("[fe80::1%eth0]:80", nil, "contains ':' but is not an IPv6 address"),
    ]

    @Test("HostPort(parsing:) explains each kind of failure", arguments: errors)
    func errorMessages(input: String, defaultPort: String?, phrase: String) {
        #expect(parseHostPort(input, defaultPort: defaultPort) == nil)
        do {
            let value = try HostPort(parsing: input, defaultPort: defaultPort)
            Issue.record("parsed as \(value)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains(phrase), "message: \(error.message)")
            if !input.isEmpty { #expect(error.message.contains("'\(input)'"), "the message quotes the input") }
        }
    }

    @Test("numeric default ports")
    func numericDefaults() throws {
        #expect(parseHostPort("host", defaultPort: 4040) == HostPort(host: "host", port: "4040"))
        #expect(parseHostPort("host", defaultPort: 0) == HostPort(host: "host", port: "0"))
        #expect(parseHostPort("host:1", defaultPort: 4040) == HostPort(host: "host", port: "1"))
        #expect(try HostPort(parsing: "[::1]", defaultPort: 4040) == HostPort(host: "::1", port: "4040"))
        #expect(throws: SocketError(.invalidArgument)) { try HostPort(parsing: "[::1", defaultPort: 4040) }
    }

    @Test("numericPort reads plain decimal ports only")
    func numericPort() {
        let table: [(String, Int?)] = [
            ("0", 0), ("80", 80), ("04040", 4040), ("65535", 65535), ("65536", nil), ("99999", nil),
            ("000080", nil), ("", nil), ("-1", nil), ("+1", nil), ("http", nil), ("http=80", nil),
            ("8o", nil), ("/tmp/s", nil), ("１", nil),
        ]
        for (port, expected) in table {
            #expect(HostPort(host: "h", port: port).numericPort == expected, "\(port)")
        }
    }

    @Test("formatHostPort brackets hosts with colons and drops empty ports")
    func format() {
        #expect(formatHostPort(host: "::1", port: "4040") == "[::1]:4040")
        #expect(formatHostPort(host: "::1", port: nil) == "[::1]")
        #expect(formatHostPort(host: "::1", port: "") == "[::1]")
        #expect(formatHostPort(host: "10.0.0.1", port: "4040") == "10.0.0.1:4040")
        #expect(formatHostPort(host: "*", port: "4040") == "*:4040")
        #expect(formatHostPort(host: "unix/", port: "/tmp/s") == "unix/:/tmp/s")
        #expect(HostPort(host: "2001:db8::1", port: "80").description == "[2001:db8::1]:80")
        #expect("\(HostPort(host: "h", port: "1"))" == "h:1")
    }

    @Test("format then parse round-trips for IP literals, names, * and unix paths")
    func roundTrip() throws {
        let hosts = ["127.0.0.1", "::", "::1", "::ffff:1.2.3.4", "2001:db8::1:0:0:1", "fe80::1", "node.example", "*"]
        for host in hosts {
            for port in ["0", "4040", "65535", "http", "aemp=4040"] {
                let pair = HostPort(host: host, port: port)
                #expect(parseHostPort(pair.description) == pair, "\(pair)")
                #expect(try HostPort(parsing: pair.description) == pair)
            }
        }
        #expect(parseHostPort(HostPort(host: "unix/", port: "/tmp/x.sock").description)
            == HostPort(host: "unix/", port: "/tmp/x.sock"))
    }

    @Test("long and hostile inputs finish quickly and fail cleanly")
    func hostileInputs() {
        let long = String(repeating: "a", count: 100_000)
        #expect(parseHostPort(long + ":1") == HostPort(host: long, port: "1"))
        #expect(parseHostPort(String(repeating: ":", count: 100_000)) == nil)
        #expect(parseHostPort(String(repeating: "[", count: 100_000)) == nil)
        #expect(parseHostPort(String(repeating: "1:", count: 50_000)) == nil)
        #expect(parseHostPort("\0:\0") == HostPort(host: "\0", port: "\0"))
    }
}
