import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A write type for ``Handle/pushWrite(_:)-(HandleWriter)``: turns a value into wire bytes.
///
/// Perl: a write type registered with `anyevent_write_type` (`push_write (type => args...)`),
/// which returns the octet string to append to the write buffer.
public protocol HandleWriter {
    /// Appends the encoded bytes to `buffer`.
    /// - Throws: ``HandleError`` when the value cannot be encoded.
    func write(into buffer: inout ByteBuffer) throws(HandleError)
}

/// A user-defined write type built from a closure.
public struct ClosureWriter: HandleWriter {
    private let body: (inout ByteBuffer) throws(HandleError) -> Void

    /// Wraps `body`, which appends the encoded bytes to the buffer it is given.
    public init(_ body: @escaping (inout ByteBuffer) throws(HandleError) -> Void) {
        self.body = body
    }

    /// Calls the closure.
    public func write(into buffer: inout ByteBuffer) throws(HandleError) {
        try body(&buffer)
    }
}

extension HandleError {
    /// The error of a write type that cannot encode its value (Perl: `push_write` croaks): `EINVAL`,
    /// non-fatal, with `message` saying why. Nothing is queued then.
    static func cannotEncode(_ message: String) -> HandleError {
        HandleError(.init(errno: EINVAL), message: message)
    }
}
