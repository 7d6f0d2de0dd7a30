#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The identity of a node in an AEMP network, e.g. `echo`, `client-json` or `anon/XLIBBPuyjJ`.
///
/// Perl: `$NODE` / `NODE`. The protocol treats a node ID as an opaque, non-empty string with only
/// two restrictions (spec §1.1): it must not contain `#` (port IDs are split at the first `#`) and it
/// must not contain `;` (it travels as a `;`-separated greeting field without escaping). This type
/// additionally refuses CR, LF and NUL, which would break the line-based handshake, and IDs longer
/// than ``maximumLength`` bytes, which could never fit into a handshake line.
///
/// ```swift
/// let id = try NodeID(validating: "echo")
/// let anonymous = NodeID.anonymous()          // "anon/" followed by 10 random characters
/// ```
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The node ID as it appears on the wire.
    public let rawValue: String

    /// The longest accepted node ID in UTF-8 bytes (a greeting line must fit into 4096 bytes).
    public static let maximumLength = 1024

    /// Creates a node ID, or returns `nil` if `rawValue` is not a valid node ID (see ``validate(_:)``).
    ///
    /// - Parameter rawValue: the node ID text, e.g. `"echo"`.
    public init?(_ rawValue: String) {
        guard Self.validate(rawValue) == nil else { return nil }
        self.rawValue = rawValue
    }

    /// Creates a node ID, throwing a descriptive error if `rawValue` is not a valid node ID.
    ///
    /// - Parameter rawValue: the node ID text.
    /// - Throws: ``NodeIDError`` naming the problem.
    public init(validating rawValue: String) throws(NodeIDError) {
        if let error = Self.validate(rawValue) { throw error }
        self.rawValue = rawValue
    }

    /// Checks a candidate node ID.
    ///
    /// - Parameter candidate: the text to check.
    /// - Returns: `nil` if valid, else the reason it is not.
    public static func validate(_ candidate: String) -> NodeIDError? {
        if candidate.isEmpty { return NodeIDError(candidate: candidate, reason: "node ID is empty") }
        if candidate.utf8.count > maximumLength {
            return NodeIDError(candidate: candidate, reason: "node ID is longer than \(maximumLength) bytes")
        }
        for byte in candidate.utf8 {
            switch byte {
            case UInt8(ascii: "#"):
                return NodeIDError(candidate: candidate, reason: "node ID contains '#'")
            case UInt8(ascii: ";"):
                return NodeIDError(candidate: candidate, reason: "node ID contains ';'")
            case 0x0A, 0x0D, 0x00:
                return NodeIDError(candidate: candidate, reason: "node ID contains a control character")
            default:
                continue
            }
        }
        return nil
    }

    /// The node ID text.
    public var description: String { rawValue }

    /// Orders node IDs by their UTF-8 bytes.
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }

    /// Node IDs are equal when their UTF-8 bytes are, as Perl compares them (and as ``<(_:_:)``
    /// orders them). `String` equality would also equate canonically equivalent spellings, so a
    /// peer calling itself `\u{212A}` (KELVIN SIGN) would count as the node `K`.
    public static func == (lhs: NodeID, rhs: NodeID) -> Bool {
        let left = lhs.rawValue.utf8
        let right = rhs.rawValue.utf8
        guard left.count == right.count else { return false }
        // Native strings compare as two byte buffers (memcmp speed: this runs for every message
        // sent); bridged or lazily stored ones byte by byte.
        let compared = left.withContiguousStorageIfAvailable { a in
            right.withContiguousStorageIfAvailable { b in a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
        }
        return (compared ?? nil) ?? left.elementsEqual(right)
    }

    /// Hashes the UTF-8 bytes, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        var text = rawValue
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// Whether this is an anonymous node ID (`anon/...`): a client node with a fresh ID per run.
    public var isAnonymous: Bool { rawValue.utf8.starts(with: "anon/".utf8) }

    /// A fresh anonymous node ID: `anon/` followed by a remote-unique string (``RemoteUnique``).
    ///
    /// Perl: `configure` without `nodeid` forms `"<profile>/"` and appends RUNIQ; the Swift node uses
    /// the fixed profile name `anon` for anonymous nodes.
    ///
    /// - Parameter runiq: the unique suffix; a fresh ``RemoteUnique/generate(using:)`` value by default.
    /// - Returns: the anonymous node ID, e.g. `anon/XLIBBPuyjJ`.
    public static func anonymous(runiq: String = RemoteUnique.generate()) -> NodeID {
        NodeID(unchecked: "anon/" + runiq)
    }

    /// Expands a configured node ID template the way Perl's `configure` does (spec §1.1).
    ///
    /// `%n` is replaced by `hostname`; every `%u` and a trailing `/` are replaced by (respectively
    /// followed by) `runiq`. A `nil` template means `"<profile>/"`.
    ///
    /// - Parameters:
    ///   - template: the configured `nodeid`, or `nil`.
    ///   - profile: the profile name (Perl defaults it to the host name, ``hostName()``).
    ///   - hostname: the value for `%n` (``hostName()``).
    ///   - runiq: the remote-unique string used for `%u` and a trailing `/`.
    /// - Returns: the node ID and whether it was randomised (then port names get no UNIQ prefix).
    /// - Throws: ``NodeIDError`` if the expansion is not a valid node ID.
    public static func expand(
        template: String?,
        profile: String,
        hostname: String,
        runiq: String = RemoteUnique.generate()
    ) throws(NodeIDError) -> (nodeID: NodeID, randomised: Bool) {
        var text = template ?? (profile + "/")
        text = text.replacingAll("%n", with: hostname)
        var randomised = false
        if text.hasSuffix("/") {
            text += runiq
            randomised = true
        }
        if text.contains("%u") {
            text = text.replacingAll("%u", with: runiq)
            randomised = true
        }
        return (try NodeID(validating: text), randomised)
    }

    /// This machine's node name, the default profile name and the value of `%n` (Perl: `uname -n`,
    /// `POSIX::uname`).
    ///
    /// - Returns: the host name, or `"localhost"` if it cannot be determined.
    public static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "localhost" : name
    }

    init(unchecked rawValue: String) {
        self.rawValue = rawValue
    }
}

