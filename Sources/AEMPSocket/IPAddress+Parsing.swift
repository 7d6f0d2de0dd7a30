// Hand-written IPv4/IPv6 text parsers (no Foundation, no regex, no libc).
//
// Both parsers work on the UTF-8 bytes of the input; every accepted character is ASCII, so a
// non-ASCII byte simply fails the match. The only allocation is the result's byte array.

/// Parses an IPv4 address in any POSIX `inet_aton` form (Perl: `parse_ipv4`).
///
/// The text has one to four parts separated by dots. Each part is decimal, octal (leading `0`)
/// or hexadecimal (`0x`/`0X` prefix); the last part fills all remaining bytes, so `10.1` is
/// `10.0.0.1`, `10.0x020304` is `10.2.3.4` and `0x12345678` is `18.52.86.120`. Parts before the
/// last must be at most 255.
///
/// Returns `nil` for empty parts, out-of-range values, signs, whitespace (including a trailing
/// newline), non-ASCII digits or any other extra character.
///
/// Differences from Perl 7.17, each deliberate:
/// - `0X` (capital X) is accepted as a hex prefix, as POSIX specifies and Perl's documentation
///   promises ("all forms specified by POSIX"); Perl rejects it.
/// - A trailing `"\n"` gives `nil`; Perl accepts it (a side effect of its regex `$`).
/// - Octal or hex values above 32 bits give `nil`; Perl dies ("non-portable").
///
/// - Parameter text: The address text, e.g. `"127.0.0.1"` or `"127.1"`.
/// - Returns: A 4-byte address, or `nil` if `text` is not an IPv4 address.
public func parseIPv4(_ text: String) -> IPAddress? {
    var text = text
    return text.withUTF8 { buffer -> IPAddress? in
        guard let value = IPv4TextParser.parse(buffer, buffer.startIndex, buffer.endIndex) else { return nil }
        return IPAddress(uncheckedBytes: [
            UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
            UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value),
        ])
    }
}

/// Parses an IPv6 address in any RFC 4291 text form, or an IPv4 address (Perl: `parse_ipv6`).
///
/// Accepted IPv6 forms: the full form `x:x:x:x:x:x:x:x` (1–4 hex digits per group, any case),
/// `::` standing for one or more zero groups (`::`, `::1`, `1::`, `2001:db8::1`), and a dotted
/// IPv4 tail in place of the last two groups (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`). Like Perl,
/// the IPv4 tail may use any ``parseIPv4(_:)`` form that contains a dot (`::ffff:127.1`).
///
/// Text that ``parseIPv4(_:)`` accepts (`"1.2.3.4"`, `"127.1"`, `"0x7f000001"`) gives that
/// 4-byte IPv4 address. Text that is already IPv6, including `::ffff:a.b.c.d`, gives 16 bytes.
/// Zone ids (`fe80::1%eth0`), brackets, whitespace and anything malformed give `nil`.
///
/// Differences from Perl 7.17, each deliberate:
/// - IPv4 forms give 4 bytes (the rule); Perl returns the IPv4-mapped 16 bytes.
///   `parseIPv6(text)?.ipv4Mapped` is Perl's result.
/// - `::` must stand for at least one group (RFC 4291): `1::2:3:4:5:6:7:8` gives `nil`; Perl
///   accepts it as `1:2:3:4:5:6:7:8`.
/// - Seven explicit groups with `::` are accepted when the last two are an IPv4 tail
///   (`::1:2:3:4:5:1.2.3.4`, RFC 4291); Perl rejects them.
/// - A trailing `"\n"` gives `nil`; Perl accepts it after an IPv4 tail and dies after a hex group.
///
/// - Parameter text: The address text.
/// - Returns: A 16-byte IPv6 address, a 4-byte IPv4 address for IPv4 forms, or `nil`.
public func parseIPv6(_ text: String) -> IPAddress? {
    var text = text
    return text.withUTF8 { buffer -> IPAddress? in
        if let value = IPv4TextParser.parse(buffer, buffer.startIndex, buffer.endIndex) {
            return IPAddress(uncheckedBytes: [
                UInt8(truncatingIfNeeded: value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value),
            ])
        }
        guard let bytes = IPv6TextParser.parse(buffer) else { return nil }
        return IPAddress(uncheckedBytes: bytes)
    }
}

