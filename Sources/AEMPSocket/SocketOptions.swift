#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
#if canImport(CNIOLinux)
// On Linux, SwiftNIO's C shim re-exports the sockaddr declarations, and MemberImportVisibility then wants
// the shim imported to touch their fields.
internal import CNIOLinux
#endif

// Raw POSIX socket helpers for tcpConnect/tcpServer. This file deliberately does not import NIOCore: with
// MemberImportVisibility the sockaddr members are only visible where the C library is the sole provider.

/// Building and reading `sockaddr_in`/`sockaddr_in6` from octets.
enum RawSockaddr {
    /// An IPv4 sockaddr for 4 address octets and a port.
    static func ipv4(_ bytes: [UInt8], port: UInt16) -> sockaddr_in {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
        return sin
    }

    /// An IPv6 sockaddr for 16 address octets and a port.
    static func ipv6(_ bytes: [UInt8], port: UInt16) -> sockaddr_in6 {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
        return sin6
    }

    /// The 4 address octets of an IPv4 sockaddr.
    static func bytes(of sin: sockaddr_in) -> [UInt8] {
        withUnsafeBytes(of: sin.sin_addr) { Array($0) }
    }

    /// The 16 address octets of an IPv6 sockaddr.
    static func bytes(of sin6: sockaddr_in6) -> [UInt8] {
        withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
    }
}

/// The socket file a Unix-domain server created: removed when the server stops if it is still the same file.
struct UnixSocketFile: Sendable {
    let path: String
    let device: UInt64
    let inode: UInt64
}

/// The few system calls `tcpServer` makes itself, so that it can run `prepare` between bind and listen.
enum RawSocket {
    /// The text of `errno` for messages.
    private static func lastError() -> SocketError.Code { SocketError.Code(errno: errno) }

    /// Creates a stream socket of `family` (`AF_INET`, `AF_INET6`, `AF_UNIX`), close-on-exec.
    static func make(family: CInt, describing place: String) throws(SocketError) -> CInt {
        #if os(Linux)
        let fd = socket(family, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        #else
        let fd = socket(family, SOCK_STREAM, 0)
        if fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        #endif
        guard fd >= 0 else {
            let code = lastError()
            throw SocketError(code, "\(place): cannot create socket: \(code.systemDescription)")
        }
        return fd
    }

    /// Sets an integer socket option.
    static func setOption(
        _ fd: CInt,
        level: CInt,
        name: CInt,
        value: CInt,
        describing place: String
    ) throws(SocketError) {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<CInt>.size)) == 0 else {
            let code = lastError()
            throw SocketError(code, "\(place): setsockopt failed: \(code.systemDescription)")
        }
    }

    /// `SO_REUSEADDR` on.
    static func setReuseAddress(_ fd: CInt, describing place: String) throws(SocketError) {
        try setOption(fd, level: SOL_SOCKET, name: SO_REUSEADDR, value: 1, describing: place)
    }

    /// `IPV6_V6ONLY` set to `on`.
    static func setIPv6Only(_ fd: CInt, _ on: Bool, describing place: String) throws(SocketError) {
        try setOption(fd, level: CInt(IPPROTO_IPV6), name: IPV6_V6ONLY, value: on ? 1 : 0, describing: place)
    }

    /// Binds to an IP address and port.
    static func bind(_ fd: CInt, address: IPAddress, port: UInt16, describing place: String) throws(SocketError) {
        let result: CInt
        switch address.family {
        case .ipv4:
            var sin = RawSockaddr.ipv4(address.bytes, port: port)
            result = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    systemBind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .ipv6:
            var sin6 = RawSockaddr.ipv6(address.bytes, port: port)
            result = withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    systemBind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        guard result == 0 else {
            let code = lastError()
            throw SocketError(code, "\(place): cannot bind: \(code.systemDescription)")
        }
    }

    /// Binds to a Unix-domain socket path.
    static func bind(_ fd: CInt, path: String, describing place: String) throws(SocketError) {
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: sun.sun_path)
        let utf8 = Array(path.utf8)
        guard !utf8.isEmpty, !utf8.contains(0) else {
            throw SocketError(.invalidArgument, "\(place): invalid Unix-domain socket path")
        }
        guard utf8.count < capacity else {
            throw SocketError(SocketError.Code(errno: ENAMETOOLONG), "\(place): socket path is too long")
        }
        withUnsafeMutableBytes(of: &sun.sun_path) { $0.copyBytes(from: utf8) }
        let result = withUnsafePointer(to: &sun) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                systemBind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let code = lastError()
            throw SocketError(code, "\(place): cannot bind: \(code.systemDescription)")
        }
    }

    /// The address the socket is bound to (`getsockname`), for IP sockets.
    static func localIPEndpoint(_ fd: CInt) -> (IPAddress, Int)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        switch CInt(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
            }
            return (IPAddress(uncheckedBytes: RawSockaddr.bytes(of: sin)), Int(UInt16(bigEndian: sin.sin_port)))
        case AF_INET6:
            let sin6 = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee }
            }
            return (IPAddress(uncheckedBytes: RawSockaddr.bytes(of: sin6)), Int(UInt16(bigEndian: sin6.sin6_port)))
        default:
            return nil
        }
    }

    /// `listen(2)`; on an already listening socket this changes the backlog.
    static func listen(_ fd: CInt, backlog: CInt, describing place: String) throws(SocketError) {
        guard systemListen(fd, backlog) == 0 else {
            let code = lastError()
            throw SocketError(code, "\(place): cannot listen: \(code.systemDescription)")
        }
    }

    /// Closes a descriptor this module still owns.
    static func close(_ fd: CInt) {
        _ = systemClose(fd)
    }

    /// Removes a leftover Unix-domain socket at `path` so it can be bound again (Perl does the same); anything
    /// that is not a socket is left alone and reported as `EADDRINUSE`.
    static func removeStaleUnixSocket(at path: String, describing place: String) throws(SocketError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            throw SocketError(.addressInUse, "\(place): the path exists and is not a socket")
        }
        _ = unlink(path)
    }

    /// Identifies the file at `path` (device and inode), if there is one.
    static func fileIdentity(at path: String) -> UnixSocketFile? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return UnixSocketFile(path: path, device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Removes the Unix-domain socket file of a server that stops, unless another socket replaced it since.
    static func removeUnixSocket(_ file: UnixSocketFile) {
        var info = stat()
        guard lstat(file.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK,
            UInt64(info.st_dev) == file.device, UInt64(info.st_ino) == file.inode
        else { return }
        _ = unlink(file.path)
    }

}

private func systemBind(_ fd: CInt, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> CInt {
    bind(fd, address, length)
}

private func systemListen(_ fd: CInt, _ backlog: CInt) -> CInt {
    listen(fd, backlog)
}

private func systemClose(_ fd: CInt) -> CInt {
    close(fd)
}
