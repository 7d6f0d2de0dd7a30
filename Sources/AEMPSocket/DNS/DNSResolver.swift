import NIOCore
import NIOPosix

/// An asynchronous stub resolver: real DNS over UDP (retried over TCP when a reply is
/// truncated), with the hosts file consulted first.
///
/// Perl: `AnyEvent::DNS` (the resolver object and its `a`, `aaaa` and `srv` helpers).
///
/// Every lookup is bounded: each query waits at most ``Configuration/timeout`` per server and
/// makes ``Configuration/attempts`` rounds over the nameservers; the A and AAAA queries of a
/// name run in parallel. Query ids are random; a reply is used only if it comes from the
/// server asked and repeats the id and question. Malformed replies are skipped (and reported
/// as `EPROTO` if nothing valid arrives).
///
/// ```swift
/// let resolver = DNSResolver(configuration: .init(nameservers: [.init(parseIP("127.0.0.1")!, port: 5353)]))
/// let addresses = try await resolver.addresses(for: "example.com")
/// ```
public final class DNSResolver: Sendable {
    /// The settings this resolver uses.
    public let configuration: Configuration
    /// The event loops the queries run on.
    let group: any EventLoopGroup
    let hostsCache = ParsedFileCache<HostsFile> { HostsFile(parsing: $0) }

    /// The process-wide resolver, configured from `/etc/resolv.conf` when first used.
    ///
    /// Perl: `AnyEvent::DNS::resolver`.
    public static let shared = DNSResolver(configuration: .system())

    /// Creates a resolver.
    ///
    /// - Parameters:
    ///   - configuration: Nameservers, timeouts, search list, hosts file.
    ///   - group: Where the sockets run; the NIO singleton by default.
    public init(
        configuration: Configuration = .system(),
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.group = group
    }

    // MARK: Public lookups

    /// Every IPv4 and IPv6 address of `name` (IPv4 first).
    ///
    /// Numeric addresses (anything ``parseIP(_:)`` accepts) and `localhost` (`127.0.0.1`, `::1`)
    /// are answered without a lookup; then the hosts file is consulted; then DNS (A and AAAA).
    ///
    /// Perl: `inet_aton` (the part after the callback plumbing). Unlike AnyEvent, which reads
    /// the hosts file only when DNS has no answer, a name listed in the hosts file is answered
    /// from it without any query, as the system resolver does (`files dns`).
    /// - Throws: `ENXIO` when the name does not exist or has no addresses, `ETIMEDOUT` when no
    ///   nameserver answered, `EPROTO` when only malformed replies came, `EINVAL` for a name that
    ///   cannot be a DNS name, `ECANCELED` when the task was cancelled.
    public func addresses(for name: String) async throws(SocketError) -> [IPAddress] {
        if let address = parseIP(name) { return [address] }
        let canonical = canonicalDNSName(name)
        if canonical == "localhost" { return [.ipv4Loopback, .ipv6Loopback] }
        guard !canonical.isEmpty else { throw SocketError(.invalidArgument, "empty host name '\(name)'") }
        let fromHosts = hostsAddresses(for: canonical)
        if !fromHosts.isEmpty { return fromHosts }
        return try await dnsAddresses(for: name)
    }

    /// The SRV records of `_service._proto.host` in RFC 2782 order (priority ascending,
    /// weighted random within a priority).
    ///
    /// Perl: `AnyEvent::DNS::srv`.
    /// - Parameters:
    ///   - service: The service name without underscore, e.g. `"xmpp-client"`.
    ///   - proto: The protocol without underscore, `"tcp"` by default.
    ///   - host: The domain.
    /// - Returns: The records; empty when there are none or when the only record has the
    ///   target `.` ("service decidedly not available").
    /// - Throws: `ETIMEDOUT`, `EPROTO`, `EINVAL`, `ECANCELED` as for ``addresses(for:)``;
    ///   a name that does not exist gives an empty array, not an error.
    public func srv(service: String, proto: String = "tcp", host: String) async throws(SocketError) -> [SRVRecord] {
        switch try await srvLookup(service: service, proto: proto, host: host) {
        case .records(let records): records
        case .none, .unavailable: []
        }
    }

    // MARK: Internals

    /// The result of an SRV lookup, keeping "none" and "explicitly unavailable" apart.
    enum SRVLookup: Equatable {
        case records([SRVRecord])
        case none
        case unavailable
    }

    func srvLookup(service: String, proto: String, host: String) async throws(SocketError) -> SRVLookup {
        let records = try await lookup(name: "_\(service)._\(proto).\(host)", type: .srv)
        var found: [SRVRecord] = []
        for record in records {
            if case .srv(let srv) = record.data { found.append(srv) }
        }
        if found.isEmpty { return .none }
        if found.count == 1 && found[0].target == "." { return .unavailable }
        return .records(SRVRecord.rfc2782Order(found.filter { $0.target != "." }))
    }

    /// The hosts-file addresses of a canonical name (IPv4 first), or empty.
    func hostsAddresses(for canonical: String) -> [IPAddress] {
        guard let path = configuration.hostsFile, let hosts = hostsCache.value(path: path) else { return [] }
        return hosts.addresses(for: canonical)
    }

