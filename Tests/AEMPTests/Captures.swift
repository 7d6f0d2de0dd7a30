import AEMPTestSupport
import Foundation
import NIOCore

@testable import AEMP

/// The captured Perl ↔ Perl session (`Tests/Fixtures/captures/`), split into lines per direction.
struct CapturedConnection: Sendable, CustomStringConvertible {
    var number: Int
    /// Bytes the dialling side sent (c2s), all segments concatenated.
    var clientBytes: [UInt8]
    /// Bytes the listening side sent (s2c).
    var serverBytes: [UInt8]

    var description: String { "conn \(number)" }

    /// Exactly `count` LF-terminated lines of `bytes` (without LF; CR kept) and the rest, or a
    /// ``FixtureError`` when the captured stream holds fewer.
    static func lines(_ bytes: [UInt8], count: Int) throws -> (lines: [[UInt8]], rest: [UInt8]) {
        try CapturedStreams.lines(bytes, count: count)
    }

    /// Up to `count` lines the client sent (fewer when it sent fewer).
    func clientLines(_ count: Int = 3) -> [String] {
        CapturedStreams.availableLines(clientBytes, upTo: count).lines.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Up to `count` lines the server sent (fewer when it sent fewer).
    func serverLines(_ count: Int = 3) -> [String] {
        CapturedStreams.availableLines(serverBytes, upTo: count).lines.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether both sides sent an auth line (every connection except the refused self-connection).
    var completed: Bool {
        let client = clientLines()
        let server = serverLines()
        return client.count == 3 && server.count == 3
            && client[2].split(separator: ";").count >= 3 && server[2].split(separator: ";").count >= 3
    }
}

enum Captures {
    static let secret = "aemp-ref-secret"

    /// The captured connections, or why the capture could not be loaded.
    static var loadedConnections: Result<[CapturedStreams.Connection], FixtureError> { CapturedStreams.loaded }

    static let connections: [CapturedConnection] = CapturedStreams.all.map {
        CapturedConnection(number: $0.number, clientBytes: $0.client, serverBytes: $0.server)
    }

    /// The captured connection with this number; throws a ``FixtureError`` naming the file when the
    /// capture cannot be loaded or lacks it.
    static func connection(_ number: Int) throws -> CapturedConnection {
        let connection = try CapturedStreams.connection(number)
        return CapturedConnection(number: connection.number, clientBytes: connection.client, serverBytes: connection.server)
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

    static let syntheticVectorsPath = "captures/hmac-sha3-512-vectors.json"

    /// The synthetic vectors, or why the file could not be loaded.
    static let loadedSyntheticVectors: Result<[SyntheticVector], FixtureError> = Result { () throws(FixtureError) in
        try Fixtures.jsonObjects(syntheticVectorsPath).enumerated().map { (index, v) throws(FixtureError) in
            guard let secret = v["secret"] as? String, let secretLength = v["secret_len"] as? Int,
                let a1 = v["a_greeting1"] as? String, let a2 = v["a_greeting2"] as? String,
                let b1 = v["b_greeting1"] as? String, let b2 = v["b_greeting2"] as? String,
                let aToken = v["a_token"] as? String, let bToken = v["b_token"] as? String,
                let cleartext = v["cleartext"] as? String
            else {
                throw Fixtures.error(syntheticVectorsPath, "entry \(index) lacks a field")
            }
            return SyntheticVector(
                secret: secret, secretLength: secretLength, a1: a1, a2: a2, b1: b1, b2: b2,
                aToken: aToken, bToken: bToken, cleartext: cleartext)
        }
    }

    static var syntheticVectors: [SyntheticVector] { loadedSyntheticVectors.or([]) }
}
