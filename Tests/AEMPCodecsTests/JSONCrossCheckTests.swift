import AEMPTestSupport
import Foundation
import NIOCore
import Testing

@testable import AEMPCodecs

/// Runs external reference implementations (Perl's JSON::XS, Python's json) over our output and
/// theirs. Each test starts exactly one process and exchanges one batch.
enum JSONCrossCheck {
    static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"

    static func run(_ executable: String, _ arguments: [String], input: Data) throws -> (status: Int32, output: Data, error: Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Write on a separate thread so that a large batch cannot deadlock on full pipes.
        let writer = Thread {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let error = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, output, error)
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin", "/bin"]
        for dir in dirs where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return nil
    }

    static let perlWithJSONXS: Bool = {
        guard let perl = which("perl"), let result = try? run(perl, ["-MJSON::XS", "-e1"], input: Data()) else { return false }
        return result.status == 0
    }()

    static let python: String? = which("python3")

    enum Flavor { case perl, python }

    static func hexUTF8(_ s: String) -> String { JSONTestKit.hex(Array(s.utf8)) }

    static func stringOf(_ key: Value) -> String? {
        switch key {
        case .text(let s): return s
        case .bytes(let b): return JSONTestKit.latin1(Array(b.readableBytesView))
        default: return nil
        }
    }

    /// Whether a typed record (see the scripts below) describes what we meant by `value`.
    static func matches(_ typed: Any, _ value: Value, _ flavor: Flavor, note: inout String) -> Bool {
        let dict = typed as? [String: Any]
        func fail(_ why: String) -> Bool { note = "\(why): expected \(value), got \(typed)"; return false }
        switch value {
        case .null, .undefined:
            return typed is NSNull || fail("null")
        case .bool(let b):
            return (dict?["b"] as? Bool) == b || fail("bool")
        case .int(let i):
            if flavor == .perl && i == .min { return dict?["s"] as? String == hexUTF8(String(i)) || fail("IV_MIN as string") }
            return dict?["i"] as? String == String(i) || fail("int")
        case .uint(let u):
            return dict?["i"] as? String == String(u) || fail("uint")
        case .bignum:
            let digits = String(decoding: (try? JSONTestKit.encode(value)) ?? [], as: UTF8.self)
            if flavor == .perl { return dict?["s"] as? String == hexUTF8(digits) || fail("bignum as string") }
            return dict?["i"] as? String == digits || fail("bignum")
        case .float(let d):
            guard let hex = dict?["f"] as? String, let bits = UInt64(hex, radix: 16) else { return fail("float") }
            let theirs = Double(bitPattern: bits)
            if theirs.bitPattern == d.bitPattern { return true }
            // JSON::XS's decimal parser is off by up to 2 units in the last place in the normal
            // range (measured over 50,000 random doubles) and worse near the subnormals.
            if flavor == .perl {
                if d.magnitude < 1e-290 || d.magnitude > 1e300 { return true }
                let distance = (Int64(bitPattern: theirs.bitPattern) - Int64(bitPattern: d.bitPattern)).magnitude
                return (theirs.sign == d.sign && distance <= 2) || fail("float off by \(distance) ulp")
            }
            return fail("float bits")
        case .text(let s):
            return dict?["s"] as? String == hexUTF8(s) || fail("text")
        case .bytes(let b):
            return dict?["s"] as? String == hexUTF8(JSONTestKit.latin1(Array(b.readableBytesView))) || fail("bytes")
        case .array(let elements):
            guard let array = typed as? [Any], array.count == elements.count else { return fail("array") }
            for (t, v) in zip(array, elements) where !matches(t, v, flavor, note: &note) { return false }
            return true
        case .map(let pairs):
            guard let list = dict?["m"] as? [[Any]], list.count == pairs.count else { return fail("map") }
            var byKey: [String: Any] = [:]
            for entry in list { byKey[entry[0] as! String] = entry[1] }
            for pair in pairs {
                guard let key = stringOf(pair.key), let t = byKey[hexUTF8(key)] else { return fail("map key") }
                if !matches(t, pair.value, flavor, note: &note) { return false }
            }
            return true
        case .tagged, .simple:
            return fail("unsupported")
        }
    }

