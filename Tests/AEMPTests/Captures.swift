import AEMPTestSupport
import Foundation
import NIOCore

@testable import AEMP

/// The captured Perl ↔ Perl session (`shared/spec/captures/`), split into lines per direction.
struct CapturedConnection: Sendable, CustomStringConvertible {
    var number: Int
    /// Bytes the dialling side sent (c2s), all segments concatenated.
    var clientBytes: [UInt8]
    /// Bytes the listening side sent (s2c).
    var serverBytes: [UInt8]

    var description: String { "conn \(number)" }

    /// The first `count` LF-terminated lines of `bytes` (without LF; CR kept), and the rest.
    static func lines(_ bytes: [UInt8], count: Int) -> (lines: [[UInt8]], rest: [UInt8]) {
        var lines: [[UInt8]] = []
        var start = 0
        while lines.count < count, let newline = bytes[start...].firstIndex(of: 0x0A) {
            lines.append(Array(bytes[start..<newline]))
            start = newline + 1
        }
        return (lines, Array(bytes[start...]))
    }

    func clientLines(_ count: Int = 3) -> [String] {
        Self.lines(clientBytes, count: count).lines.map { String(decoding: $0, as: UTF8.self) }
    }

    func serverLines(_ count: Int = 3) -> [String] {
        Self.lines(serverBytes, count: count).lines.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether both sides sent an auth line (every connection except the refused self-connection).
    var completed: Bool {
        clientLines().count == 3 && serverLines().count == 3 && clientLines()[2].split(separator: ";").count >= 3
    }
}

enum Captures {
    static let secret = "aemp-ref-secret"

    static let connections: [CapturedConnection] = {
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
            return CapturedConnection(number: entry["conn"] as? Int ?? 0, clientBytes: client, serverBytes: server)
        }
    }()

    static func connection(_ number: Int) -> CapturedConnection {
        connections.first(where: { $0.number == number })!
    }

    /// Every captured greeting line 1, both directions.
    static var greetingLines: [String] {
        connections.flatMap { [$0.clientLines(1).first, $0.serverLines(1).first].compactMap { $0 } }
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var high: UInt8?
        for c in hex.utf8 {
            let nibble: UInt8 =
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
                default: c - UInt8(ascii: "A") + 10
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

    /// The synthetic vectors of `hmac-sha3-512-vectors.json`.
    struct SyntheticVector: Sendable, CustomStringConvertible {
        var secret: String
        var secretLength: Int
        var a1, a2, b1, b2: String
        var aToken, bToken, cleartext: String
        var description: String { "secret_len=\(secretLength)" }
    }

    static let syntheticVectors: [SyntheticVector] = {
        guard let list = try? SharedFiles.json("spec/captures/hmac-sha3-512-vectors.json") as? [[String: Any]] else {
            return []
        }
        return list.map { v in
            SyntheticVector(
                secret: v["secret"] as? String ?? "", secretLength: v["secret_len"] as? Int ?? 0,
                a1: v["a_greeting1"] as? String ?? "", a2: v["a_greeting2"] as? String ?? "",
                b1: v["b_greeting1"] as? String ?? "", b2: v["b_greeting2"] as? String ?? "",
                aToken: v["a_token"] as? String ?? "", bToken: v["b_token"] as? String ?? "",
                cleartext: v["cleartext"] as? String ?? "")
        }
    }()
}
