// Binary sockaddr structures as AnyEvent::Socket's pack_sockaddr / unpack_sockaddr build them.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(CNIOLinux)
// SwiftNIO's C shim re-exports the sockaddr declarations on Linux; with MemberImportVisibility the
// whole-module (release) build then wants the shim imported to touch their fields.
internal import CNIOLinux
#endif

/// What a binary sockaddr holds: an IP address and port, or a Unix-domain socket path
/// (Perl: the `($service, $host)` pair of `unpack_sockaddr`).
public enum UnpackedSockaddr: Hashable, Sendable {
    /// An `AF_INET` or `AF_INET6` socket address. IPv6 flow info and scope id are not kept.
    case ip(IPAddress, port: Int)
    /// An `AF_UNIX` socket address (Perl: host `unix/`, the path as the service). On Linux a path
    /// starting with NUL is an abstract-namespace name and keeps its leading NUL.
    case unix(path: String)
}

/// Builds the platform's binary `sockaddr_in` or `sockaddr_in6` for an address and port
/// (Perl: `AnyEvent::Socket::pack_sockaddr`).
///
/// A 4-byte address gives `sockaddr_in` (16 bytes on Linux), a 16-byte one `sockaddr_in6`
/// (28 bytes on Linux, flow info and scope id 0); IPv4-mapped addresses stay IPv6. The family
/// field is in host order and the port in network order, exactly as the C structures hold them,
/// so the bytes can go straight to `bind`/`connect` (`sin_len` is set where the platform has it).
///
/// Perl truncates a port above 65535 to 0 (IPv4, with a warning) or wraps it (IPv6); this throws.
///
/// - Parameters:
///   - port: The port, `0...65535`.
///   - host: The address.
/// - Returns: The sockaddr bytes.
/// - Throws: ``SocketError`` (``SocketError/Code/invalidArgument``) if the port is out of range.
public func packSockaddr(port: Int, host: IPAddress) throws(SocketError) -> [UInt8] {
    guard (0...0xffff).contains(port) else {
        throw SocketError(.invalidArgument, "cannot pack sockaddr: port \(port) is outside 0...65535")
    }
    let networkPort = UInt16(port).bigEndian
    switch host.family {
    case .ipv4:
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = networkPort
        withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: host.bytes) }
        return withUnsafeBytes(of: &address) { Array($0) }
    case .ipv6:
        var address = sockaddr_in6()
        #if canImport(Darwin)
        address.sin6_len = UInt8(MemoryLayout<sockaddr_in6>.size)
        #endif
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = networkPort
        withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: host.bytes) }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}

/// Builds the platform's binary `sockaddr_un` for a Unix-domain socket path
/// (Perl: `AnyEvent::Socket::pack_sockaddr($path, "unix/")`).
///
/// The result is the whole structure (110 bytes on Linux) with the path NUL-padded; a path that
/// fills `sun_path` completely has no terminating NUL, as the kernel allows. On Linux a path
/// starting with NUL names an abstract socket and gives only the family plus the path bytes.
///
/// Perl truncates a too-long path with a warning, which would silently name a different file;
/// this throws instead, and also rejects a NUL after the first byte (it would cut the path).
///
/// - Parameter unixPath: The path (an empty path gives an all-zero `sun_path`, as in Perl).
/// - Returns: The sockaddr bytes.
/// - Throws: ``SocketError`` (``SocketError/Code/invalidArgument``) if the path does not fit in
///   `sun_path` (108 bytes on Linux, 104 on macOS), contains a NUL after the first byte, or
///   (outside Linux) starts with NUL.
public func packSockaddr(unixPath: String) throws(SocketError) -> [UInt8] {
    var address = sockaddr_un()
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    let path = Array(unixPath.utf8)
    guard path.count <= capacity else {
        throw SocketError(
            .invalidArgument,
            "cannot pack sockaddr: Unix socket path is \(path.count) bytes, longer than the \(capacity) that fit")
    }
    guard !path.dropFirst().contains(0) else {
        throw SocketError(.invalidArgument, "cannot pack sockaddr: Unix socket path contains a NUL byte")
    }
    #if os(Linux)
    let abstract = path.first == 0
    #else
    guard path.first != 0 else {
        throw SocketError(.invalidArgument, "cannot pack sockaddr: abstract Unix socket names are Linux-only")
    }
    let abstract = false
    #endif
    #if canImport(Darwin)
    address.sun_len = UInt8(MemoryLayout<sockaddr_un>.size)
    #endif
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
    let bytes = withUnsafeBytes(of: &address) { Array($0) }
    if abstract {
        return Array(bytes.prefix(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count))
    }
    return bytes
}

