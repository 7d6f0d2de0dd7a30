import NIOCore
import Testing

@testable import AEMP

/// A small deterministic generator (SplitMix64) so that failures are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Hostile and damaged input never crashes the handshake, never makes it buffer more than 4 KiB, and
/// a damaged greeting never authenticates.
@Suite("Handshake robustness")
struct HandshakeRobustnessTests {
    struct Outcome {
        var directives: [Directive] = []
        var leftover = 0
        var finished = false
        var authenticated: Bool { directives.contains { if case .authenticated = $0 { true } else { false } } }
        var failed: Bool { directives.contains { if case .fail = $0 { true } else { false } } }
    }

    /// Feeds `input` in random pieces to the `echo` side of connection 2.
    static func feed(_ input: [UInt8], using random: inout SeededGenerator) throws -> Outcome {
        var machine = try HandshakeReplayTests.machine(for: try Captures.connection(2).serverBytes)
        var buffer = ByteBuffer()
        var outcome = Outcome()
        var offset = 0
        while offset < input.count, !machine.isFinished {
            let size = Int(random.next(upperBound: UInt64(700))) + 1
            buffer.writeBytes(input[offset..<min(offset + size, input.count)])
            offset += size
            outcome.directives += machine.receive(&buffer)
            if !machine.isFinished {
                #expect(buffer.readableBytes <= HandshakeLineReader.maximumBufferedBytes)
            }
        }
        outcome.leftover = buffer.readableBytes
        outcome.finished = machine.isFinished
        #expect(outcome.directives.count <= 4)
        #expect(!(outcome.failed && outcome.authenticated))
        if machine.isFinished { #expect(machine.receive(&buffer).isEmpty) }
        return outcome
    }

    @Test func randomBytes() throws {
        var random = SeededGenerator(state: 1)
        for _ in 0..<150 {
            let count = Int(random.next(upperBound: UInt64(9000)))
            let input = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let outcome = try Self.feed(input, using: &random)
            #expect(!outcome.authenticated)
            if count > 4096 + 1024 { #expect(outcome.finished) }
        }
    }

    @Test func randomLinesOfPrintableText() throws {
        var random = SeededGenerator(state: 2)
        let alphabet = Array("aemp;1,=#-_.:\r\nxyz0123456789 tls_sha3_512 hmac_sha3_512 cbor json".utf8)
        for _ in 0..<150 {
            let count = Int(random.next(upperBound: UInt64(3000)))
            let input = (0..<count).map { _ in alphabet[Int(random.next(upperBound: UInt64(alphabet.count)))] }
            #expect(!(try Self.feed(input, using: &random)).authenticated)
        }
    }

    /// One damaged byte in the captured client stream: inside the greeting lines or the token it
    /// must fail; elsewhere (framing name, data phase) the outcome may be either.
    @Test func damagedCapture() throws {
        var random = SeededGenerator(state: 3)
        let original = try Captures.connection(2).clientBytes
        let lines = try CapturedConnection.lines(original, count: 3).lines
        let greetingEnd = lines[0].count + lines[1].count + 2
        let tokenEnd = greetingEnd + lines[2].count - ";json".utf8.count
        #expect(try Self.feed(original, using: &random).authenticated)
        for _ in 0..<300 {
            var input = original
            let index = Int(random.next(upperBound: UInt64(tokenEnd)))
            let flip = UInt8(random.next(upperBound: UInt64(255))) + 1
            input[index] ^= flip
            let outcome = try Self.feed(input, using: &random)
            #expect(!outcome.authenticated, "byte \(index) changed by \(flip) still authenticated")
        }
    }

    /// Many short lines: each is consumed, so the 4 KiB limit is about unconsumed bytes only; the
    /// handshake still ends after three lines.
    @Test func manyShortLinesEndTheHandshakeEarly() throws {
        var random = SeededGenerator(state: 4)
        let input = Array(String(repeating: "x\n", count: 5000).utf8)
        let outcome = try Self.feed(input, using: &random)
        #expect(outcome.failed)
    }
}

/// Found by scripts/fuzz-handshake.sh: node IDs were compared, and greetings split, as Swift strings,
/// which follow Unicode canonical equivalence and grapheme clusters where Perl compares and splits
/// bytes.
@Suite("Handshake fuzz regressions")
struct HandshakeFuzzRegressionTests {
    /// U+037E GREEK QUESTION MARK (canonically equivalent to `;`) is part of a field, and a `;`
    /// followed by a combining mark still separates fields: the line reformats byte for byte.
    @Test func greetingSplitsAtTheSemicolonByteOnly() throws {
        let line = "aemp;1;n\u{037E}x;hmac_sha3_512;json;a=\u{037E};\u{0301}b=1"
        let greeting = try Greeting(parsing: Array(line.utf8))
        // Compared as bytes: String equality would take U+037E for `;`.
        #expect(Array(greeting.nodeID.rawValue.utf8) == Array("n\u{037E}x".utf8))
        #expect(greeting.items.map { Array($0.key.utf8) } == [Array("a".utf8), Array("\u{0301}b".utf8)])
        #expect(greeting.items.map { $0.value.map { Array($0.utf8) } } == [Array("\u{037E}".utf8), Array("1".utf8)])
        #expect(Array(greeting.line.utf8) == Array(line.utf8))
    }

    /// `K` and `\u{212A}` (KELVIN SIGN) are different node IDs, as in Perl.
    @Test func canonicallyEquivalentNodeIDsDiffer() throws {
        let letter = try NodeID(validating: "Kelvin")
        let sign = try NodeID(validating: "\u{212A}elvin")
        #expect(letter.rawValue == sign.rawValue)  // what String equality says
        #expect(letter != sign)
        #expect(Set([letter, sign]).count == 2)
        #expect(letter < sign)
    }

    /// The peer `\u{212A}elvin` talking to the node `Kelvin` is not a self-connection, and not the
    /// already connected node `Kelvin`.
    @Test(arguments: [false, true])
    func lookalikePeerIsAnotherNode(kelvinIsConnected: Bool) throws {
        let own = try NodeID(validating: "Kelvin")
        let peer = try NodeID(validating: "\u{212A}elvin")
        var machine = HandshakeStateMachine(
            configuration: HandshakeConfiguration(nodeID: own, secret: "secret"), peerAddress: nil)
        _ = machine.start()
        let greeting = Greeting.local(
            nodeID: peer, authAccept: AuthMethod.defaultAccept, framings: Framing.supported, peerAddress: nil)
        var buffer = ByteBuffer(string: greeting.line + "\n")
        let directives = machine.receive(&buffer, isAlreadyConnected: { kelvinIsConnected && $0 == own })
        #expect(directives == [.peerGreeted(greeting)])
        #expect(!machine.isFinished)
    }
}
