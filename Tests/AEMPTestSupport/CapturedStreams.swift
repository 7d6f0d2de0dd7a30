/// The byte streams of the captured Perl session (`Tests/Fixtures/captures/aemp-session.streams.json`).
public enum CapturedStreams {
    /// One captured TCP connection: the bytes each side sent, all segments concatenated.
    public struct Connection: Sendable {
        /// The connection number of the capture (1-based).
        public var number: Int
        /// What the dialling side sent (c2s).
        public var client: [UInt8]
        /// What the listening side sent (s2c).
        public var server: [UInt8]
    }

    /// The fixture file, relative to ``Fixtures/root``.
    public static let path = "captures/aemp-session.streams.json"

    /// Every captured connection in capture order, or why the file could not be loaded.
    public static let loaded: Result<[Connection], FixtureError> = Result { () throws(FixtureError) in
        let list = try Fixtures.jsonObjects(path)
        return try list.enumerated().map { (index, entry) throws(FixtureError) in
            guard let number = entry["conn"] as? Int, let segments = entry["segments"] as? [[String: Any]] else {
                throw Fixtures.error(path, "entry \(index) has no conn number or segments")
            }
            var client: [UInt8] = []
            var server: [UInt8] = []
            for segment in segments {
                guard let hex = segment["hex"] as? String, let direction = segment["dir"] as? String,
                    direction == "c2s" || direction == "s2c"
                else {
                    throw Fixtures.error(path, "conn \(number) has a segment without dir or hex")
                }
                if direction == "c2s" { client += hexBytes(hex) } else { server += hexBytes(hex) }
            }
            return Connection(number: number, client: client, server: server)
        }
    }

    /// Every captured connection, in capture order (empty if the file cannot be loaded: ``loaded``
    /// says why).
    public static var all: [Connection] { loaded.or([]) }

    /// The captured connection with this number.
    public static func connection(_ number: Int) throws -> Connection {
        guard let connection = try loaded.get().first(where: { $0.number == number }) else {
            throw Fixtures.error(path, "has no connection \(number)")
        }
        return connection
    }

    /// The first `count` LF-terminated lines of `bytes` (without LF; CR kept) and the bytes after
    /// them; fewer lines when the stream holds fewer.
    public static func availableLines(_ bytes: [UInt8], upTo count: Int) -> (lines: [[UInt8]], rest: [UInt8]) {
        var lines: [[UInt8]] = []
        var start = 0
        while lines.count < count, let newline = bytes[start...].firstIndex(of: 0x0A) {
            lines.append(Array(bytes[start..<newline]))
            start = newline + 1
        }
        return (lines, Array(bytes[start...]))
    }

    /// Exactly `count` lines of a captured stream and the bytes after them, or a ``FixtureError``
    /// naming the capture when the stream holds fewer.
    public static func lines(_ bytes: [UInt8], count: Int) throws(FixtureError) -> (lines: [[UInt8]], rest: [UInt8]) {
        let split = availableLines(bytes, upTo: count)
        guard split.lines.count == count else {
            throw Fixtures.error(path, "has a stream with \(split.lines.count) lines where \(count) were expected")
        }
        return split
    }

    /// Decodes hexadecimal text (upper or lower case) into bytes.
    public static func hexBytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(hex.utf8.count / 2)
        var high: UInt8?
        for c in hex.utf8 {
            let nibble: UInt8 =
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
                default: c &- UInt8(ascii: "A") &+ 10
                }
            if let h = high {
                result.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return result
    }
}
