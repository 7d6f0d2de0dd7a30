import AEMPCodecs
import NIOCore

/// Writes a payload as a netstring: `<decimal length>:<payload>,`.
///
/// Perl: `push_write (netstring => $string)`. The length counts bytes (Perl counts characters and
/// croaks on characters above U+00FF; a Swift payload is bytes already). Encoding cannot fail.
public struct NetstringWriter: HandleWriter, Sendable {
    /// The bytes to frame.
    public let payload: ByteBuffer

    /// Frames `payload`'s readable bytes.
    public init(_ payload: ByteBuffer) {
        self.payload = payload
    }

    /// Frames the UTF-8 bytes of `string`.
    public init(_ string: String) {
        self.payload = ByteBuffer(string: string)
    }

    /// Frames `bytes`.
    public init(bytes: some Sequence<UInt8>) {
        self.payload = ByteBuffer(bytes: bytes)
    }

    /// Appends the netstring.
    public func write(into buffer: inout ByteBuffer) throws(HandleError) {
        buffer.writeNetstring(payload)
    }
}

extension HandleWriter where Self == NetstringWriter {
    /// A netstring of `payload`. Perl: `push_write (netstring => $data)`.
    public static func netstring(_ payload: ByteBuffer) -> NetstringWriter { NetstringWriter(payload) }

    /// A netstring of the UTF-8 bytes of `string`. Perl: `push_write (netstring => $string)`.
    public static func netstring(_ string: String) -> NetstringWriter { NetstringWriter(string) }
}
