/// Greeting line 1 of the AEMP handshake (spec §3.1):
///
///     <proto>;<version>;<nodeid>;<auth-list>;<framing-list>[;<key>=<value>]*
///
/// Perl: `AnyEvent::MP::Transport` builds and splits this line. Fields are `;`-separated without any
/// escaping, lists are `,`-separated, and the key/value pairs come in arbitrary order. Formatting a
/// parsed greeting reproduces the original line byte for byte (the pairs keep their order).
///
/// ```swift
/// let greeting = try Greeting(parsing: "aemp;1;echo;hmac_sha3_512;cbor,json;provider=AE-2.01")
/// greeting.nodeID          // echo
/// greeting["provider"]     // "AE-2.01"
/// greeting.line            // the same text again
/// ```
public struct Greeting: Sendable, Hashable {
    /// One key/value item of the greeting; `value` is `nil` for an item without `=`.
    public struct Item: Sendable, Hashable {
        /// The text before the first `=`.
        public var key: String
        /// The text after the first `=` (may contain `=`), or `nil` if there was no `=`.
        public var value: String?

        /// Creates an item.
        ///
        /// - Parameters:
        ///   - key: the key.
        ///   - value: the value, or `nil` for a bare key.
        public init(key: String, value: String?) {
            self.key = key
            self.value = value
        }
    }

    /// The protocol of ordinary node connections.
    public static let aemp = "aemp"
    /// The protocol of DataConn connections (spec §9).
    public static let aempDataConn = "aemp-dataconn"
    /// The protocol version this implementation speaks (field 2).
    public static let currentVersion = 1
    /// The `provider` value Perl AnyEvent::MP 2.x sends: `AE-` and its version (`AE-2.01`).
    public static let perlProvider = "AE-2.01"
    /// The `provider` value this Swift node sends: `swift-aemp/` followed by the Perl provider it is
    /// wire compatible with. Perl ignores the value; ``NodeImplementation/init(provider:)`` (and
    /// `aemp trace`) tell Swift and Perl nodes apart by it.
    public static let defaultProvider = "swift-aemp/" + perlProvider

    /// Field 1: `aemp`, `aemp-dataconn` or another `aemp-<word>` upgrade.
    public var protocolName: String
    /// Field 2, as sent (compared numerically with ``currentVersion``).
    public var version: String
    /// Field 3: the sender's node ID.
    public var nodeID: NodeID
    /// Field 4: the auth methods the sender accepts, in preference order.
    public var authMethods: [AuthMethod]
    /// Field 5: the framings the sender offers/accepts, in preference order.
    public var framings: [Framing]
    /// The key/value items after field 5, in the order sent.
    public var items: [Item]

    /// Creates a greeting from its fields.
    ///
    /// - Parameters:
    ///   - protocolName: `aemp` or `aemp-dataconn`.
    ///   - version: the version field (`"1"`).
    ///   - nodeID: the sender's node ID.
    ///   - authMethods: the accepted auth methods.
    ///   - framings: the offered framings.
    ///   - items: the key/value items.
    public init(
        protocolName: String = Greeting.aemp,
        version: String = String(Greeting.currentVersion),
        nodeID: NodeID,
        authMethods: [AuthMethod],
        framings: [Framing],
        items: [Item] = []
    ) {
        self.protocolName = protocolName
        self.version = version
        self.nodeID = nodeID
        self.authMethods = authMethods
        self.framings = framings
        self.items = items
    }

    /// The greeting a node sends, with the keys Perl 2.x sends (spec §3.1).
    ///
    /// - Parameters:
    ///   - protocolName: `aemp`, or `aemp-dataconn` when dialling a DataConn.
    ///   - nodeID: this node's ID.
    ///   - authAccept: the methods this node accepts (Perl `auth_accept`).
    ///   - framings: this node's framings (Perl `framing_format`).
    ///   - peerAddress: the peer's address as this side sees it (the dialled address when dialling).
    ///   - tls: whether this node has a TLS context and wants TLS (`tls=1.0`).
    ///   - dataConnID: the DataConn rendezvous ID (only when dialling `aemp-dataconn`).
    /// - Returns: the greeting; `mproto`/`gproto` are included unless the protocol is an upgrade.
    public static func local(
        protocolName: String = Greeting.aemp,
        nodeID: NodeID,
        authAccept: [AuthMethod],
        framings: [Framing],
        peerAddress: String?,
        tls: Bool = false,
        dataConnID: String? = nil
    ) -> Greeting {
        var items = [Item(key: "provider", value: defaultProvider)]
        if let peerAddress { items.append(Item(key: "peeraddr", value: peerAddress)) }
        if protocolName == aemp {
            items.append(Item(key: "mproto", value: "1"))
            items.append(Item(key: "gproto", value: "1"))
        }
        if tls { items.append(Item(key: "tls", value: "1.0")) }
        if let dataConnID { items.append(Item(key: "dataconn_id", value: dataConnID)) }
        return Greeting(
            protocolName: protocolName, nodeID: nodeID, authMethods: authAccept, framings: framings, items: items)
    }

