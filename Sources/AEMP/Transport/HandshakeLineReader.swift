import NIOCore

/// Splits handshake input into lines, enforcing Perl's 4 KiB handshake limit (spec §3.3).
///
/// Perl: the handshake reads with `push_read line` (end of line `\r?\n`) while the handle's
/// `rbuf_max` is 4096. A line ends at LF; one CR before the LF is removed. If no complete line is
/// available and more than ``maximumBufferedBytes`` unconsumed bytes are waiting, or a line is longer
/// than that, reading fails with ``HandshakeError/Code/lineTooLong`` (Perl: ENOSPC,
/// `No space left on device`). The reader remembers how far it searched, so input arriving in small
/// pieces is never rescanned.
///
/// Contract: `nil` means "need more bytes" and leaves the buffer untouched.
public struct HandshakeLineReader: Sendable {
    /// The most unconsumed handshake bytes allowed (Perl `rbuf_max` during the handshake).
    public static let maximumBufferedBytes = 4096

    private var scanned = 0

    /// Creates a reader.
    public init() {}

    /// Removes and returns the next line (without CR LF / LF) from `buffer`.
    ///
    /// - Parameter buffer: the received bytes; a returned line and its ending are consumed.
    /// - Returns: the line, or `nil` if no complete line is there yet.
    /// - Throws: ``HandshakeError/Code/lineTooLong`` when the 4 KiB limit is exceeded.
    public mutating func nextLine(from buffer: inout ByteBuffer) throws(HandshakeError) -> [UInt8]? {
        let readable = buffer.readableBytesView
        let start = readable.index(readable.startIndex, offsetBy: min(scanned, readable.count))
        guard let newline = readable[start...].firstIndex(of: 0x0A) else {
            scanned = readable.count
            if readable.count > Self.maximumBufferedBytes { throw HandshakeError.lineTooLong }
            return nil
        }
        let length = newline - readable.startIndex
        scanned = 0
        if length > Self.maximumBufferedBytes { throw HandshakeError.lineTooLong }
        var line = Array(readable[readable.startIndex..<newline])
        if line.last == 0x0D { line.removeLast() }
        buffer.moveReaderIndex(forwardBy: length + 1)
        return line
    }
}
