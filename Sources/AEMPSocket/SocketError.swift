#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The error type of every `AEMPSocket` operation.
///
/// Perl's AnyEvent::Socket reports failures through `$!`; this error carries the same errno-style
/// ``code`` (for example `ENXIO` when a name did not resolve, `ECONNREFUSED`, `ETIMEDOUT`,
/// `EADDRINUSE`) plus a human-readable ``message``. Equality compares the code only, so tests and
/// callers can write `error == SocketError(code: .connectionRefused)`-style checks via ``Code``.
public struct SocketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An errno-style error code. New codes are additive.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The POSIX `errno` value this code stands for.
        public let errno: Int32

        /// Wraps a raw `errno` value.
        public init(errno: Int32) { self.errno = errno }

        /// `ENXIO`: the host or service did not resolve to any address (Perl's DNS failure code).
        public static var noSuchAddress: Self { Self(errno: ENXIO) }
        /// `ECONNREFUSED`: the peer refused the connection.
        public static var connectionRefused: Self { Self(errno: ECONNREFUSED) }
        /// `ETIMEDOUT`: a connection attempt or a lookup timed out.
        public static var timedOut: Self { Self(errno: ETIMEDOUT) }
        /// `EADDRINUSE`: the local address is already in use.
        public static var addressInUse: Self { Self(errno: EADDRINUSE) }
        /// `EADDRNOTAVAIL`: the local address cannot be bound on this machine.
        public static var addressNotAvailable: Self { Self(errno: EADDRNOTAVAIL) }
        /// `EINVAL`: an argument (host, port, service, address) was malformed.
        public static var invalidArgument: Self { Self(errno: EINVAL) }
        /// `ECANCELED`: the operation was cancelled through its guard or task.
        public static var cancelled: Self { Self(errno: ECANCELED) }
        /// `EAFNOSUPPORT`: the address family is not supported on this machine.
        public static var addressFamilyNotSupported: Self { Self(errno: EAFNOSUPPORT) }
        /// `EHOSTUNREACH`: no route to the host.
        public static var hostUnreachable: Self { Self(errno: EHOSTUNREACH) }
        /// `ENETUNREACH`: the network is unreachable.
        public static var networkUnreachable: Self { Self(errno: ENETUNREACH) }
        /// `EPROTO`: a protocol error, such as a malformed DNS reply.
        public static var protocolError: Self { Self(errno: EPROTO) }

        /// The symbolic errno name (`"ECONNREFUSED"`) where known, else `errno N`.
        public var name: String {
            switch errno {
            case ENXIO: "ENXIO"
            case ECONNREFUSED: "ECONNREFUSED"
            case ETIMEDOUT: "ETIMEDOUT"
            case EADDRINUSE: "EADDRINUSE"
            case EADDRNOTAVAIL: "EADDRNOTAVAIL"
            case EINVAL: "EINVAL"
            case ECANCELED: "ECANCELED"
            case EAFNOSUPPORT: "EAFNOSUPPORT"
            case EHOSTUNREACH: "EHOSTUNREACH"
            case ENETUNREACH: "ENETUNREACH"
            case EPROTO: "EPROTO"
            case EACCES: "EACCES"
            case ENOENT: "ENOENT"
            case ECONNRESET: "ECONNRESET"
            default: "errno \(errno)"
            }
        }

        /// The C library's text for this code (`strerror`), e.g. "Connection refused".
        public var systemDescription: String { String(cString: strerror(errno)) }

        public var description: String { name }
    }

    /// What went wrong, as an errno-style code.
    public var code: Code
    /// A sentence saying what was attempted and why it failed.
    public var message: String
    /// The lower-level error, if one caused this one.
    public var underlying: (any Error)?

    /// Creates an error.
    /// - Parameters:
    ///   - code: The errno-style code.
    ///   - message: What was attempted and why it failed; defaults to the system text of `code`.
    ///   - underlying: The lower-level error, if any.
    public init(_ code: Code, _ message: String? = nil, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message ?? code.systemDescription
        self.underlying = underlying
    }

    public var description: String { "\(message) (\(code.name))" }

    /// Two errors are equal when their codes are equal; messages are for people.
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
}
