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

    static let connections: [CapturedConnection] = CapturedStreams.all.map {
        CapturedConnection(number: $0.number, clientBytes: $0.client, serverBytes: $0.server)
    }

    static func connection(_ number: Int) -> CapturedConnection {
        connections.first(where: { $0.number == number })!
    }

    /// Every captured greeting line 1, both directions.
    static var greetingLines: [String] {
        connections.flatMap { [$0.clientLines(1).first, $0.serverLines(1).first].compactMap { $0 } }
    }

    static func hexBytes(_ hex: String) -> [UInt8] {
        CapturedStreams.hexBytes(hex)
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