    /// The value of the last item named `key` (Perl keeps the items in a hash, so the last wins);
    /// `nil` if there is no such item or it has no `=`.
    ///
    /// - Parameter key: the key, e.g. `"peeraddr"`.
    public subscript(key: String) -> String? {
        items.last(where: { $0.key == key })?.value ?? nil
    }

    /// ``version`` as Perl's numeric conversion sees it (`"1.0"` → 1, `"x"` → 0).
    public var versionNumber: Double { PerlNumber.parse(version) }

    /// Whether the sender asks for TLS: it sent `tls` whose integer part is 1 (spec §3.5).
    public var wantsTLS: Bool {
        guard let tls = self["tls"] else { return false }
        return PerlNumber.parse(tls).rounded(.towardZero) == 1
    }

    /// The line without its line ending.
    public var line: String {
        var fields = [
            protocolName, version, nodeID.rawValue,
            authMethods.map(\.rawValue).joined(separator: ","),
            framings.map(\.rawValue).joined(separator: ","),
        ]
        for item in items {
            fields.append(item.value.map { item.key + "=" + $0 } ?? item.key)
        }
        return fields.joined(separator: ";")
    }

    /// Parses a greeting line 1 (without its line ending).
    ///
    /// Only the syntax is checked here; the protocol and version checks of spec §3.3 are done by
    /// ``HandshakeStateMachine`` so that their messages match Perl's.
    ///
    /// - Parameter line: the line's bytes.
    /// - Throws: ``HandshakeError/Code/unparsableGreeting`` if the line is not UTF-8, has fewer than
    ///   five fields, or its node ID is invalid.
    public init(parsing line: some Collection<UInt8>) throws(HandshakeError) {
        let bytes = Array(line)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw HandshakeError(.unparsableGreeting, "unparsable greeting: not valid UTF-8")
        }
        // Split at the bytes `;`, `,` and `=`, as Perl does: Swift's `String` would also split at
        // U+037E (canonically equivalent to `;`) and not where a combining mark follows the `;`.
        // ASCII bytes never occur inside a multi-byte sequence, so every piece is valid UTF-8.
        let fields = bytes.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)
        guard fields.count >= 5 else {
            throw HandshakeError(.unparsableGreeting, "unparsable greeting: \(fields.count) fields, expected at least 5")
        }
        let nodeID: NodeID
        do {
            nodeID = try NodeID(validating: Self.text(fields[2]))
        } catch {
            throw HandshakeError(.unparsableGreeting, "unparsable greeting: \(error)")
        }
        self.init(
            protocolName: Self.text(fields[0]),
            version: Self.text(fields[1]),
            nodeID: nodeID,
            authMethods: Self.list(fields[3]).map(AuthMethod.init(rawValue:)),
            framings: Self.list(fields[4]).map(Framing.init(rawValue:)),
            items: fields.dropFirst(5).map { field in
                if let equals = field.firstIndex(of: UInt8(ascii: "=")) {
                    return Item(key: Self.text(field[..<equals]), value: Self.text(field[(equals + 1)...]))
                }
                return Item(key: Self.text(field), value: nil)
            }
        )
    }

    /// Parses a greeting line 1 given as text (without its line ending).
    ///
    /// - Parameter line: the line.
    /// - Throws: see ``init(parsing:)-(Collection<UInt8>)``.
    public init(parsing line: String) throws(HandshakeError) {
        try self.init(parsing: Array(line.utf8))
    }

    /// The first two fields (protocol and version) of a line, as Perl's `split` sees them, for the
    /// checks that run before the rest of the line is looked at.
    static func protocolAndVersion(of line: [UInt8]) -> (protocolName: String, version: String) {
        let fields = line.split(separator: UInt8(ascii: ";"), maxSplits: 2, omittingEmptySubsequences: false)
        let name = String(decoding: fields[0], as: UTF8.self)
        let version = fields.count > 1 ? String(decoding: fields[1], as: UTF8.self) : ""
        return (name, version)
    }

    private static func list(_ field: ArraySlice<UInt8>) -> [String] {
        field.isEmpty ? [] : field.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).map(text)
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}

/// Perl's conversion of a string to a number: an optional sign, digits, a fraction and an exponent
/// at the start of the string (after whitespace); anything else counts as 0.
enum PerlNumber {
    static func parse(_ text: String) -> Double {
        var prefix = ""
        var sawDigit = false
        var sawDot = false
        var sawExponent = false
        var bytes = text.utf8.drop(while: { $0 == 0x20 || (0x09...0x0D).contains($0) })[...]
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            prefix.append(Character(UnicodeScalar(sign)))
            bytes = bytes.dropFirst()
        }
        var valid = prefix
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                sawDigit = true
                prefix.append(Character(UnicodeScalar(byte)))
                valid = prefix
            case UInt8(ascii: ".") where !sawDot && !sawExponent:
                sawDot = true
                prefix.append(".")
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                guard sawDigit, !sawExponent else { return Double(valid) ?? 0 }
                sawExponent = true
                prefix.append("e")
            default:
                return sawDigit ? Double(valid) ?? 0 : 0
            }
            if prefix.utf8.count > 64 { break }
        }
        return sawDigit ? Double(valid) ?? 0 : 0
    }
}