    /// Values that exercise the corners, plus seeded random ones.
    static func batch(seed: UInt64, count: Int) -> [Value] {
        var values: [Value] = [
            .int(0), .int(-1), .int(.max), .int(.min), .uint(.max), .uint(1 << 63),
            .bignum(negative: false, magnitude: [1, 0, 0, 0, 0, 0, 0, 0, 0]),
            .bignum(negative: true, magnitude: [0x80, 0, 0, 0, 0, 0, 0, 0]),
            .float(1.0), .float(-0.0), .float(0.1), .float(1e16), .float(1e-7), .float(0.30000000000000004),
            .float(1.7976931348623157e308), .float(2.5), .float(-1234.5678),
            .text(""), .text("a/b\"c\\d"), .text("\u{0}\u{1}\u{1F}\u{7F}\n\t"), .text("é€😀\u{2028}\u{FFFF}\u{10FFFF}"),
            .bytes(ByteBuffer(bytes: [0x63, 0x61, 0x66, 0xE9])), .bytes(ByteBuffer(bytes: [0xFF, 0xFE, 0x00, 0x01])),
            .bytes(ByteBuffer(bytes: [0xE2, 0x82, 0xAC])), .undefined, .null, .bool(true), .bool(false),
            .array([.text("port"), .text("tag"), .int(1), .float(2.5), .map([(key: .text("a"), value: .text("b"))])]),
            .map([(key: .bytes(ByteBuffer(bytes: [0x68, 0xE9])), value: .int(1)), (key: .text("€"), value: .array([]))]),
        ]
        var rng = SeededRandom(seed: seed)
        for _ in 0..<count { values.append(JSONTestKit.randomValue(&rng)) }
        return values
    }