/// Why a string is not a valid ``NodeID``.
public struct NodeIDError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The rejected text.
    public var candidate: String
    /// A short explanation.
    public var reason: String

    /// A readable description: the reason and the rejected text.
    public var description: String { "invalid node ID '\(candidate)': \(reason)" }
}

/// The remote-unique random string Perl calls RUNIQ (spec §1.1).
///
/// Ten characters from `[0-9A-Za-z]` whose last character is upper-cased. It makes anonymous node IDs
/// unique and prefixes port names that a node invents for ports on other nodes (``PortNameGenerator``).
public enum RemoteUnique {
    /// The 62 characters RUNIQ and UNIQ are made of.
    static let alphabet: [UInt8] = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".utf8)

    /// Generates a fresh RUNIQ.
    ///
    /// Perl: `$RUNIQ`. Perl draws from its non-cryptographic `rand`; this uses the system CSPRNG.
    ///
    /// - Parameter generator: the random source.
    /// - Returns: ten characters, the last one upper-cased.
    public static func generate<G: RandomNumberGenerator>(using generator: inout G) -> String {
        var bytes = (0..<10).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] }
        bytes[9] = upperCased(bytes[9])
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Generates a fresh RUNIQ with the system random number generator.
    ///
    /// - Returns: ten characters, the last one upper-cased.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return generate(using: &generator)
    }

    static func upperCased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) ? byte - 32 : byte
    }
}

extension String {
    /// Replaces every occurrence of `target` (non-empty) with `replacement`, without Foundation.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty, contains(target) else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}
