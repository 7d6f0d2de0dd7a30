#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An error reported by a ``Handle`` to its `onError` callback.
///
/// Perl: the `($handle, $fatal, $message)` arguments of `on_error`, with `$!` as ``code``.
/// The code is errno-like: `EPIPE` (end of file with reads outstanding, writing to a closed peer),
/// `ETIMEDOUT`, `EBADMSG` (malformed typed input, regex reject), `ENOSPC` (`rbuf_max`/`wbuf_max`),
/// `EPROTO` (TLS), or the operating system's errno for I/O errors. Code `0` with the message
/// "Unexpected end-of-file" is an end of file without `onEof`.
public struct HandleError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An errno-style error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The errno value (`0` for the unexpected end-of-file error).
        public let errno: Int32

        /// Wraps an errno value.
        public init(errno: Int32) { self.errno = errno }

        /// No errno (Perl's `$!` = 0): used for "Unexpected end-of-file".
        public static var none: Self { Self(errno: 0) }
        /// `EPIPE`: end of file while reads are outstanding, or writing to a closed connection.
        public static var brokenPipe: Self { Self(errno: EPIPE) }
        /// `ETIMEDOUT`: a `timeout`, `rtimeout` or `wtimeout` expired without its callback.
        public static var timedOut: Self { Self(errno: ETIMEDOUT) }
        /// `EBADMSG`: malformed input for a typed reader (regex reject, bad netstring, ...).
        public static var badMessage: Self { Self(errno: EBADMSG) }
        /// `ENOSPC`: `rbuf_max` or `wbuf_max` exceeded.
        public static var noSpace: Self { Self(errno: ENOSPC) }
        /// `EPROTO`: a TLS protocol failure.
        public static var protocolError: Self { Self(errno: EPROTO) }
        /// `ECONNRESET`: the peer reset the connection.
        public static var connectionReset: Self { Self(errno: ECONNRESET) }

        /// The symbolic errno name (`"EPIPE"`), or `nil` for `0`, or `"E<number>"` when unknown.
        public var name: String? {
            switch errno {
            case 0: return nil
            case EPIPE: return "EPIPE"
            case ETIMEDOUT: return "ETIMEDOUT"
            case EBADMSG: return "EBADMSG"
            case ENOSPC: return "ENOSPC"
            case EPROTO: return "EPROTO"
            case ECONNRESET: return "ECONNRESET"
            case ECONNREFUSED: return "ECONNREFUSED"
            case ENOTCONN: return "ENOTCONN"
            case EBADF: return "EBADF"
            case EINVAL: return "EINVAL"
            case EIO: return "EIO"
            case ENXIO: return "ENXIO"
            default: return "E\(errno)"
            }
        }

        /// The C library's text for the code (`strerror`), e.g. "Broken pipe".
        public var systemMessage: String {
            errno == 0 ? "" : String(cString: strerror(errno))
        }

        /// The symbolic name, or `"0"`.
        public var description: String { name ?? "0" }
    }

    /// The errno-style code (Perl: `$!` inside `on_error`).
    public var code: Code
    /// The human-readable message (Perl: `$message`); defaults to the system text for ``code``.
    public var message: String
    /// Whether the handle is destroyed after `onError` returns (Perl: `$fatal`).
    public var isFatal: Bool
    /// For errors thrown by readers: whether the reader stays at the head of the queue (the default,
    /// so the same bad data errors again on the next arrival) or is removed (Perl's netstring with a
    /// bad terminator drops the string and lets later reads go on).
    public var keepsReader: Bool
    /// Whether this is the clean end of the stream: end of file with a read outstanding and nothing
    /// left in the read buffer (the async read sequence ends instead of throwing).
    public var isEndOfFile: Bool = false

    /// Creates an error.
    /// - Parameters:
    ///   - code: the errno-style code.
    ///   - message: the message; `nil` uses the system text for `code`.
    ///   - fatal: whether the handle is destroyed after `onError`.
    ///   - keepsReader: for reader errors, whether the reader stays queued.
    public init(_ code: Code, message: String? = nil, fatal: Bool = false, keepsReader: Bool = true) {
        self.code = code
        self.message = message ?? code.systemMessage
        self.isFatal = fatal
        self.keepsReader = keepsReader
    }

    /// A non-fatal `EBADMSG` for malformed input (Perl: `_error(Errno::EBADMSG)`).
    public static func badMessage(_ message: String? = nil, keepsReader: Bool = true) -> Self {
        Self(.badMessage, message: message, keepsReader: keepsReader)
    }

    /// `"ECODE: message"` (or the message alone for code 0).
    public var description: String {
        code.errno == 0 ? message : "\(code): \(message)\(isFatal ? " (fatal)" : "")"
    }

    /// Errors compare by code and fatality.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.code == rhs.code && lhs.isFatal == rhs.isFatal
    }
}
