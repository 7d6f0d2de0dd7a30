/// The byte streams of the captured Perl session (`spec/captures/aemp-session.streams.json`).
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

    /// Every captured connection, in capture order (empty if the file cannot be read).
    public static let all: [Connection] = {
        guard let list = try? SharedFiles.json("spec/captures/aemp-session.streams.json") as? [[String: Any]] else {
            return []
        }
        return list.map { entry in
            var client: [UInt8] = []
            var server: [UInt8] = []
            for segment in entry["segments"] as? [[String: Any]] ?? [] {
                let bytes = hexBytes(segment["hex"] as? String ?? "")
                if segment["dir"] as? String == "c2s" { client += bytes } else { server += bytes }
            }
            return Connection(number: entry["conn"] as? Int ?? 0, client: client, server: server)
        }
    }()

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
