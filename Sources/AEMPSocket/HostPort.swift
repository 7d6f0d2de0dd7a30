// host:port strings as AnyEvent::Socket's parse_hostport / format_hostport read and write them.

/// A host and a port (or service, or Unix socket path) taken from a `host:port` string.
///
/// This is what AEMP binds and seeds are made of: `"1.2.3.4:4040"`, `"[::1]:4040"`,
/// `"host:4040"`, `"*:4040"`, `"unix/:/path"`. Both parts stay text, exactly as written: the
/// host may be a name, an IP literal (without brackets), `*` or `unix/`, and the port may be a
/// number, a service name or a `name=port` string. Nothing is resolved or range-checked here;
/// ``numericPort`` reads a plain decimal port.
///
/// Read one with ``parseHostPort(_:defaultPort:)`` (Perl-faithful, `nil` on failure) or
/// ``init(parsing:defaultPort:)`` (the same grammar, with an error that says what is wrong);
/// ``description`` writes one back (Perl: `format_hostport`).
public struct HostPort: Hashable, Sendable, CustomStringConvertible {
    /// The host: a name, an IPv4 or IPv6 literal without brackets, `*`, or `unix/`.
    public var host: String
    /// The port: a number, a service name, a `name=port` string, or a Unix socket path.
    public var port: String

    /// Creates a pair from its parts; nothing is checked.
    public init(host: String, port: String) {
        self.host = host
        self.port = port
    }

    /// Parses a `host:port` string, throwing an error that explains a failure.
    ///
    /// Accepts exactly what ``parseHostPort(_:defaultPort:)`` accepts; see there for the
    /// grammar (Perl: `parse_hostport`).
    ///
    /// - Parameters:
    ///   - text: The string, e.g. `"10.0.0.1:4040"`, `"[::1]:4040"` or `"*:4040"`.
    ///   - defaultPort: The port to use when `text` has none; `nil` or `""` means "required".
    /// - Throws: ``SocketError`` with code ``SocketError/Code/invalidArgument``, naming the input
    ///   and the problem (missing port, unbalanced brackets, an IPv6-looking host that is not an
    ///   address, ...).
    public init(parsing text: String, defaultPort: String? = nil) throws(SocketError) {
        switch HostPortGrammar.parse(text, defaultPort: defaultPort) {
        case .success(let value): self = value
        case .failure(let problem): throw SocketError(.invalidArgument, problem.message(for: text))
        }
    }

    /// Parses a `host:port` string with a numeric default port; see ``init(parsing:defaultPort:)``.
    ///
    /// - Parameters:
    ///   - text: The string.
    ///   - defaultPort: The port to use when `text` has none.
    /// - Throws: ``SocketError`` (``SocketError/Code/invalidArgument``) if `text` does not parse.
    public init(parsing text: String, defaultPort: Int) throws(SocketError) {
        try self.init(parsing: text, defaultPort: String(defaultPort))
    }

    /// The port as a number, if it is a plain decimal port in `0...65535`; `nil` for service
    /// names, `name=port` strings and paths.
    public var numericPort: Int? {
        let utf8 = port.utf8
        guard !utf8.isEmpty, utf8.count <= 5 else { return nil }
        var value = 0
        for byte in utf8 {
            guard byte >= 0x30, byte <= 0x39 else { return nil }
            value = value * 10 + Int(byte - 0x30)
        }
        return value <= 65535 ? value : nil
    }

    /// The pair as ``formatHostPort(host:port:)`` writes it: `"host:port"`, or `"[host]:port"`
    /// when the host contains a colon (Perl: `format_hostport`).
    public var description: String { formatHostPort(host: host, port: port) }
}