    /// A and AAAA records of `name` by DNS (in parallel), IPv4 first, deduplicated.
    func dnsAddresses(for name: String) async throws(SocketError) -> [IPAddress] {
        async let ipv4 = lookupResult(name: name, type: .a)
        async let ipv6 = lookupResult(name: name, type: .aaaa)
        let results = await [ipv4, ipv6]
        var addresses: [IPAddress] = []
        var seen = Set<IPAddress>()
        var failure: SocketError?
        for result in results {
            switch result {
            case .success(let records):
                for record in records {
                    if case .address(let address) = record.data, seen.insert(address).inserted {
                        addresses.append(address)
                    }
                }
            case .failure(let error):
                if failure == nil || error.code == .cancelled { failure = error }
            }
        }
        if let failure, failure.code == .cancelled { throw failure }
        if !addresses.isEmpty { return addresses }
        if let failure { throw failure }
        throw SocketError(.noSuchAddress, "'\(name)' has no A or AAAA records")
    }

    func lookupResult(name: String, type: DNSRecordType) async -> Result<[DNSResourceRecord], SocketError> {
        do throws(SocketError) {
            return .success(try await lookup(name: name, type: type))
        } catch {
            return .failure(error)
        }
    }

    /// Records of `type` for `name`, applying the search list and following CNAMEs.
    ///
    /// - Returns: The records; empty when every candidate name was answered negatively
    ///   (NXDOMAIN or no data).
    /// - Throws: The failure of the last candidate tried when none was answered; a timeout or
    ///   refusal stops the search at once (the next names would meet the same silent servers).
    func lookup(name: String, type: DNSRecordType) async throws(SocketError) -> [DNSResourceRecord] {
        var scratch: [UInt8] = []
        try DNSMessage.appendName(name, to: &scratch)
        var answered = false
        var lastError: SocketError?
        for candidate in configuration.candidates(for: name) {
            scratch.removeAll(keepingCapacity: true)
            guard (try? DNSMessage.appendName(candidate, to: &scratch)) != nil else { continue }
            do throws(SocketError) {
                let records = try await lookupFollowingCNAMEs(name: candidate, type: type)
                if !records.isEmpty { return records }
                answered = true
            } catch {
                lastError = error
                // Only a bad or failing answer is worth another name; silence, refusal,
                // unreachable networks and cancellation would just repeat.
                if error.code != .protocolError && error.code != .noSuchAddress { break }
            }
        }
        if let lastError, !answered || lastError.code == .cancelled { throw lastError }
        return []
    }

    /// The longest CNAME chain followed, as in common stub resolvers.
    static let maximumCNAMEChain = 10

    /// Records of `type` owned by `name` or, through a CNAME chain in the answer, by its
    /// canonical name; re-asks for the chain's end when the server stopped there.
    func lookupFollowingCNAMEs(name: String, type: DNSRecordType) async throws(SocketError) -> [DNSResourceRecord] {
        var current = name
        var visited: Set<String> = [name]
        while true {
            let message = try await query(name: current, type: type)
            var followed = false
            while true {
                let matches = message.answers.filter {
                    $0.name == current && $0.type == type && $0.recordClass == DNSMessage.classIN
                }
                if !matches.isEmpty { return matches }
                guard
                    let link = message.answers.first(where: { $0.name == current && $0.type == .cname }),
                    case .cname(let target) = link.data
                else { break }
                // A loop or an overlong chain ends the lookup with nothing.
                guard visited.insert(target).inserted, visited.count <= Self.maximumCNAMEChain + 1 else { return [] }
                current = target
                followed = true
            }
            if !followed { return [] }
        }
    }

    /// Asks the nameservers about one exact name: every server in turn, for the configured
    /// number of rounds, until one gives an authoritative-enough answer (NOERROR or NXDOMAIN).
    func query(name: String, type: DNSRecordType) async throws(SocketError) -> DNSMessage {
        var failures: [SocketError] = []
        for _ in 0..<configuration.effectiveAttempts {
            for server in configuration.effectiveNameservers {
                if Task.isCancelled { throw SocketError(.cancelled, "DNS query for \(name) cancelled") }
                let id = UInt16.random(in: .min ... .max)
                let key = DNSQueryKey(id: id, name: name, type: type, server: server)
                let query = try DNSMessage.query(id: id, name: name, type: type)
                do throws(SocketError) {
                    var message = try await exchange(query: query, key: key, overTCP: false)
                    if message.isTruncated {
                        message = try await exchange(query: query, key: key, overTCP: true)
                    }
                    switch message.responseCode {
                    case DNSMessage.ResponseCode.noError, DNSMessage.ResponseCode.nameError:
                        return message
                    default:
                        failures.append(
                            SocketError(
                                .noSuchAddress,
                                "nameserver \(server) answered \(name) \(type) with response code \(message.responseCode)"
                            )
                        )
                    }
                } catch {
                    if error.code == .cancelled { throw error }
                    failures.append(error)
                }
            }
        }
        throw Self.summarize(failures, name: name, type: type)
    }

    /// Picks the most telling failure: a malformed reply, then a server failure code, then a
    /// refusal, then a timeout.
    static func summarize(_ failures: [SocketError], name: String, type: DNSRecordType) -> SocketError {
        let ranking: [SocketError.Code] = [.protocolError, .noSuchAddress, .connectionRefused, .timedOut]
        for code in ranking {
            if let failure = failures.first(where: { $0.code == code }) {
                var error = failure
                error.message = "no usable answer for \(name) \(type) after \(failures.count) tries; \(failure.message)"
                return error
            }
        }
        return failures.first ?? SocketError(.timedOut, "no nameserver answered \(name) \(type)")
    }
}
