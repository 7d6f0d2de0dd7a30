import NIOCore

/// What ``TLSDetectReader`` found at the start of the stream.
public struct TLSDetection: Sendable, Hashable {
    /// Whether the bytes start a TLS (or SSLv2-framed) handshake (Perl: `$detect eq "accept"`).
    public var isTLS: Bool
    /// The protocol major version (Perl: `$major`), when TLS.
    public var major: Int?
    /// The protocol minor version (Perl: `$minor`), when TLS.
    public var minor: Int?

    /// Creates a detection result.
    public init(isTLS: Bool, major: Int? = nil, minor: Int? = nil) {
        self.isTLS = isTLS
        self.major = major
        self.minor = minor
    }
}

/// Tells whether the peer starts with a TLS handshake, without consuming anything.
///
/// Perl: `push_read (tls_detect => $cb)`. An SSL 3/TLS record (handshake type 22, major 3 or 4,
/// length high byte at most 0x40) is recognised after 4 bytes, SSLv2 framing (length with the top
/// bit set, type 1, major 3 or 4) after 6; a mismatch decides as soon as it is seen.
public struct TLSDetectReader: HandleReader, Sendable {
    /// Detects TLS. Perl: `tls_detect`.
    public init() {}

    enum Verdict {
        case needMore
        case tls(major: UInt8, minor: UInt8)
        case notTLS
    }

    static func classify(_ bytes: [UInt8]) -> Verdict {
        let count = bytes.count
        guard count > 0 else { return .needMore }
        if bytes[0] == 0x16 {
            guard count > 1 else { return .needMore }
            guard bytes[1] == 3 || bytes[1] == 4 else { return .notTLS }
            guard count > 3 else { return .needMore }
            return bytes[3] <= 0x40 ? .tls(major: bytes[1], minor: bytes[2]) : .notTLS
        }
        if bytes[0] >= 0x80 {
            guard count > 2 else { return .needMore }
            guard bytes[2] == 1 else { return .notTLS }
            guard count > 3 else { return .needMore }
            guard bytes[3] == 3 || bytes[3] == 4 else { return .notTLS }
            guard count > 5 else { return .needMore }
            return .tls(major: bytes[3], minor: bytes[4])
        }
        return .notTLS
    }

    /// Returns the verdict once it is certain; never consumes bytes.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> TLSDetection? {
        let head = buffer.getBytes(at: buffer.readerIndex, length: min(6, buffer.readableBytes)) ?? []
        switch Self.classify(head) {
        case .needMore:
            return nil
        case .tls(let major, let minor):
            return TLSDetection(isTLS: true, major: Int(major), minor: Int(minor))
        case .notTLS:
            return TLSDetection(isTLS: false)
        }
    }
}

extension HandleReader where Self == TLSDetectReader {
    /// Detects a TLS handshake without consuming. Perl: `tls_detect`.
    public static func tlsDetect() -> TLSDetectReader { TLSDetectReader() }
}
