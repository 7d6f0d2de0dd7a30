import AEMPCodecs
import AEMPTestSupport
import Foundation
import NIOCore
import Testing

@testable import AEMPHandle

/// The `cbor` write type's string encoding, a deliberate difference from Perl.
///
/// Perl's `push_write (cbor => {k => "v"})` writes `a1 41 6b 41 76`: CBOR::XS encodes every string
/// without Perl's UTF-8 flag as a byte string (major type 2). A ``Value/text(_:)`` is Unicode text, and
/// RFC 8949 encodes text as major type 3, so ours writes `a1 61 6b 61 76`. CBOR::XS decodes a text string
/// into a character string that is `eq` to the byte string Perl would have sent (for any characters
/// up to U+00FF; above that Perl has no byte form), so a Perl reader sees the same data. A
/// ``Value/bytes(_:)`` is still written as a byte string, which reproduces Perl's bytes exactly.
@Suite("cbor write type: text strings (Perl writes byte strings)", .timeLimit(.minutes(2)))
struct CBORWriteTypeTests {
    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func bytes(_ string: String) -> Value { .bytes(ByteBuffer(string: string)) }

    /// Writes `value` through a handle's `cbor` write type on a socket pair; returns what the peer read.
    static func written(_ value: Value) throws -> [UInt8] {
        let fixture = try SocketPairFixture()
        defer { fixture.shutdown() }
        let expected = CBOREncoder().encode(value).readableBytes
        try fixture.handle.pushWrite(.cbor(value))
        return fixture.peerRead(count: expected).bytes
    }

    @Test("{k: \"v\"} is written with text strings: a1 61 6b 61 76 (Perl: a1 41 6b 41 76)")
    func textKeyAndValue() throws {
        #expect(Self.hex(try Self.written(["k": "v"])) == "a1616b6176")
    }

    @Test("byte strings stay major type 2; with byte strings for both, the bytes are Perl's")
    func byteStrings() throws {
        #expect(Self.hex(try Self.written(["k": Self.bytes("v")])) == "a1616b4176")
        #expect(Self.hex(try Self.written([Self.bytes("k"): "v"])) == "a1416b6176")
        #expect(Self.hex(try Self.written([Self.bytes("k"): Self.bytes("v")])) == "a1416b4176")
        #expect(Self.hex(try Self.written(Self.bytes("é"))) == "42c3a9")
        #expect(Self.hex(try Self.written("é")) == "62c3a9")
    }

    // MARK: Perl

    static var inCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// Runs `perl -e script` with `input` on its standard input; returns the exit status and output.
    static func perl(_ script: String, input: String) throws -> (status: Int32, output: String, error: String) {
        try ExternalTool.run(["perl", "-e", script], input: input)
    }

    static let perlAvailable: Bool = (try? perl("use CBOR::XS; 1", input: ""))?.status == 0

    /// For each input line `<our CBOR hex> <key hex> <value hex>` (key and value as UTF-8), Perl builds
    /// the one-pair hash it would write itself (strings downgraded to bytes where they can be, as a
    /// Perl string read from a file or socket is), encodes it as AnyEvent::Handle's `cbor` write type
    /// does (`CBOR::XS->new->encode`), decodes both encodings and prints
    /// `<Perl's hex> <ours eq Perl's data: 1/0> <ours eq the expected characters: 1/0>`.
    static let perlComparer = #"""
        use strict; use warnings; use CBOR::XS;
        my $coder = CBOR::XS->new;
        while (my $line = <STDIN>) {
            my ($ours, $khex, $vhex) = split ' ', $line;
            my ($k, $v) = map { my $s = pack "H*", $_; utf8::decode $s; utf8::downgrade $s, 1; $s } $khex, $vhex;
            my $perls = $coder->encode ({ $k => $v });
            my $ou = decode_cbor pack "H*", $ours;
            my $pe = decode_cbor $perls;
            my ($ka) = keys %$ou; my ($kb) = keys %$pe;
            my $same = (keys %$ou == 1 && keys %$pe == 1 && $ka eq $kb && $ou->{$ka} eq $pe->{$kb}) ? 1 : 0;
            my $expected = ($ka eq $k && $ou->{$ka} eq $v) ? 1 : 0;
            print unpack ("H*", $perls), " $same $expected\n";
        }
        """#

    @Test(
        "Perl's CBOR::XS reads our text strings as data eq to its own byte strings",
        arguments: [
            ("k", "v", "a1416b4176"), ("é", "ü", "a141e941fc"), ("port", "ä€水", "a144706f727468c3a4e282ace6b0b4"),
        ])
    func perlSeesEqualData(key: String, value: String, perlHex: String) throws {
        guard Self.perlAvailable else {
            #expect(!Self.inCI, "perl with CBOR::XS is required in CI (scripts/test.sh installs libcbor-xs-perl)")
            print("skipping: perl with CBOR::XS is not installed (Debian: libcbor-xs-perl)")
            return
        }
        let ours = try Self.written([.text(key): .text(value)])
        let line = [Self.hex(ours), Self.hex(Array(key.utf8)), Self.hex(Array(value.utf8))].joined(separator: " ")
        let result = try Self.perl(Self.perlComparer, input: line + "\n")
        #expect(result.status == 0, "perl failed: \(result.error)")
        #expect(result.error.isEmpty, "perl warned: \(result.error)")
        // Perl's own bytes (byte strings where Perl has them), then: ours eq Perl's, ours eq expected.
        #expect(result.output == "\(perlHex) 1 1\n")
    }
}
