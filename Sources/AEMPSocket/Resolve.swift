import NIOCore

/// Every IPv4 and IPv6 address of a host name or textual address (IPv4 first).
///
/// Numeric input (any form ``parseIP(_:)`` accepts) and `localhost` (`127.0.0.1` and `::1`) are
/// answered without a lookup; otherwise the resolver's hosts file, then DNS A and AAAA records.
///
/// Perl: `inet_aton $name_or_address, $cb->(@addresses)`.
/// ```swift
/// let addresses = try await resolve("example.com")
/// ```
/// - Parameters:
///   - name: A host name or a textual IP address.
///   - resolver: The resolver to use; ``DNSResolver/shared`` by default.
/// - Returns: At least one address.
/// - Throws: ``SocketError`` with `ENXIO` (no such name, or no addresses), `ETIMEDOUT` (no
///   nameserver answered in time), `EPROTO` (only malformed replies), `EINVAL` (not a possible
///   DNS name) or `ECANCELED` (the task was cancelled).
public func resolve(_ name: String, resolver: DNSResolver = .shared) async throws(SocketError) -> [IPAddress] {
    try await resolver.addresses(for: name)
}

/// Callback form of ``resolve(_:resolver:)``: looks `name` up and calls `callback` once, on
/// `eventLoop`, with the addresses or the error.
///
/// Perl: `inet_aton $name_or_address, $cb->(@addresses)` (Perl signals failure with an empty
/// list; here the failure carries its ``SocketError``).
/// - Parameters:
///   - name: A host name or a textual IP address.
///   - eventLoop: Where the callback runs; a loop of the resolver's group by default.
///   - resolver: The resolver to use; ``DNSResolver/shared`` by default.
///   - callback: Receives the addresses (never empty on success) or the error.
public func resolve(
    _ name: String,
    on eventLoop: (any EventLoop)? = nil,
    resolver: DNSResolver = .shared,
    _ callback: @escaping @Sendable (Result<[IPAddress], SocketError>) -> Void
) {
    let loop = eventLoop ?? resolver.group.next()
    Task {
        let result: Result<[IPAddress], SocketError>
        do throws(SocketError) {
            result = .success(try await resolver.addresses(for: name))
        } catch {
            result = .failure(error)
        }
        loop.execute { callback(result) }
    }
}