/// Reads a binary sockaddr in the platform's layout (Perl: `AnyEvent::Socket::unpack_sockaddr`).
///
/// `AF_INET` and `AF_INET6` give the address and port (`sockaddr_in6`'s flow info and scope id
/// are dropped, as in Perl); `AF_UNIX` gives the path up to its first NUL, or on Linux the whole
/// abstract name when it starts with NUL.
///
/// Difference from Perl: an all-zero `sun_path` (what packing `""` gives) reads back as `""`;
/// Perl returns the 108 NUL bytes as an abstract name.
///
/// - Parameter bytes: The sockaddr bytes, as `getsockname`/`getpeername` or
///   ``packSockaddr(port:host:)`` produce them.
/// - Returns: The address and port, or the Unix path.
/// - Throws: ``SocketError``: ``SocketError/Code/addressFamilyNotSupported`` for a family other
///   than `AF_INET`/`AF_INET6`/`AF_UNIX`; ``SocketError/Code/invalidArgument`` when the length does
///   not fit the family (IP structures must have their exact size) or a Unix path is not UTF-8.
public func unpackSockaddr(_ bytes: some Collection<UInt8>) throws(SocketError) -> UnpackedSockaddr {
    let count = bytes.count
    let familyEnd = MemoryLayout<sockaddr_storage>.offset(of: \.ss_family)! + MemoryLayout<sa_family_t>.size
    guard count >= familyEnd else {
        throw SocketError(.invalidArgument, "cannot unpack sockaddr: \(count) bytes is too short to hold a family")
    }
    guard count <= MemoryLayout<sockaddr_storage>.size else {
        throw SocketError(.invalidArgument, "cannot unpack sockaddr: \(count) bytes is longer than any sockaddr")
    }
    var storage = sockaddr_storage()
    withUnsafeMutableBytes(of: &storage) { $0.copyBytes(from: bytes) }
    let family = Int32(storage.ss_family)

    func requireLength(_ expected: Int, _ name: String) throws(SocketError) {
        guard count == expected else {
            throw SocketError(
                .invalidArgument, "cannot unpack sockaddr: \(name) must be \(expected) bytes, got \(count)")
        }
    }

    switch family {
    case AF_INET:
        try requireLength(MemoryLayout<sockaddr_in>.size, "sockaddr_in")
        let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
        let host = withUnsafeBytes(of: address.sin_addr) { IPAddress(uncheckedBytes: Array($0)) }
        return .ip(host, port: Int(UInt16(bigEndian: address.sin_port)))
    case AF_INET6:
        try requireLength(MemoryLayout<sockaddr_in6>.size, "sockaddr_in6")
        let address = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
        let host = withUnsafeBytes(of: address.sin6_addr) { IPAddress(uncheckedBytes: Array($0)) }
        return .ip(host, port: Int(UInt16(bigEndian: address.sin6_port)))
    case AF_UNIX:
        guard count <= MemoryLayout<sockaddr_un>.size else {
            throw SocketError(
                .invalidArgument,
                "cannot unpack sockaddr: sockaddr_un must be at most \(MemoryLayout<sockaddr_un>.size) bytes, got \(count)")
        }
        let pathStart = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)!
        let path: [UInt8] = withUnsafeBytes(of: &storage) { raw in
            let field = raw[pathStart..<count]
            #if os(Linux)
            if field.first == 0 {
                // An abstract name keeps every byte; an all-zero field is the empty path.
                return field.contains(where: { $0 != 0 }) ? Array(field) : []
            }
            #endif
            return Array(field.prefix(while: { $0 != 0 }))
        }
        let text = String(decoding: path, as: UTF8.self)
        guard text.utf8.elementsEqual(path) else {
            throw SocketError(.invalidArgument, "cannot unpack sockaddr: Unix socket path is not valid UTF-8")
        }
        return .unix(path: text)
    default:
        throw SocketError(.addressFamilyNotSupported, "cannot unpack sockaddr: unsupported address family \(family)")
    }
}
