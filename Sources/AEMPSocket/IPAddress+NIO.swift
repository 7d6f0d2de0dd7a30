import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// Conversions between this module's address types and SwiftNIO's `SocketAddress`.

extension SocketAddress {
    /// Creates the NIO socket address for an IP address and a TCP port (the NIO form of Perl's `pack_sockaddr`).
    ///
    /// The sockaddr is built straight from the address octets; no text is parsed.
    /// - Parameters:
    ///   - address: An IPv4 or IPv6 address.
    ///   - port: The port, `0...65535`.
    /// - Throws: `EINVAL` (``SocketError/Code/invalidArgument``) when the port is out of range.
    public init(_ address: IPAddress, port: Int) throws(SocketError) {
        guard let port16 = UInt16(exactly: port) else {
            throw SocketError(.invalidArgument, "port \(port) is out of range 0...65535")
        }
        switch address.family {
        case .ipv4: self.init(RawSockaddr.ipv4(address.bytes, port: port16))
        case .ipv6: self.init(RawSockaddr.ipv6(address.bytes, port: port16))
        }
    }

    /// Creates the NIO socket address a ``ConnectTarget`` names.
    ///
    /// - Parameter target: An IP endpoint or a Unix-domain socket path.
    /// - Throws: `EINVAL` for a port out of range or an empty path, `ENAMETOOLONG` for a Unix path that does not
    ///   fit in `sockaddr_un`.
    public init(_ target: ConnectTarget) throws(SocketError) {
        switch target {
        case .ip(let address, let port):
            try self.init(address, port: port)
        case .unix(let path):
            guard !path.isEmpty else {
                throw SocketError(.invalidArgument, "empty Unix-domain socket path")
            }
            do {
                try self.init(unixDomainSocketPath: path)
            } catch {
                throw SocketError(
                    SocketError.Code(errno: ENAMETOOLONG),
                    "Unix-domain socket path '\(path)' is too long",
                    underlying: error
                )
            }
        }
    }
}

extension IPAddress {
    /// The IP address of an IPv4 or IPv6 NIO socket address; `nil` for other kinds (such as Unix-domain).
    ///
    /// The address is returned exactly as the socket reports it; IPv4-mapped IPv6 addresses stay IPv6 here
    /// (``ConnectTarget/init(_:)`` unmaps them).
    /// - Parameter socketAddress: The NIO address.
    public init?(_ socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4(let v4):
            self.init(uncheckedBytes: RawSockaddr.bytes(of: v4.address))
        case .v6(let v6):
            self.init(uncheckedBytes: RawSockaddr.bytes(of: v6.address))
        case .unixDomainSocket:
            return nil
        }
    }

    /// The embedded IPv4 address when this is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), else `self`.
    var unmappedForPeerReport: IPAddress {
        guard bytes.count == 16,
            bytes[10] == 0xff, bytes[11] == 0xff,
            bytes[0..<10].allSatisfy({ $0 == 0 })
        else { return self }
        return IPAddress(uncheckedBytes: Array(bytes[12..<16]))
    }
}

extension ConnectTarget {
    /// Describes a NIO socket address as a target: `.ip` for IPv4/IPv6, `.unix` for Unix-domain sockets (the NIO
    /// form of Perl's `unpack_sockaddr`).
    ///
    /// Like Perl's peer reporting, an IPv4-mapped IPv6 address (a v4 client of a dual-stack listener) is given as
    /// the plain IPv4 address. An unnamed Unix-domain peer (the usual case for accepted connections) has the path
    /// `""`. Returns `nil` for address kinds this module does not model.
    /// - Parameter socketAddress: The NIO address, e.g. `channel.remoteAddress`.
    public init?(_ socketAddress: SocketAddress) {
        switch socketAddress {
        case .v4, .v6:
            guard let address = IPAddress(socketAddress), let port = socketAddress.port else { return nil }
            self = .ip(address.unmappedForPeerReport, port: port)
        case .unixDomainSocket:
            self = .unix(path: socketAddress.pathname ?? "")
        }
    }

    /// Perl's textual host for this target: the formatted address, or `unix/` for a Unix-domain socket.
    var perlHost: String {
        switch self {
        case .ip(let address, _): formatIP(address)
        case .unix: "unix/"
        }
    }

    /// Perl's "port" for this target: the decimal port, or the socket path for a Unix-domain socket.
    var perlService: String {
        switch self {
        case .ip(_, let port): String(port)
        case .unix(let path): path
        }
    }

    /// The TCP port, or `0` for a Unix-domain socket.
    var portOrZero: Int {
        switch self {
        case .ip(_, let port): port
        case .unix: 0
        }
    }
}
