#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Formats an address as text (Perl: `format_address`). Interim version via inet_ntop.
public func formatIP(_ address: IPAddress) -> String {
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let family = address.family == .ipv4 ? AF_INET : AF_INET6
    address.bytes.withUnsafeBytes { raw in
        _ = inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count))
    }
    let length = buffer.firstIndex(of: 0) ?? buffer.count
    return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension IPAddress: CustomStringConvertible {
    /// The address as ``formatIP(_:)`` writes it.
    public var description: String { formatIP(self) }
}