/// Parses an IPv4 or IPv6 address (Perl: `parse_address`, also `AnyEvent::Socket::aton`).
///
/// Accepts everything ``parseIPv6(_:)`` accepts. IPv4 forms and IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`, in any notation) come back as 4-byte IPv4 addresses; everything else as
/// 16 bytes. No name resolution happens: `"localhost"` gives `nil`.
///
/// Perl's `parse_address("unix/")` returns a 2-byte "UNIX domain" token; ``IPAddress`` cannot
/// hold it, so this returns `nil` for `"unix/"`. Test for `"unix/"` before calling (as
/// `ConnectTarget.unix` does). The differences listed under ``parseIPv6(_:)`` apply here too.
///
/// - Parameter text: The address text.
/// - Returns: The address, or `nil` if `text` is not a numeric IP address.
public func parseIP(_ text: String) -> IPAddress? {
    parseIPv6(text)?.ipv4Unmapped
}

extension IPAddress {
    /// Whether this is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, the prefix `::ffff:0:0/96`).
    public var isIPv4Mapped: Bool {
        guard bytes.count == 16 else { return false }
        for index in 0..<10 where bytes[index] != 0 { return false }
        return bytes[10] == 0xff && bytes[11] == 0xff
    }

    /// The IPv4 address inside an IPv4-mapped IPv6 address; any other address unchanged.
    ///
    /// Perl's `parse_address` and `format_address` apply this step, so Perl's
    /// `format_address($ipn)` is `formatIP(address.ipv4Unmapped)` here.
    public var ipv4Unmapped: IPAddress {
        isIPv4Mapped ? IPAddress(uncheckedBytes: Array(bytes[12..<16])) : self
    }

    /// The IPv4-mapped IPv6 form (`::ffff:a.b.c.d`) of an IPv4 address; an IPv6 address unchanged.
    ///
    /// Perl's `parse_ipv6` returns this form for IPv4 text: Perl's `parse_ipv6($text)` is
    /// `parseIPv6(text)?.ipv4Mapped` here.
    public var ipv4Mapped: IPAddress {
        guard bytes.count == 4 else { return self }
        var mapped = [UInt8](repeating: 0, count: 16)
        mapped[10] = 0xff
        mapped[11] = 0xff
        mapped[12] = bytes[0]
        mapped[13] = bytes[1]
        mapped[14] = bytes[2]
        mapped[15] = bytes[3]
        return IPAddress(uncheckedBytes: mapped)
    }
}

// MARK: - Implementation

/// The ASCII codes the parsers look at.
enum ASCII {
    static let dot: UInt8 = 0x2e
    static let colon: UInt8 = 0x3a
    static let zero: UInt8 = 0x30
    static let lowerX: UInt8 = 0x78

    /// The value of a hexadecimal digit (either case), or `nil`.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: byte &- 0x30
        case 0x41...0x46: byte &- 0x41 &+ 10
        case 0x61...0x66: byte &- 0x61 &+ 10
        default: nil
        }
    }
}