    static func encodeLines(_ values: [Value]) throws -> Data {
        var buffer = ByteBuffer()
        for v in values {
            try buffer.writeJSON(v)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        return Data(buffer.readableBytesView)
    }

    static func lines(_ data: Data) -> [Substring] {
        String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
    }

    static let perlScript = #"""
        use strict; use warnings; use JSON::XS; use B;
        my $in = JSON::XS->new->utf8->allow_nonref;
        my $out = JSON::XS->new->utf8->canonical;
        sub ty {
            my ($v) = @_;
            return undef unless defined $v;
            return { b => ($v ? JSON::XS::true : JSON::XS::false) } if JSON::XS::is_bool($v);
            return [ map { ty($_) } @$v ] if ref $v eq 'ARRAY';
            if (ref $v eq 'HASH') {
                return { m => [ map { my $k = $_; utf8::encode($k); [ unpack("H*", $k), ty($v->{$_}) ] } sort keys %$v ] };
            }
            my $flags = B::svref_2object(\$v)->FLAGS;
            if ($flags & B::SVf_POK) { my $s = $v; utf8::encode($s); return { s => unpack("H*", $s) } }
            return { i => "$v" } if $flags & B::SVf_IOK;
            return { f => unpack("H*", pack("d>", $v)) } if $flags & B::SVf_NOK;
            return { unknown => 1 };
        }
        while (my $line = <STDIN>) {
            chomp $line;
            my $r = eval { { r => ty($in->decode($line)) } } || { e => "$@" };
            print $out->encode($r), "\n";
        }
        """#

    static let pythonTypedFunction = #"""
        import json, struct, sys, random
        def ty(v):
            if v is None: return None
            if isinstance(v, bool): return {"b": v}
            if isinstance(v, int): return {"i": str(v)}
            if isinstance(v, float): return {"f": struct.pack(">d", v).hex()}
            if isinstance(v, str): return {"s": v.encode("utf-8").hex()}
            if isinstance(v, list): return [ty(x) for x in v]
            if isinstance(v, dict): return {"m": [[k.encode("utf-8").hex(), ty(x)] for k, x in v.items()]}
            raise TypeError(type(v))
        """#
}

@Suite("JSON cross-checks against Perl JSON::XS and Python json")
struct JSONCrossCheckTests {
    @Test("everything we encode decodes in Perl's JSON::XS to the value we meant",
          .enabled(if: JSONCrossCheck.perlWithJSONXS || JSONCrossCheck.inCI,
                   "perl with JSON::XS is missing (Debian: libjson-xs-perl; scripts/test.sh installs it)"))
    func perlDecodesOurOutput() throws {
        let values = JSONCrossCheck.batch(seed: 11, count: 400)
        let input = try JSONCrossCheck.encodeLines(values)
        let perl = try #require(JSONCrossCheck.which("perl"))
        let result = try JSONCrossCheck.run(perl, ["-e", JSONCrossCheck.perlScript], input: input)
        #expect(result.status == 0, "\(String(decoding: result.error, as: UTF8.self))")
        let lines = JSONCrossCheck.lines(result.output)
        try #require(lines.count == values.count)
        for (line, value) in zip(lines, values) {
            let record = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            guard let typed = record["r"] else {
                Issue.record("Perl failed on \(value): \(record["e"] ?? "?")")
                continue
            }
            var note = ""
            #expect(JSONCrossCheck.matches(typed, value, .perl, note: &note), "\(note)")
        }
    }

    @Test("everything we encode decodes in Python's json to the value we meant",
          .enabled(if: JSONCrossCheck.python != nil, "python3 is missing"))
    func pythonDecodesOurOutput() throws {
        let values = JSONCrossCheck.batch(seed: 12, count: 400)
        let input = try JSONCrossCheck.encodeLines(values)
        let script = JSONCrossCheck.pythonTypedFunction + """

            for line in sys.stdin.buffer:
                print(json.dumps(ty(json.loads(line))))
            """
        let result = try JSONCrossCheck.run(JSONCrossCheck.python!, ["-c", script], input: input)
        #expect(result.status == 0, "\(String(decoding: result.error, as: UTF8.self))")
        let lines = JSONCrossCheck.lines(result.output)
        try #require(lines.count == values.count)
        for (line, value) in zip(lines, values) {
            let typed = try JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
            var note = ""
            #expect(JSONCrossCheck.matches(typed, value, .python, note: &note), "\(note)")
        }
    }

    @Test("everything Python's json encodes decodes here to the value Python meant",
          .enabled(if: JSONCrossCheck.python != nil, "python3 is missing"))
    func weDecodePythonOutput() throws {
        let script = JSONCrossCheck.pythonTypedFunction + #"""

            rng = random.Random(13)
            POOL = "ab Z0\"\\/\n\t\x00\x1f\x7f\u00e9\u00ff\u20ac\u2028\U0001F600\U0010FFFF\ufffd"
            def rstr():
                return "".join(rng.choice(POOL) for _ in range(rng.randint(0, 10)))
            def rval(depth=0):
                k = rng.randint(0, 8 if depth < 4 else 5)
                if k == 0: return None
                if k == 1: return rng.random() < 0.5
                if k == 2:
                    return rng.choice([rng.randint(-1000, 1000), rng.randint(-2**63, 2**64 - 1),
                                       rng.randint(-10**40, 10**40), -2**63, 2**64 - 1, 2**64, -2**63 - 1])
                if k == 3:
                    while True:
                        f = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
                        if f == f and abs(f) != float("inf"): break
                    return rng.choice([f, rng.uniform(-1e6, 1e6), rng.randint(-50, 50) / 4.0, 1e-7, 1e22, 1e23])
                if k in (4, 5): return rstr()
                if k in (6, 7): return [rval(depth + 1) for _ in range(rng.randint(0, 5))]
                return {rstr(): rval(depth + 1) for _ in range(rng.randint(0, 5))}
            for _ in range(400):
                v = [rval()]
                text = json.dumps(v, ensure_ascii=rng.random() < 0.5, indent=rng.choice([None, None, 1]))
                print(json.dumps([text, ty(v)]))
            """#
        let result = try JSONCrossCheck.run(JSONCrossCheck.python!, ["-c", script], input: Data())
        #expect(result.status == 0, "\(String(decoding: result.error, as: UTF8.self))")
        let lines = JSONCrossCheck.lines(result.output)
        #expect(lines.count == 400)
        // All texts back to back in one stream, split at a varying place.
        var stream: [UInt8] = []
        var expected: [Any] = []
        for line in lines {
            let pair = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [Any])
            stream += Array((pair[0] as! String).utf8)
            expected.append(pair[1])
        }
        var decoder = JSONStreamDecoder()
        var buffer = ByteBuffer()
        var values: [Value] = []
        var offset = 0
        var chunk = 1
        while offset < stream.count {
            let end = min(stream.count, offset + chunk)
            buffer.writeBytes(stream[offset..<end])
            offset = end
            chunk = chunk % 97 + 13
            while let v = try decoder.next(from: &buffer) { values.append(v) }
        }
        #expect(try decoder.finish(from: &buffer) == nil)
        try #require(values.count == expected.count)
        for (value, typed) in zip(values, expected) {
            var note = ""
            #expect(JSONCrossCheck.matches(typed, value, .python, note: &note), "\(note)")
        }
    }
}
