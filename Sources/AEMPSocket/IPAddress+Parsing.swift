#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses an IPv4 address (Perl: `parse_ipv4`). Interim version: dotted quads only.
public func parseIPv4(_ text: String) -> IPAddress? {
    var addr = in_addr()
    guard inet_pton(AF_INET, text, &addr) == 1 else { return nil }
    return withUnsafeBytes(of: &addr) { IPAddress(bytes: $0) }
}

/// Parses an IPv6 address (Perl: `parse_ipv6`). Interim version: inet_pton forms only.
public func parseIPv6(_ text: String) -> IPAddress? {
    var addr = in6_addr()
    guard inet_pton(AF_INET6, text, &addr) == 1 else { return parseIPv4(text) }
    return withUnsafeBytes(of: &addr) { IPAddress(bytes: $0) }
}

/// Parses an IPv4 or IPv6 address (Perl: `parse_address`).
public func parseIP(_ text: String) -> IPAddress? {
    parseIPv6(text)
}