/// The `inet_aton`-style IPv4 grammar.
enum IPv4TextParser {
    /// Parses `buffer[start..<end]` as a 1–4 part IPv4 address and returns it as a host-order
    /// 32-bit value, or `nil`.
    static func parse(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> UInt32? {
        var index = start
        var leading: UInt64 = 0  // the parts before the last, 8 bits each
        var partCount = 0
        while true {
            guard let (part, next) = parsePart(buffer, index, end) else { return nil }
            partCount += 1
            if next == end {
                // `part` is the last part: it fills the 5 - partCount remaining bytes.
                let width = UInt64(8 * (5 - partCount))
                guard part < (1 << width) else { return nil }
                return UInt32(truncatingIfNeeded: (leading << width) | part)
            }
            // Not the end, so buffer[next] is a dot and another part must follow.
            guard partCount < 4, part <= 255 else { return nil }
            leading = (leading << 8) | part
            index = next + 1
        }
    }

    /// Parses one part starting at `index`; returns its value and the index of the dot or `end`
    /// that stopped it. Values above 32 bits fail early, so long inputs cannot overflow.
    @inline(__always)
    private static func parsePart(
        _ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int
    ) -> (UInt64, Int)? {
        var index = start
        guard index < end, buffer[index] != ASCII.dot else { return nil }  // empty part
        let base: UInt64
        if buffer[index] == ASCII.zero, index + 1 < end, buffer[index + 1] | 0x20 == ASCII.lowerX {
            base = 16
            index += 2
            guard index < end, buffer[index] != ASCII.dot else { return nil }  // "0x" alone
        } else if buffer[index] == ASCII.zero {
            base = 8  // the leading zero is itself an octal digit
        } else {
            base = 10
        }
        var value: UInt64 = 0
        while index < end, buffer[index] != ASCII.dot {
            guard let digit = ASCII.hexValue(buffer[index]), UInt64(digit) < base else { return nil }
            value = value * base + UInt64(digit)
            guard value <= 0xffff_ffff else { return nil }
            index += 1
        }
        return (value, index)
    }
}

/// The RFC 4291 IPv6 grammar (plus Perl's any-`inet_aton`-form IPv4 tail).
enum IPv6TextParser {
    /// Parses the whole buffer as an IPv6 address; returns its 16 bytes or `nil`.
    static func parse(_ buffer: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        let end = buffer.endIndex
        var index = buffer.startIndex
        guard end - index >= 2 else { return nil }  // the shortest address is "::"
        var out = [UInt8](repeating: 0, count: 16)
        var groups = 0  // 16-bit groups written so far
        var gap = -1  // the group index where "::" stands, if any

        if buffer[index] == ASCII.colon {
            guard buffer[index + 1] == ASCII.colon else { return nil }  // a lone leading colon
            gap = 0
            index += 2
            if index == end { return out }
        }
        while true {
            // One piece: everything up to the next colon or the end.
            var pieceEnd = index
            var sawDot = false
            while pieceEnd < end, buffer[pieceEnd] != ASCII.colon {
                if buffer[pieceEnd] == ASCII.dot { sawDot = true }
                pieceEnd += 1
            }
            guard pieceEnd > index else { return nil }  // empty piece: ":::" or "1:::2"
            if sawDot {
                // An IPv4 tail: the last piece, taking two groups.
                guard pieceEnd == end, groups <= 6,
                    let value = IPv4TextParser.parse(buffer, index, pieceEnd)
                else { return nil }
                out[2 * groups] = UInt8(truncatingIfNeeded: value >> 24)
                out[2 * groups + 1] = UInt8(truncatingIfNeeded: value >> 16)
                out[2 * groups + 2] = UInt8(truncatingIfNeeded: value >> 8)
                out[2 * groups + 3] = UInt8(truncatingIfNeeded: value)
                groups += 2
                break
            }
            guard groups < 8, pieceEnd - index <= 4 else { return nil }
            var value: UInt16 = 0
            for position in index..<pieceEnd {
                guard let digit = ASCII.hexValue(buffer[position]) else { return nil }
                value = value << 4 | UInt16(digit)
            }
            out[2 * groups] = UInt8(truncatingIfNeeded: value >> 8)
            out[2 * groups + 1] = UInt8(truncatingIfNeeded: value)
            groups += 1
            if pieceEnd == end { break }
            // buffer[pieceEnd] is a colon; a second one makes "::".
            index = pieceEnd + 1
            if index < end, buffer[index] == ASCII.colon {
                guard gap < 0 else { return nil }  // a second "::"
                gap = groups
                index += 1
                if index == end { break }
            } else if index == end {
                return nil  // a trailing single colon
            }
        }
        if gap < 0 {
            return groups == 8 ? out : nil
        }
        // "::" stands for at least one zero group (RFC 4291).
        guard groups <= 7 else { return nil }
        let tailGroups = groups - gap
        if tailGroups > 0 {
            // Move the groups after "::" to the end and zero the gap, back to front.
            for offset in stride(from: 2 * tailGroups - 1, through: 0, by: -1) {
                out[16 - 2 * tailGroups + offset] = out[2 * gap + offset]
            }
            for position in (2 * gap)..<(16 - 2 * tailGroups) { out[position] = 0 }
        }
        return out
    }
}
