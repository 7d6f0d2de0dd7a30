// Hand-written IPv4/IPv6 text formatters (no Foundation, no libc).

/// Formats an address as text (Perl: `format_ipv4` / `format_ipv6`, and `format_address` /
/// `ntoa` apart from the IPv4-mapped case below).
///
/// - 4 bytes give the dotted quad: `"127.0.0.1"`.
/// - 16 bytes give RFC 5952 text: lower-case hex without leading zeros, the longest run of two
///   or more zero groups (the first one on a tie) written as `::`. IPv4-mapped addresses
///   (`::ffff:0:0/96`) and IPv4-translated addresses (`::ffff:0:0:0/96`, RFC 2765) end in a
///   dotted quad: `"::ffff:1.2.3.4"`, `"::ffff:0:1.2.3.4"`.
///
/// Differences from Perl 7.17, each deliberate:
/// - IPv4-mapped addresses are written as `::ffff:a.b.c.d` (the rule); Perl's
///   `format_address` writes only the IPv4 part. `formatIP(address.ipv4Unmapped)` is Perl's text.
/// - Other addresses in `::/96` are written in hex, as RFC 5952 requires: `::2`, `::ffff`,
///   `::1:0`, `::102:304`. Perl writes the deprecated IPv4-compatible form `::0.0.0.2`,
///   `::0.0.255.255`, `::0.1.0.0`, `::1.2.3.4`. Both forms parse to the same bytes.
///
/// - Parameter address: The address to format.
/// - Returns: The text; ``parseIP(_:)`` reads it back (as ``IPAddress/ipv4Unmapped``).
public func formatIP(_ address: IPAddress) -> String {
    address.bytes.withUnsafeBufferPointer { IPTextFormatter.format($0) }
}

/// Formats raw address bytes as text, choosing the family by length (Perl: `format_address`).
///
/// Equivalent to `IPAddress(bytes:).map(formatIP)`, without building an ``IPAddress``.
/// Perl's formatters also accept other lengths (padding or truncating, or returning `"unix/"`
/// for the UNIX token); this returns `nil` for them.
///
/// - Parameter bytes: 4 or 16 bytes in network order.
/// - Returns: The text as ``formatIP(_:)`` writes it, or `nil` unless there are 4 or 16 bytes.
public func formatIP(bytes: some Collection<UInt8>) -> String? {
    let count = bytes.count
    guard count == 4 || count == 16 else { return nil }
    if let text = bytes.withContiguousStorageIfAvailable({ IPTextFormatter.format($0) }) {
        return text
    }
    return Array(bytes).withUnsafeBufferPointer { IPTextFormatter.format($0) }
}

extension IPAddress: CustomStringConvertible {
    /// The address as ``formatIP(_:)`` writes it.
    public var description: String { formatIP(self) }
}

// MARK: - Implementation

/// Writes addresses into a string's storage directly (at most 45 bytes, no intermediate arrays).
enum IPTextFormatter {
    /// The longest text: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255` is 45 bytes.
    static let maximumLength = 45

    /// Formats 4 or 16 bytes; the caller checks the length.
    static func format(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: maximumLength) { output in
            var writer = Writer(output: output)
            if bytes.count == 4 {
                writer.dottedQuad(bytes, from: 0)
            } else {
                writer.ipv6(bytes)
            }
            return writer.count
        }
    }

    private struct Writer {
        let output: UnsafeMutableBufferPointer<UInt8>
        var count = 0

        init(output: UnsafeMutableBufferPointer<UInt8>) { self.output = output }

        @inline(__always)
        mutating func append(_ byte: UInt8) {
            output[count] = byte
            count += 1
        }

        mutating func append(_ ascii: StaticString) {
            ascii.withUTF8Buffer { for byte in $0 { append(byte) } }
        }

        mutating func decimal(_ value: UInt8) {
            if value >= 100 { append(0x30 + value / 100) }
            if value >= 10 { append(0x30 + value / 10 % 10) }
            append(0x30 + value % 10)
        }

        mutating func hex(_ value: UInt16) {
            var started = false
            for shift in stride(from: 12, through: 0, by: -4) {
                let digit = UInt8(truncatingIfNeeded: value >> UInt16(shift)) & 0xf
                if digit == 0, !started, shift != 0 { continue }
                started = true
                append(digit < 10 ? 0x30 + digit : 0x61 + digit - 10)
            }
        }

        mutating func dottedQuad(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) {
            decimal(bytes[start])
            for index in (start + 1)..<(start + 4) {
                append(0x2e)
                decimal(bytes[index])
            }
        }

        mutating func ipv6(_ bytes: UnsafeBufferPointer<UInt8>) {
            var zeroPrefix = 0  // leading zero bytes
            while zeroPrefix < 16, bytes[zeroPrefix] == 0 { zeroPrefix += 1 }
            if zeroPrefix >= 10, bytes[10] == 0xff, bytes[11] == 0xff {
                append("::ffff:")  // IPv4-mapped, ::ffff:0:0/96
                dottedQuad(bytes, from: 12)
                return
            }
            if zeroPrefix >= 8, bytes[8] == 0xff, bytes[9] == 0xff, bytes[10] == 0, bytes[11] == 0 {
                append("::ffff:0:")  // IPv4-translated, ::ffff:0:0:0/96
                dottedQuad(bytes, from: 12)
                return
            }
            // The longest run of at least two zero groups; the first wins a tie.
            var bestStart = -1
            var bestLength = 1
            var runStart = -1
            for group in 0..<8 {
                if bytes[2 * group] == 0, bytes[2 * group + 1] == 0 {
                    if runStart < 0 { runStart = group }
                    if group - runStart + 1 > bestLength {
                        bestStart = runStart
                        bestLength = group - runStart + 1
                    }
                } else {
                    runStart = -1
                }
            }
            var group = 0
            while group < 8 {
                if group == bestStart {
                    append(0x3a)
                    append(0x3a)
                    group += bestLength
                    continue
                }
                let followsGap = bestStart >= 0 && group == bestStart + bestLength
                if group > 0, !followsGap { append(0x3a) }
                hex(UInt16(bytes[2 * group]) << 8 | UInt16(bytes[2 * group + 1]))
                group += 1
            }
        }
    }
}
