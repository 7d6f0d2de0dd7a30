import AEMPTestSupport
import Foundation

/// The captured Perl ↔ Perl session (`Tests/Fixtures/captures/`), as bytes per direction.
struct CapturedConnection: Sendable {
    var number: Int
    /// Bytes the dialling side sent (c2s).
    var clientBytes: [UInt8]
    /// Bytes the listening side sent (s2c).
    var serverBytes: [UInt8]

    /// Exactly `count` LF-terminated lines of `bytes` (without LF) and the rest, or a fixture error
    /// when the captured stream holds fewer.
    static func lines(_ bytes: [UInt8], count: Int) throws -> (lines: [String], rest: [UInt8]) {
        let split = try CapturedStreams.lines(bytes, count: count)
        return (split.lines.map { String(decoding: $0, as: UTF8.self) }, split.rest)
    }

    static let secret = "aemp-ref-secret"

    static func load(_ number: Int) throws -> CapturedConnection {
        let connection = try CapturedStreams.connection(number)
        return CapturedConnection(number: number, clientBytes: connection.client, serverBytes: connection.server)
    }
}
