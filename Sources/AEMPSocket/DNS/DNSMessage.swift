/// DNS resource record types this module asks for or understands (RFC 1035, RFC 3596, RFC 2782).
struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    var rawValue: UInt16

    init(rawValue: UInt16) { self.rawValue = rawValue }

    static let a = Self(rawValue: 1)
    static let cname = Self(rawValue: 5)
    static let txt = Self(rawValue: 16)
    static let aaaa = Self(rawValue: 28)
    static let srv = Self(rawValue: 33)

    var description: String {
        switch self {
        case .a: "A"
        case .cname: "CNAME"
        case .txt: "TXT"
        case .aaaa: "AAAA"
        case .srv: "SRV"
        default: "TYPE\(rawValue)"
        }
    }
}

/// The data part of a decoded resource record; types we do not use are kept as `.other`.
enum DNSRecordData: Hashable, Sendable {
    case address(IPAddress)
    case cname(String)
    case srv(SRVRecord)
    case other
}

/// One decoded resource record of the answer section.
struct DNSResourceRecord: Hashable, Sendable {
    /// The owner name, lowercased, without the trailing dot.
    var name: String
    var type: DNSRecordType
    var recordClass: UInt16
    var ttl: UInt32
    var data: DNSRecordData
}

/// A decoded DNS message: the header, the question section and the answer section.
///
/// Authority and additional sections are not decoded: this resolver never needs them.
struct DNSMessage: Sendable {
    static let classIN: UInt16 = 1
    static let headerSize = 12
    /// RFC 1035 limits a name to 255 octets on the wire.
    static let maximumNameLength = 255

    /// Response codes used here.
    enum ResponseCode {
        static let noError: UInt8 = 0
        static let serverFailure: UInt8 = 2
        static let nameError: UInt8 = 3
    }

    var id: UInt16
    var flags: UInt16
    /// `(name, type, class)` of each question; names lowercased without the trailing dot.
    var questions: [(name: String, type: DNSRecordType, recordClass: UInt16)]
    var answers: [DNSResourceRecord]

    var isResponse: Bool { flags & 0x8000 != 0 }
    var isTruncated: Bool { flags & 0x0200 != 0 }
    var opcode: UInt8 { UInt8((flags >> 11) & 0xF) }
    var responseCode: UInt8 { UInt8(flags & 0xF) }

    // MARK: Encoding

