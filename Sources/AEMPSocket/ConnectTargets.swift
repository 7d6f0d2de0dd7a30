/// Turns a host and a service into the ordered list of targets `tcpConnect` tries.
///
/// See ``DNSResolver/connectTargets(host:service:)``.
/// - Parameters:
///   - host: A host name, a textual address, or `unix/`.
///   - service: A port number, a service name, `name=port`, or (with `unix/`) a socket path.
///   - resolver: The resolver to use; ``DNSResolver/shared`` by default.
func resolveConnectTargets(
    host: String,
    service: String,
    resolver: DNSResolver = .shared
) async throws(SocketError) -> [ConnectTarget] {
    try await resolver.connectTargets(host: host, service: service)
}

extension DNSResolver {
    /// The ordered, de-duplicated list of places to connect to for `host` and `service`.
    ///
    /// - `host` `unix/`: the single Unix socket whose absolute path is `service`.
    /// - `service`: a port number, a name from the services file (`tcp`), or `name=port`
    ///   (the name for SRV, the number as the port).
    /// - When `host` is a name and `service` is not a bare number, the SRV records
    ///   `_service._tcp.host` decide the targets (in RFC 2782 order, each with its own port); if
    ///   there are none, `host` with the service's port is used. A sole SRV record with target
    ///   `.` means the service is not available there.
    /// - Numeric hosts need no lookup; `localhost` is `127.0.0.1` and `::1`.
    /// - All IPv4 targets come before all IPv6 ones, each family in target order (AnyEvent's
    ///   default preference).
    ///
    /// Perl: `AnyEvent::Socket::resolve_sockaddr $host, $service, "tcp", 0, SOCK_STREAM`.
    /// - Throws: `ENXIO` when nothing resolved (unknown name, unknown service, SRV says
    ///   unavailable, lookup failure; the lookup's own error is kept as `underlying`),
    ///   `ECANCELED` when the task was cancelled.
    public func connectTargets(host: String, service: String) async throws(SocketError) -> [ConnectTarget] {
        if host == "unix/" {
            guard service.hasPrefix("/") else {
                throw SocketError(.noSuchAddress, "host unix/ needs an absolute socket path as service, not '\(service)'")
            }
            return [.unix(path: service)]
        }
        let (srvName, port) = try await parseService(service)

        // The hosts to look up, each with its port, in preference order.
        var hosts: [(name: String, port: Int)] = [(host, port)]
        if parseIP(host) == nil {
            if canonicalDNSName(host) == "localhost" {
                hosts = [("127.0.0.1", port), ("::1", port)]
            } else if let srvName {
                let lookup: SRVLookup
                do throws(SocketError) {
                    lookup = try await srvLookup(service: srvName, proto: "tcp", host: host)
                } catch where error.code == .cancelled {
                    throw error
                } catch {
                    lookup = .none  // like Perl: a failed SRV lookup falls back to the plain name
                }
                switch lookup {
                case .records(let records):
                    hosts = records.map { ("\($0.target).", $0.port) }
                case .unavailable:
                    throw SocketError(.noSuchAddress, "service '\(srvName)' is not available at '\(host)' (SRV target '.')")
                case .none:
                    break
                }
            }
        }

        // Resolve the targets in parallel, but never more than a few at once: an SRV answer over
        // TCP can list hundreds of targets.
        let resolved = await withTaskGroup(of: (Int, Result<[IPAddress], SocketError>).self) { group in
            // Written without a nested function capturing the group: that shape was miscompiled in
            // release builds (Swift 6.3.1), mixing up the indices the children returned.
            var results = [Result<[IPAddress], SocketError>?](repeating: nil, count: hosts.count)
            var next = 0
            while next < min(hosts.count, Self.maximumParallelTargetLookups) {
                let index = next
                let name = hosts[index].name
                group.addTask { (index, await self.addressResult(for: name)) }
                next += 1
            }
            while let (index, result) = await group.next() {
                results[index] = result
                if next < hosts.count {
                    let index = next
                    let name = hosts[index].name
                    group.addTask { (index, await self.addressResult(for: name)) }
                    next += 1
                }
            }
            return results
        }

        var ipv4: [ConnectTarget] = []
        var ipv6: [ConnectTarget] = []
        var seen = Set<ConnectTarget>()
        var firstError: SocketError?
        for (index, result) in resolved.enumerated() {
            switch result {
            case .success(let addresses):
                for address in addresses {
                    let target = ConnectTarget.ip(address, port: hosts[index].port)
                    guard seen.insert(target).inserted else { continue }
                    if address.family == .ipv4 { ipv4.append(target) } else { ipv6.append(target) }
                }
            case .failure(let error):
                if error.code == .cancelled { throw error }
                if firstError == nil { firstError = error }
            case nil:
                break
            }
        }
        if Task.isCancelled { throw SocketError(.cancelled, "resolving \(host) cancelled") }
        guard ipv4.isEmpty && ipv6.isEmpty else { return ipv4 + ipv6 }
        throw SocketError(
            .noSuchAddress,
            "cannot resolve \(host):\(service)" + (firstError.map { ": \($0.message)" } ?? ""),
            underlying: firstError
        )
    }

    /// The targets of a host and service that need no lookup at all (a textual IP address with a numeric
    /// port, or `unix/` with an absolute path), or `nil` when ``connectTargets(host:service:)`` has to run.
    ///
    /// Lets ``tcpConnect(host:service:on:resolver:prepare:connect:)`` start such connects on its event
    /// loop at once, without a detour through Swift concurrency's thread pool.
    nonisolated static func immediateConnectTargets(host: String, service: String) -> [ConnectTarget]? {
        if host == "unix/" {
            return service.hasPrefix("/") ? [.unix(path: service)] : nil
        }
        guard !service.isEmpty, service.utf8.count <= 5,
            service.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let port = Int(service), port <= 65535,
            let address = parseIP(host)
        else { return nil }
        return [.ip(address, port: port)]
    }

    /// ``addresses(for:)`` as a `Result`, for the task group of ``connectTargets(host:service:)``.
    private func addressResult(for name: String) async -> Result<[IPAddress], SocketError> {
        do throws(SocketError) {
            return .success(try await addresses(for: name))
        } catch {
            return .failure(error)
        }
    }

    /// How many SRV targets ``connectTargets(host:service:)`` looks up at the same time.
    static let maximumParallelTargetLookups = 8

    /// Splits a `tcp_connect` service into the name used for SRV (if any) and the port.
    func parseService(_ service: String) async throws(SocketError) -> (srvName: String?, port: Int) {
        func isDigits(_ text: Substring) -> Bool {
            !text.isEmpty && text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
        func port(_ digits: Substring) throws(SocketError) -> Int {
            guard let value = Int(digits), value <= 65535 else {
                throw SocketError(.noSuchAddress, "port \(digits) in service '\(service)' is out of range")
            }
            return value
        }
        let text = Substring(service)
        if isDigits(text) { return (nil, try port(text)) }
        if let equals = text.lastIndex(of: "="), isDigits(text[text.index(after: equals)...]) {
            let name = text[..<equals]
            if !name.isEmpty, !name.contains(where: \.isWhitespace) {
                return (String(name), try port(text[text.index(after: equals)...]))
            }
        }
        guard let number = servicePort(service, proto: "tcp", servicesFile: configuration.servicesFile) else {
            throw SocketError(.noSuchAddress, "service '\(service)/tcp' is unknown (\(configuration.servicesFile))")
        }
        return (service, number)
    }
}
