#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The address of a port: `<nodeid>#<portname>`, e.g. `echo#DIIBdJVBPb`.
///
/// Perl: port IDs are plain strings; `node_of` splits them. The ID is split at the **first** `#`
/// (spec §1.2), so the port name may itself contain `#`. The node port of a node (the one whose name
/// is the empty string, `echo#`) always exists and receives the kernel's messages.
///
/// On the wire a message carries only the ``name``; the node part is implied by the connection.
///
/// ```swift
/// let port = PortID("echo#DIIBdJVBPb")!
/// port.node      // echo
/// port.name      // DIIBdJVBPb
/// PortID.nodePort(of: port.node).description   // "echo#"
/// ```
public struct PortID: Hashable, Sendable, CustomStringConvertible {
    /// The node the port lives on. Perl: `node_of $port`.
    public let node: NodeID
    /// The port name, unique on its node; empty for the node port.
    public let name: String

    /// Creates a port ID from its parts.
    ///
    /// - Parameters:
    ///   - node: the node the port lives on.
    ///   - name: the port name (any string; empty for the node port).
    public init(node: NodeID, name: String) {
        self.node = node
        self.name = name
    }

    /// Parses `<nodeid>#<portname>`, splitting at the first `#`.
    ///
    /// - Parameter string: the port ID text.
    /// - Returns: `nil` if there is no `#` or the node part is not a valid ``NodeID``.
    public init?(_ string: String) {
        guard let hash = string.utf8.firstIndex(of: UInt8(ascii: "#")),
            let node = NodeID(String(string[..<hash]))
        else { return nil }
        self.node = node
        self.name = String(string[string.index(after: hash)...])
    }

    /// The node port (`<nodeid>#`) of `node`, which handles the kernel messages of spec §5.2.
    ///
    /// - Parameter node: the node.
    /// - Returns: the port ID with an empty name.
    public static func nodePort(of node: NodeID) -> PortID {
        PortID(node: node, name: "")
    }

    /// Whether this is a node port (its name is empty).
    public var isNodePort: Bool { name.isEmpty }

    /// The port ID text, `<nodeid>#<portname>`.
    public var description: String { node.rawValue + "#" + name }
}

/// Invents port names that are never reused, the way Perl does (spec §1.2).
///
/// Perl: `port` names a port `UNIQ . ID`, and `spawn` names the remote port `RUNIQ . ID`, where `ID`
/// is one per-process counter with Perl's string increment (`b`, `c`, …, `z`, `aa`, …). `UNIQ` is
/// empty when the node ID itself was randomised (``NodeID/expand(template:profile:hostname:runiq:)``),
/// otherwise nine characters made from the process and start time plus randomness. Because the
/// counter only moves forward, a generator never hands out the same name twice; the prefixes keep
/// the names of different processes and of spawned ports apart.
public struct PortNameGenerator: Sendable {
    /// The prefix of local port names (Perl `UNIQ`, possibly empty).
    public let localPrefix: String
    /// The prefix of names for ports spawned on other nodes (Perl `RUNIQ`).
    public let remotePrefix: String
    /// The last counter value handed out (Perl `$ID`, starts at `"a"`, pre-incremented).
    public private(set) var counter: String

    /// Creates a generator.
    ///
    /// - Parameters:
    ///   - localPrefix: Perl `UNIQ`: empty for a randomised node ID, else e.g. ``makeUniq()``.
    ///   - remotePrefix: Perl `RUNIQ` (``RemoteUnique/generate()``).
    ///   - counter: the counter's current value; the first name uses its successor.
    public init(localPrefix: String, remotePrefix: String, counter: String = "a") {
        self.localPrefix = localPrefix
        self.remotePrefix = remotePrefix
        self.counter = counter.isEmpty ? "a" : counter
    }

