import NIOCore

extension DNSResolver {
    /// A nameserver to send queries to.
    public struct Nameserver: Hashable, Sendable, CustomStringConvertible {
        /// The server's address.
        public var address: IPAddress
        /// The server's UDP and TCP port (53 normally).
        public var port: Int

        /// Creates a nameserver entry.
        public init(_ address: IPAddress, port: Int = 53) {
            self.address = address
            self.port = port
        }

        /// `address:port`, with IPv6 addresses in brackets.
        public var description: String {
            address.family == .ipv6 ? "[\(formatIP(address))]:\(port)" : "\(formatIP(address)):\(port)"
        }
    }

    /// How a ``DNSResolver`` looks names up.
    ///
    /// Perl: the `AnyEvent::DNS` constructor arguments (`server`, `timeout`, `search`, `ndots`)
    /// and `parse_resolv_conf`.
    public struct Configuration: Sendable {
        /// The servers to ask, in order. Each query tries every server once per attempt.
        public var nameservers: [Nameserver]
        /// How long to wait for each server's reply before asking the next one.
        public var timeout: Duration
        /// How many rounds over all nameservers a query makes before giving up.
        public var attempts: Int
        /// Suffixes to append to relative names (resolv.conf `search` / `domain`).
        public var search: [String]
        /// Names with at least this many dots are tried as given before the search list.
        public var ndots: Int
        /// The hosts file consulted before DNS, or `nil` for none.
        public var hostsFile: String?
        /// The services file that service names are looked up in (`tcp` entries).
        public var servicesFile: String

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - nameservers: The servers to ask; an empty list means `127.0.0.1`, as in resolv.conf.
        ///   - timeout: Per-server, per-attempt wait (at least 1 ms is used).
        ///   - attempts: Rounds over all servers (at least 1 is used).
        ///   - search: The search list.
        ///   - ndots: The ndots threshold.
        ///   - hostsFile: The hosts file to consult first, or `nil`.
        ///   - servicesFile: The services file for service names.
        public init(
            nameservers: [Nameserver] = [],
            timeout: Duration = .seconds(5),
            attempts: Int = 2,
            search: [String] = [],
            ndots: Int = 1,
            hostsFile: String? = "/etc/hosts",
            servicesFile: String = ServicesFile.defaultPath
        ) {
            self.nameservers = nameservers
            self.timeout = timeout
            self.attempts = attempts
            self.search = search
            self.ndots = ndots
            self.hostsFile = hostsFile
            self.servicesFile = servicesFile
        }

        /// The configuration in a resolv.conf text, on top of `base` (whose nameservers and
        /// search list are replaced when the text has any).
        ///
        /// Understands `nameserver ADDRESS` (unparsable addresses are skipped), `domain NAME`,
        /// `search NAME...` (the last `domain`/`search` line wins), and `options` with
        /// `timeout:N` (seconds), `attempts:N` and `ndots:N`; `#` and `;` start comments;
        /// everything else is ignored.
        ///
        /// Perl: `AnyEvent::DNS::parse_resolv_conf`.
        /// - Parameters:
        ///   - text: The resolv.conf contents.
        ///   - base: The values used for whatever the text does not set.
        public init(resolvConf text: String, base: Configuration = Configuration()) {
            self = base
            var nameservers: [Nameserver] = []
            var search: [String]?
            for fields in TextFiles.fieldLines(text, commentCharacters: ["#", ";"]) {
                switch fields[0].lowercased() {
                case "nameserver":
                    guard fields.count >= 2, let address = parseIP(String(fields[1])) else { continue }
                    let server = Nameserver(address)
                    if !nameservers.contains(server) { nameservers.append(server) }
                case "domain":
                    search = fields.count >= 2 ? [String(fields[1])] : []
                case "search":
                    search = fields.dropFirst().map(String.init)
                case "options":
                    for option in fields.dropFirst() {
                        let parts = option.split(separator: ":", maxSplits: 1)
                        guard parts.count == 2, let value = Int(parts[1]), value >= 0 else { continue }
                        switch parts[0] {
                        case "timeout": timeout = .seconds(min(value, 30))
                        case "attempts": attempts = min(value, 5)
                        case "ndots": ndots = min(value, 15)
                        default: break
                        }
                    }
                default:
                    continue
                }
            }
            if !nameservers.isEmpty { self.nameservers = nameservers }
            if let search {
                var seen = Set<String>()
                self.search = search.map(canonicalDNSName).filter { !$0.isEmpty && seen.insert($0).inserted }
            }
        }

        /// The configuration in `/etc/resolv.conf` (or `path`); the defaults if it cannot be read.
        ///
        /// - Parameters:
        ///   - path: The resolv.conf file.
        ///   - base: The values used for whatever the file does not set.
        public static func system(
            resolvConf path: String = "/etc/resolv.conf",
            base: Configuration = Configuration()
        ) -> Configuration {
            guard let text = TextFiles.read(path) else { return base }
            return Configuration(resolvConf: text, base: base)
        }

        /// The servers actually asked: ``nameservers`` or `127.0.0.1` when that is empty.
        var effectiveNameservers: [Nameserver] {
            nameservers.isEmpty ? [Nameserver(.ipv4Loopback)] : nameservers
        }

        /// The names to try for `name`, in order (resolv.conf `search`/`ndots` rules).
        func candidates(for name: String) -> [String] {
            if name.hasSuffix(".") { return [canonicalDNSName(name)] }
            let base = canonicalDNSName(name)
            let dots = base.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: ".") ? 1 : 0) }
            let suffixed = search.map { "\(base).\(canonicalDNSName($0))" }
            return dots >= ndots ? [base] + suffixed : suffixed + [base]
        }
    }
}

extension DNSResolver.Configuration {
    /// ``timeout`` as a NIO time amount, at least 1 ms and at most one hour.
    var timeoutAmount: TimeAmount {
        let (seconds, attoseconds) = timeout.components
        let clamped = min(max(seconds, 0), 3600)
        return .nanoseconds(max(clamped * 1_000_000_000 + attoseconds / 1_000_000_000, 1_000_000))
    }

    /// ``attempts`` clamped to 1...10.
    var effectiveAttempts: Int { min(max(attempts, 1), 10) }
}
