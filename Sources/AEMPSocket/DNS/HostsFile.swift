import Synchronization

/// The parsed contents of a hosts file (`/etc/hosts` format).
///
/// Perl: AnyEvent::Socket's internal `%HOSTS` table, which `resolve_sockaddr` consults.
public struct HostsFile: Sendable {
    /// The addresses of one name, in file order, split by family.
    public struct Entry: Hashable, Sendable {
        /// IPv4 addresses.
        public var ipv4: [IPAddress] = []
        /// IPv6 addresses.
        public var ipv6: [IPAddress] = []
    }

    /// Names (lowercased) to their addresses.
    public private(set) var entries: [String: Entry] = [:]

    /// Parses hosts-file text: `address name [alias...]` per line, `#` comments; lines whose
    /// address does not parse are skipped; names are case-insensitive.
    ///
    /// - Parameter text: The file contents.
    public init(parsing text: String) {
        for fields in TextFiles.fieldLines(text) where fields.count >= 2 {
            guard let address = parseIP(String(fields[0])) else { continue }
            for name in fields.dropFirst() {
                let key = canonicalDNSName(String(name))
                if address.family == .ipv4 {
                    entries[key, default: Entry()].ipv4.append(address)
                } else {
                    entries[key, default: Entry()].ipv6.append(address)
                }
            }
        }
    }

    /// The addresses listed for `name` (IPv4 first), or an empty array.
    public func addresses(for name: String) -> [IPAddress] {
        guard let entry = entries[canonicalDNSName(name)] else { return [] }
        return entry.ipv4 + entry.ipv6
    }
}

/// Caches parsed system files by path, re-reading a file when its modification time changes.
///
/// Synchronous and thread-safe, so both async lookups and synchronous calls (``tcpServer``'s
/// service names) share one parsed copy.
final class ParsedFileCache<Value: Sendable>: Sendable {
    private let cache = Mutex<[String: (modified: Int64?, value: Value)]>([:])
    private let parse: @Sendable (String) -> Value

    init(parse: @escaping @Sendable (String) -> Value) {
        self.parse = parse
    }

    /// The parsed file, or `nil` if it cannot be read.
    func value(path: String) -> Value? {
        let modified = TextFiles.modificationTime(path)
        if modified != nil, let cached = cache.withLock({ $0[path] }), cached.modified == modified {
            return cached.value
        }
        guard let text = TextFiles.read(path) else {
            cache.withLock { $0[path] = nil }
            return nil
        }
        let value = parse(text)
        cache.withLock { $0[path] = (modified, value) }
        return value
    }
}