    /// Creates a generator for a node, choosing prefixes as Perl does.
    ///
    /// - Parameters:
    ///   - nodeIDRandomised: whether the node ID already contains RUNIQ (then `UNIQ` is empty).
    ///   - runiq: the node's RUNIQ.
    public init(nodeIDRandomised: Bool, runiq: String) {
        self.init(localPrefix: nodeIDRandomised ? "" : Self.makeUniq(), remotePrefix: runiq)
    }

    /// The next value of the shared counter (Perl: `++$ID`). Used for port names, and by Perl also
    /// for request IDs and DataConn IDs.
    ///
    /// - Returns: the new counter value.
    public mutating func nextCounter() -> String {
        counter = PerlStringIncrement.increment(counter)
        return counter
    }

    /// A fresh name for a local port. Perl: `port`.
    ///
    /// - Returns: `UNIQ` followed by the next counter value, e.g. `DIIBdJVBPb`.
    public mutating func nextLocalName() -> String {
        localPrefix + nextCounter()
    }

    /// A fresh name for a port this node asks another node to create. Perl: `spawn`.
    ///
    /// - Returns: `RUNIQ` followed by the next counter value, e.g. `SvGS2aDmjTd`.
    public mutating func nextRemoteName() -> String {
        remotePrefix + nextCounter()
    }

    /// Makes a Perl-style `UNIQ`: five base-62 digits from the process ID and the current time,
    /// then four random characters, the last character upper-cased (9 characters).
    ///
    /// - Parameters:
    ///   - processID: the process ID (`nil` = this process).
    ///   - time: seconds since the epoch (`nil` = now).
    /// - Returns: the prefix.
    public static func makeUniq(processID: Int? = nil, time: Int? = nil) -> String {
        let processID = processID ?? Int(getProcessID())
        let time = time ?? currentSeconds()
        let alphabet = RemoteUnique.alphabet
        var mixed = UInt64(truncatingIfNeeded: processID) &* 1_000_003 ^ UInt64(truncatingIfNeeded: time)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(9)
        for _ in 0..<5 {
            bytes.append(alphabet[Int(mixed % 62)])
            mixed /= 62
        }
        var random = SystemRandomNumberGenerator()
        for _ in 0..<4 { bytes.append(alphabet[Int(random.next(upperBound: UInt64(62)))]) }
        bytes[8] = RemoteUnique.upperCased(bytes[8])
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Perl's magic string increment (`$s++` on a string matching `/^[a-zA-Z]*[0-9]*$/`).
///
/// `a` → `b`, `z` → `aa`, `az` → `ba`, `Zz` → `AAa`, `a9` → `b0`. Other strings (which Perl would
/// treat as numbers) are incremented as if they matched, character by character from the right.
public enum PerlStringIncrement {
    /// Increments `value` the way Perl's `++` does on a string.
    ///
    /// - Parameter value: the current value (empty is treated as `"a"`'s predecessor, giving `"a"`).
    /// - Returns: the successor.
    public static func increment(_ value: String) -> String {
        var bytes = Array(value.utf8)
        if bytes.isEmpty { return "a" }
        var index = bytes.count - 1
        while index >= 0 {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "z"): bytes[index] = UInt8(ascii: "a")
            case UInt8(ascii: "Z"): bytes[index] = UInt8(ascii: "A")
            case UInt8(ascii: "9"): bytes[index] = UInt8(ascii: "0")
            default:
                bytes[index] = byte &+ 1
                return String(decoding: bytes, as: UTF8.self)
            }
            index -= 1
        }
        // Carry out of the leftmost character: prepend the "one" of its class.
        let first = bytes[0]
        let one: UInt8 =
            first == UInt8(ascii: "a") ? UInt8(ascii: "a") : first == UInt8(ascii: "A") ? UInt8(ascii: "A") : UInt8(ascii: "1")
        bytes.insert(one, at: 0)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The current process ID (Perl `$$`).
func getProcessID() -> Int32 { getpid() }

/// Seconds since the epoch (Perl `time`).
func currentSeconds() -> Int { Int(time(nil)) }
