/// The parsed contents of a services file (`/etc/services` format).
///
/// Perl: what `getservbyname` reads, as `tcp_connect` uses it for its `$service` argument.
public struct ServicesFile: Sendable {
    /// `"name/proto"` (name and aliases) to port.
    private var ports: [String: Int] = [:]

    /// Parses services-file text: `name port/protocol [alias...]` per line, `#` comments.
    /// Lines with a malformed or out-of-range port are skipped; the first entry for a name wins.
    ///
    /// - Parameter text: The file contents.
    public init(parsing text: String) {
        for fields in TextFiles.fieldLines(text) where fields.count >= 2 {
            let portAndProto = fields[1].split(separator: "/", maxSplits: 1)
            guard portAndProto.count == 2, let port = Int(portAndProto[0]), (0...65535).contains(port) else { continue }
            let proto = portAndProto[1].lowercased()
            for (index, name) in fields.enumerated() where index != 1 {
                let key = "\(name)/\(proto)"
                if ports[key] == nil { ports[key] = port }
            }
        }
    }

    /// The port of service `name` (or one of its aliases) for protocol `proto`, or `nil`.
    ///
    /// - Parameters:
    ///   - name: The service name; case-sensitive, as with `getservbyname`.
    ///   - proto: The protocol, `"tcp"` by default.
    public func port(of name: String, proto: String = "tcp") -> Int? {
        ports["\(name)/\(proto.lowercased())"]
    }

    /// The standard location.
    public static let defaultPath = "/etc/services"

    /// Each services file is parsed once and kept (re-read only when its modification time changes).
    static let cache = ParsedFileCache<ServicesFile> { ServicesFile(parsing: $0) }
}

/// The port of a service name from a services file, the file parsed once and cached.
///
/// Perl: `getservbyname($name, $proto)` as `tcp_connect` uses it.
/// - Parameters:
///   - name: The service name or alias.
///   - proto: The protocol, `"tcp"` by default.
///   - servicesFile: The services file, `/etc/services` by default.
/// - Returns: The port, or `nil` if the name is unknown or the file cannot be read.
public func servicePort(_ name: String, proto: String = "tcp", servicesFile: String = ServicesFile.defaultPath) -> Int? {
    ServicesFile.cache.value(path: servicesFile)?.port(of: name, proto: proto)
}