    /// Encodes a standard recursive query for one name and type.
    ///
    /// - Throws: `EINVAL` when the name cannot be a DNS name (empty label, label over 63 octets,
    ///   name over 255 octets).
    static func query(id: UInt16, name: String, type: DNSRecordType) throws(SocketError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerSize + name.utf8.count + 6)
        bytes.append(contentsOf: [UInt8(id >> 8), UInt8(id & 0xFF)])
        bytes.append(contentsOf: [0x01, 0x00])  // RD
        bytes.append(contentsOf: [0, 1, 0, 0, 0, 0, 0, 0])  // QDCOUNT 1
        try appendName(name, to: &bytes)
        bytes.append(contentsOf: [UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), 0, UInt8(classIN)])
        return bytes
    }

    /// Appends `name` as uncompressed labels; a single trailing dot is allowed, `.` alone is the root.
    static func appendName(_ name: String, to bytes: inout [UInt8]) throws(SocketError) {
        var utf8 = Substring(name).utf8[...]
        if utf8.last == UInt8(ascii: ".") { utf8 = utf8.dropLast() }
        var total = 1
        if !utf8.isEmpty {
            for label in utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
                guard !label.isEmpty, label.count <= 63 else {
                    throw SocketError(.invalidArgument, "'\(name)' is not a valid DNS name")
                }
                total += label.count + 1
                bytes.append(UInt8(label.count))
                bytes.append(contentsOf: label)
            }
        }
        guard total <= maximumNameLength else {
            throw SocketError(.invalidArgument, "'\(name)' is longer than 255 octets")
        }
        bytes.append(0)
    }

    // MARK: Decoding

    /// Decodes a message; every read is bounds checked.
    ///
    /// For a truncated (TC) message only the header and questions are decoded, because the
    /// answer section may be cut off anywhere.
    ///
    /// - Throws: `EPROTO` with a message saying what is wrong.
    static func decode(_ bytes: [UInt8]) throws(SocketError) -> DNSMessage {
        var reader = Reader(bytes: bytes)
        let id = try reader.u16()
        let flags = try reader.u16()
        let qdcount = Int(try reader.u16())
        let ancount = Int(try reader.u16())
        _ = try reader.u16()  // NSCOUNT
        _ = try reader.u16()  // ARCOUNT
        var message = DNSMessage(id: id, flags: flags, questions: [], answers: [])
        // Each question needs at least 5 octets, each record at least 11: cap reservations.
        message.questions.reserveCapacity(min(qdcount, bytes.count / 5))
        for _ in 0..<qdcount {
            let name = try reader.name()
            let type = DNSRecordType(rawValue: try reader.u16())
            let recordClass = try reader.u16()
            message.questions.append((name, type, recordClass))
        }
        if message.isTruncated { return message }
        message.answers.reserveCapacity(min(ancount, bytes.count / 11))
        for _ in 0..<ancount {
            message.answers.append(try reader.record())
        }
        return message
    }

    /// A bounds-checked cursor over a whole message (compression pointers refer to the whole).
    struct Reader {
        let bytes: [UInt8]
        var position = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        static func malformed(_ what: String) -> SocketError {
            SocketError(.protocolError, "malformed DNS message: \(what)")
        }

        mutating func u8() throws(SocketError) -> UInt8 {
            guard position < bytes.count else { throw Self.malformed("truncated at offset \(position)") }
            defer { position += 1 }
            return bytes[position]
        }

        mutating func u16() throws(SocketError) -> UInt16 {
            guard bytes.count - position >= 2 else { throw Self.malformed("truncated at offset \(position)") }
            defer { position += 2 }
            return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
        }

        mutating func u32() throws(SocketError) -> UInt32 {
            UInt32(try u16()) << 16 | UInt32(try u16())
        }

        mutating func take(_ count: Int) throws(SocketError) -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - position >= count else {
                throw Self.malformed("truncated at offset \(position)")
            }
            defer { position += count }
            return bytes[position..<position + count]
        }

        /// Reads a possibly compressed name at the cursor and returns it lowercased, dot-separated,
        /// without the trailing dot (`""` for the root).
        ///
        /// Loops are impossible: every compression pointer must point strictly before the
        /// label sequence that contains it, so each jump moves backwards.
        mutating func name() throws(SocketError) -> String {
            var text: [UInt8] = []
            var cursor = position
            var segmentStart = position
            var jumped = false
            var wireLength = 1
            while true {
                guard cursor < bytes.count else { throw Self.malformed("name runs past the end") }
                let length = bytes[cursor]
                switch length & 0xC0 {
                case 0x00:
                    if length == 0 {
                        if !jumped { position = cursor + 1 }
                        return String(decoding: text, as: UTF8.self)
                    }
                    let start = cursor + 1
                    let end = start + Int(length)
                    guard end <= bytes.count else { throw Self.malformed("label runs past the end") }
                    wireLength += Int(length) + 1
                    guard wireLength <= DNSMessage.maximumNameLength else {
                        throw Self.malformed("name longer than 255 octets")
                    }
                    if !text.isEmpty { text.append(UInt8(ascii: ".")) }
                    for byte in bytes[start..<end] {
                        // Lowercase ASCII only; DNS comparisons are ASCII case-insensitive.
                        text.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
                    }
                    cursor = end
                case 0xC0:
                    guard cursor + 1 < bytes.count else { throw Self.malformed("truncated compression pointer") }
                    let target = Int(length & 0x3F) << 8 | Int(bytes[cursor + 1])
                    guard target < segmentStart else {
                        throw Self.malformed("compression pointer to offset \(target) does not point backwards")
                    }
                    if !jumped { position = cursor + 2 }
                    jumped = true
                    cursor = target
                    segmentStart = target
                default:
                    throw Self.malformed("unsupported label type 0x\(String(length, radix: 16))")
                }
            }
        }

        mutating func record() throws(SocketError) -> DNSResourceRecord {
            let owner = try name()
            let type = DNSRecordType(rawValue: try u16())
            let recordClass = try u16()
            let ttl = try u32()
            let length = Int(try u16())
            let start = position
            let rdata = try take(length)
            let end = position
            let data: DNSRecordData
            switch type {
            case .a where recordClass == DNSMessage.classIN, .aaaa where recordClass == DNSMessage.classIN:
                guard rdata.count == (type == .a ? 4 : 16), let address = IPAddress(bytes: rdata) else {
                    throw Self.malformed("\(type) record with \(rdata.count) data octets")
                }
                data = .address(address)
            case .cname:
                position = start
                data = .cname(try name())
                guard position == end else { throw Self.malformed("CNAME data length mismatch") }
            case .srv:
                position = start
                guard length >= 7 else { throw Self.malformed("SRV record too short") }
                let priority = try u16()
                let weight = try u16()
                let port = try u16()
                let target = try name()
                guard position == end else { throw Self.malformed("SRV data length mismatch") }
                data = .srv(SRVRecord(priority: priority, weight: weight, port: Int(port), target: target.isEmpty ? "." : target))
            default:
                data = .other
            }
            position = end
            return DNSResourceRecord(name: owner, type: type, recordClass: recordClass, ttl: ttl, data: data)
        }
    }
}

/// Lowercases ASCII letters and drops one trailing dot, the form decoded names have.
func canonicalDNSName(_ name: String) -> String {
    var utf8 = Array(name.utf8)
    if utf8.last == UInt8(ascii: ".") { utf8.removeLast() }
    for index in utf8.indices where utf8[index] >= 0x41 && utf8[index] <= 0x5A { utf8[index] |= 0x20 }
    return String(decoding: utf8, as: UTF8.self)
}