/// Splits a `host:port` string into host and port (Perl: `parse_hostport`).
///
/// This is a faithful port of AnyEvent 7.17 and gives `nil` exactly where Perl returns the empty
/// list. Accepted forms, where the port part is optional when a default is given:
///
/// | form | example | result |
/// |---|---|---|
/// | `host:port`, `host port` | `"www.x.de:443"`, `"host 80"` | `www.x.de`, `443` |
/// | `ipv4:port` | `"127.1:22"` | `127.1`, `22` |
/// | `[host]:port`, `[host] port`, `[host]#port` | `"[::1]:80"`, `"[10.0.1]:80"` | `::1`, `80` |
/// | `ipv6 port`, `ipv6#port` | `"::1 443"`, `"::1#443"` | `::1`, `443` |
/// | `ipv6` (port from the default) | `"::1:443"` | `::1:443`, default |
/// | `unix/:path` | `"unix/:/tmp/s"` | `unix/`, `/tmp/s` |
/// | `/path` (the whole string) | `"/tmp/s"` | `unix/`, `/tmp/s` |
///
/// Rules worth knowing (all Perl's):
/// - A string starting with `/` is always a Unix socket path, whatever follows.
/// - If the start (after whitespace) looks like IPv6 (hex digits and at least two colons), the
///   whole run of hex digits, colons and dots must be one IPv6 address: `"::1:443"` is a host
///   with no port, and `"dead:beef:80"` or `"::ffff:1.2.3.4:80"` fail. Use brackets.
/// - Otherwise leading whitespace fails. A bare host runs up to `[`, `]`, `:` or a space (so it
///   may contain tabs, newlines or `#`); a bracketed host may contain anything but brackets.
/// - The port follows after whitespace, a single `:` or a single `#`, has no colons or
///   whitespace, and only whitespace may follow it. A bracketed host with a colon must be IPv6.
/// - Without a port, a non-empty `defaultPort` is used; otherwise the parse fails. A lone
///   number (`"4040"`) is a host, not a port.
/// - Whitespace means the ASCII characters space, tab, LF, VT, FF and CR.
///
/// The only differences from Perl come from ``parseIPv6(_:)``, which decides what counts as an
/// IPv6 host: for example `"1::2:3:4:5:6:7:8 80"` fails here and parses in Perl.
///
/// - Parameters:
///   - text: The string to split.
///   - defaultPort: The port to use when `text` has none (Perl's optional second argument).
/// - Returns: The host and port, or `nil` if `text` does not parse.
public func parseHostPort(_ text: String, defaultPort: String? = nil) -> HostPort? {
    if case .success(let value) = HostPortGrammar.parse(text, defaultPort: defaultPort) { return value }
    return nil
}

/// Splits a `host:port` string with a numeric default port; see ``parseHostPort(_:defaultPort:)``.
///
/// - Parameters:
///   - text: The string to split.
///   - defaultPort: The port to use when `text` has none.
/// - Returns: The host and port, or `nil` if `text` does not parse.
public func parseHostPort(_ text: String, defaultPort: Int) -> HostPort? {
    parseHostPort(text, defaultPort: String(defaultPort))
}

/// Joins a host and a port into a string that ``parseHostPort(_:defaultPort:)`` reads back
/// (Perl: `format_hostport`).
///
/// A host containing a colon is put in brackets (`"[::1]:4040"`); an empty or `nil` port is left
/// out (`"[::1]"`). Like Perl, nothing is validated, so a few outputs do not parse back: a host
/// with a zone id (`"[fe80::1%eth0]:80"`), a Unix path containing a colon, a port with spaces.
///
/// - Parameters:
///   - host: The host text.
///   - port: The port text, or `nil`.
/// - Returns: `"host:port"`, `"[host]:port"`, `"host"` or `"[host]"`.
public func formatHostPort(host: String, port: String?) -> String {
    let bracket = host.utf8.contains(ASCII.colon)
    var text = bracket ? "[" + host + "]" : host
    if let port, !port.isEmpty {
        text += ":"
        text += port
    }
    return text
}

// MARK: - Implementation

/// Why a `host:port` string did not parse.
enum HostPortProblem: Error, Equatable {
    case empty
    case leadingWhitespace
    case notIPv6(String)
    case emptyBrackets
    case unbalancedBrackets
    case missingHost
    case missingPort
    case badPort
    case colonInHost(String)

    func message(for text: String) -> String {
        let quoted = "'\(text)'"
        switch self {
        case .empty:
            return "cannot parse host:port \(quoted): the string is empty or blank"
        case .leadingWhitespace:
            return "cannot parse host:port \(quoted): leading whitespace is only allowed before an IPv6 address"
        case .notIPv6(let host):
            return "cannot parse host:port \(quoted): '\(host)' looks like an IPv6 address but is not one"
                + " (write an IPv6 host as [address]:port or 'address port')"
        case .emptyBrackets:
            return "cannot parse host:port \(quoted): the brackets hold no host"
        case .unbalancedBrackets:
            return "cannot parse host:port \(quoted): '[' without a matching ']'"
        case .missingHost:
            return "cannot parse host:port \(quoted): no host before the port"
        case .missingPort:
            return "cannot parse host:port \(quoted): no port given and no default port"
        case .badPort:
            return "cannot parse host:port \(quoted): expected ':port', '#port' or ' port' after the host,"
                + " with no colons or spaces in the port and nothing after it"
        case .colonInHost(let host):
            return "cannot parse host:port \(quoted): host '\(host)' contains ':' but is not an IPv6 address"
        }
    }
}

