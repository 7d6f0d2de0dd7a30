import NIOCore

extension Value: CustomStringConvertible, CustomDebugStringConvertible {
    /// The value in RFC 8949 diagnostic notation (§8): `1`, `1.5`, `"text"`, `h'6869'`, `[1, 2]`,
    /// `{"k": 1}`, `24(h'01')`, `simple(16)`, `null`, `undefined`. Bignums are shown as their tag,
    /// `2(h'010000000000000000')`. Floats show no width suffix.
    public var description: String {
        var out = ""
        Value.writeDiagnostic(self, to: &out)
        return out
    }

    /// Same as ``description``.
    public var debugDescription: String { description }

    private static func writeDiagnostic(_ value: Value, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .undefined: out += "undefined"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .uint(let u): out += String(u)
        case .bignum(let negative, let magnitude):
            out += negative ? "3(h'" : "2(h'"
            writeHex(magnitude, to: &out)
            out += "')"
        case .float(let d): out += diagnosticFloat(d)
        case .text(let s): writeQuoted(s, to: &out)
        case .bytes(let b):
            out += "h'"
            writeHex(b.readableBytesView, to: &out)
            out += "'"
        case .array(let elements):
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += ", " }
                writeDiagnostic(element, to: &out)
            }
            out += "]"
        case .map(let pairs):
            out += "{"
            for (i, pair) in pairs.enumerated() {
                if i > 0 { out += ", " }
                writeDiagnostic(pair.key, to: &out)
                out += ": "
                writeDiagnostic(pair.value, to: &out)
            }
            out += "}"
        case .tagged(let tag, let inner):
            out += String(tag)
            out += "("
            writeDiagnostic(inner, to: &out)
            out += ")"
        case .simple(let n): out += "simple(\(n))"
        }
    }

    private static func diagnosticFloat(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        let text = String(d)  // shortest round-trip form: "1.0", "1.5", "1e+300"
        if text.contains(".") || text.contains("e") { return text }
        return text + ".0"
    }

    private static func writeHex(_ bytes: some Sequence<UInt8>, to out: inout String) {
        let digits: [Character] = Array("0123456789abcdef")
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
    }

    private static func writeQuoted(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
