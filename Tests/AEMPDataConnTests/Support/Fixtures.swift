import AEMPTestSupport
import Foundation

/// The captured Perl ↔ Perl session (`shared/spec/captures/`), as bytes per direction.
struct CapturedConnection: Sendable {
    var number: Int
    /// Bytes the dialling side sent (c2s).
    var clientBytes: [UInt8]
    /// Bytes the listening side sent (s2c).
    var serverBytes: [UInt8]

    /// The first `count` LF-terminated lines of `bytes` (without LF), and the rest.
    static func lines(_ bytes: [UInt8], count: Int) -> (lines: [String], rest: [UInt8]) {
        var lines: [String] = []
        var start = 0
        while lines.count < count, let newline = bytes[start...].firstIndex(of: 0x0A) {
            lines.append(String(decoding: bytes[start..<newline], as: UTF8.self))
            start = newline + 1
        }
        return (lines, Array(bytes[start...]))
    }

    static let secret = "aemp-ref-secret"

    static func load(_ number: Int) throws -> CapturedConnection {
        guard let connection = CapturedStreams.all.first(where: { $0.number == number }) else {
            throw FixtureFailure("conn \(number) not in the capture")
        }
        return CapturedConnection(number: number, clientBytes: connection.client, serverBytes: connection.server)
    }
}

struct FixtureFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