/// The `parse_hostport` grammar, over the UTF-8 bytes (every delimiter is ASCII).
enum HostPortGrammar {
    @inline(__always)
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (byte >= 0x09 && byte <= 0x0d)
    }

    @inline(__always)
    static func isHexOrColon(_ byte: UInt8) -> Bool {
        byte == ASCII.colon || ASCII.hexValue(byte) != nil
    }

    static func parse(_ text: String, defaultPort: String?) -> Result<HostPort, HostPortProblem> {
        var copy = text
        return copy.withUTF8 { parse($0, text: text, defaultPort: defaultPort) }
    }

    private static func string(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<end]), as: UTF8.self)
    }

    private static func parse(
        _ buffer: UnsafeBufferPointer<UInt8>, text: String, defaultPort: String?
    ) -> Result<HostPort, HostPortProblem> {
        let end = buffer.endIndex
        // "/path": the whole string is a Unix socket path.
        if end > 0, buffer[0] == 0x2f { return .success(HostPort(host: "unix/", port: text)) }

        var index = 0
        while index < end, isSpace(buffer[index]) { index += 1 }
        let host: String
        // IPv6 first: a run of hex digits and colons with at least two colons, extended by dots.
        var colons = 0
        var runEnd = index
        while runEnd < end, isHexOrColon(buffer[runEnd]) {
            if buffer[runEnd] == ASCII.colon { colons += 1 }
            runEnd += 1
        }
        if colons >= 2 {
            while runEnd < end, isHexOrColon(buffer[runEnd]) || buffer[runEnd] == ASCII.dot { runEnd += 1 }
            let candidate = string(buffer, index, runEnd)
            guard parseIPv6(candidate) != nil else { return .failure(.notIPv6(candidate)) }
            host = candidate
            index = runEnd
        } else if index > 0 {
            return .failure(end == index ? .empty : .leadingWhitespace)
        } else if end == 0 {
            return .failure(.empty)
        } else if buffer[0] == 0x5b {  // "[host]"
            var close = 1
            while close < end, buffer[close] != 0x5b, buffer[close] != 0x5d { close += 1 }
            guard close < end, buffer[close] == 0x5d else { return .failure(.unbalancedBrackets) }
            guard close > 1 else { return .failure(.emptyBrackets) }
            host = string(buffer, 1, close)
            index = close + 1
        } else {
            var hostEnd = 0
            while hostEnd < end {
                let byte = buffer[hostEnd]
                if byte == 0x5b || byte == 0x5d || byte == ASCII.colon || byte == 0x20 { break }
                hostEnd += 1
            }
            guard hostEnd > 0 else { return .failure(buffer[0] == 0x5d ? .unbalancedBrackets : .missingHost) }
            host = string(buffer, 0, hostEnd)
            index = hostEnd
        }

        // The port: after whitespace, ':' or '#', up to optional trailing whitespace.
        var portStart = index
        if index < end, isSpace(buffer[index]) {
            while portStart < end, isSpace(buffer[portStart]) { portStart += 1 }
        } else if index < end, buffer[index] == ASCII.colon || buffer[index] == 0x23 {
            portStart += 1
        } else if index < end {
            return .failure(.badPort)
        }
        let port: String
        if index == end || (portStart == end && isSpace(buffer[index])) {
            // Nothing but whitespace after the host: use the default.
            guard let defaultPort, !defaultPort.isEmpty else { return .failure(.missingPort) }
            port = defaultPort
        } else {
            var portEnd = portStart
            while portEnd < end, buffer[portEnd] != ASCII.colon, !isSpace(buffer[portEnd]) { portEnd += 1 }
            var rest = portEnd
            while rest < end, isSpace(buffer[rest]) { rest += 1 }
            guard portEnd > portStart, rest == end else { return .failure(.badPort) }
            port = string(buffer, portStart, portEnd)
        }

        // A host name must not contain colons (only a bracketed host can get here with one).
        if host.utf8.contains(ASCII.colon), parseIPv6(host) == nil { return .failure(.colonInHost(host)) }
        return .success(HostPort(host: host, port: port))
    }
}
