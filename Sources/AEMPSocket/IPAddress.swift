/// An IPv4 or IPv6 address in network byte order: Perl's "octet form" of an address.
///
/// AnyEvent::Socket passes addresses around as 4- or 16-byte strings; ``IPAddress`` is the same
/// thing with a type. Use ``parseIPv4(_:)``, ``parseIPv6(_:)`` or ``parseIP(_:)`` to read text and
/// ``formatIP(_:)`` (or `description`) to write it.
public struct IPAddress: Hashable, Sendable {
    /// The address family of an ``IPAddress``.
    public enum Family: Hashable, Sendable {
        /// 4 bytes.
        case ipv4
        /// 16 bytes.
        case ipv6
    }

    /// The address bytes in network order: 4 for IPv4, 16 for IPv6.
    public let bytes: [UInt8]

    /// Creates an address from its octets; `nil` unless there are exactly 4 or 16 of them.
    public init?(bytes: some Sequence<UInt8>) {
        let array = Array(bytes)
        guard array.count == 4 || array.count == 16 else { return nil }
        self.bytes = array
    }

    /// The address family, decided by the byte count.
    public var family: Family { bytes.count == 4 ? .ipv4 : .ipv6 }

    /// `0.0.0.0`, the IPv4 wildcard.
    public static let ipv4Any = IPAddress(uncheckedBytes: [0, 0, 0, 0])
    /// `::`, the IPv6 wildcard.
    public static let ipv6Any = IPAddress(uncheckedBytes: [UInt8](repeating: 0, count: 16))
    /// `127.0.0.1`.
    public static let ipv4Loopback = IPAddress(uncheckedBytes: [127, 0, 0, 1])
    /// `::1`.
    public static let ipv6Loopback = IPAddress(uncheckedBytes: [UInt8](repeating: 0, count: 15) + [1])

    init(uncheckedBytes: [UInt8]) {
        assert(uncheckedBytes.count == 4 || uncheckedBytes.count == 16)
        self.bytes = uncheckedBytes
    }
}
