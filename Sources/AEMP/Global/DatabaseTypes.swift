import AEMPCodecs

/// One family of the distributed database: key → value. Perl: `$LOCAL_DB{$family}`, `\%familyhash`.
public typealias DatabaseFamily = [String: Value]

/// A whole database: family name → family. Perl: `%LOCAL_DB`, `%GLOBAL_DB`.
public typealias DatabaseContents = [String: DatabaseFamily]

/// Names of the database families the network itself uses (spec §6.2).
public enum DatabaseFamilyName {
    /// `'l`: node ID → listener list (array of `host:port` strings).
    public static let listeners = "'l"
    /// `'g`: global node ID → null.
    public static let globalNodes = "'g"
}

/// Identifies one asynchronous database query (`dbFamily`, `dbKeys`, `dbValues`).
///
/// Perl: the `$GLOBAL_RES_ID` string counter (`"b"`, `"c"`, …) that travels as the request ID of
/// `g_db_family` and friends and comes back in `g_reply`.
public struct DatabaseRequestID: Hashable, Sendable, CustomStringConvertible {
    /// The request ID as it appears on the wire.
    public let rawValue: String

    /// Wraps a wire request ID.
    ///
    /// - Parameter rawValue: the ID text.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The ID text.
    public var description: String { rawValue }
}

/// Identifies one local database monitor created by ``DatabaseClient/dbMonitor(_:)``.
///
/// Perl: the guard returned by `db_mon`; here the Node keeps the user's callback under this ID and
/// calls ``DatabaseClient/dbMonitorCancel(_:)`` when the guard is dropped.
public struct DatabaseMonitorID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// A number unique within one ``DatabaseClient``.
    public let rawValue: Int

    /// Wraps a monitor number.
    ///
    /// - Parameter rawValue: the number.
    public init(_ rawValue: Int) { self.rawValue = rawValue }

    /// Orders monitors by creation.
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    /// The number as text.
    public var description: String { "mon\(rawValue)" }
}

/// What a database query returned. Perl: the argument of the `db_family` / `db_keys` / `db_values`
/// callback.
public enum DatabaseQueryResult: Hashable, Sendable {
    /// The whole family (`db_family`), empty if the family does not exist.
    case family(DatabaseFamily)
    /// The keys of the family (`db_keys`), in the master's order.
    case keys([String])
    /// The values of the family (`db_values`), in the master's order.
    case values([Value])
}

/// One change notification for a database monitor.
///
/// Perl: the arguments of the `db_mon` callback, `$cb->(\%family, \@added, \@changed, \@deleted)`.
public struct DatabaseChange: Hashable, Sendable {
    /// The monitored family.
    public var familyName: String
    /// The node's current copy of the whole family, after the change.
    public var family: DatabaseFamily
    /// Keys that were not present before.
    public var added: [String]
    /// Keys that were present and were set again (their value may be unchanged).
    public var changed: [String]
    /// Keys that were deleted.
    public var deleted: [String]

    /// Creates a change notification.
    ///
    /// - Parameters:
    ///   - familyName: the family.
    ///   - family: the family's contents after the change.
    ///   - added: new keys.
    ///   - changed: replaced keys.
    ///   - deleted: removed keys.
    public init(familyName: String, family: DatabaseFamily, added: [String], changed: [String], deleted: [String]) {
        self.familyName = familyName
        self.family = family
        self.added = added
        self.changed = changed
        self.deleted = deleted
    }
}

/// Something the Node must do after a ``DatabaseClient`` call, in the order returned.
///
/// The database logic is sans-IO: it never sends or connects itself. Every entry point returns the
/// actions the Node applies on its event loop.
public enum DatabaseAction: Hashable, Sendable {
    /// Send `message` (a complete AEMP message: `["", tag, args…]`, the node port name first) to the
    /// node `to`, connecting first if needed (Perl `snd`, which queues until connected).
    case send(to: NodeID, message: [Value])
    /// Keep a connection to this node, reconnecting with back-off while it is down (Perl:
    /// `keepalive_add`; global nodes keep connections to every node in `'g`).
    case keepConnected(NodeID)
    /// Stop keeping a connection to this node (Perl: `keepalive_del`).
    case stopKeepingConnected(NodeID)
    /// The addresses of `node` as found by the master (Perl: `g_found` → `connect_to`), or `nil`
    /// if the master does not know the node (fail the connect with `no known address`).
    case lookupResult(node: NodeID, addresses: [String]?)
    /// The answer to a ``DatabaseClient/dbFamily(_:)`` / `dbKeys` / `dbValues` query.
    case queryResult(DatabaseRequestID, DatabaseQueryResult)
    /// Call the user callback of a monitor (Perl: the `db_mon` callback).
    case monitorEvent(DatabaseMonitorID, DatabaseChange)
    /// The node now uses a different master (`nil`: none, searching). Informational (logging).
    case masterChanged(NodeID?)
    /// This node became a global node. Informational (logging).
    case becameGlobal
    /// A `g_*` message could not be understood; it was ignored. Informational (Perl logs
    /// `error processing node message from <node>`).
    case malformed(from: NodeID, tag: String, reason: String)
}

/// Encoding and decoding of database structures on the wire.
enum DatabaseCoding {
    /// A node-port message: `["", tag, arguments…]`.
    static func message(_ tag: String, _ arguments: Value...) -> [Value] {
        var message: [Value] = [.text(""), .text(tag)]
        message.append(contentsOf: arguments)
        return message
    }

    static func encode(_ family: DatabaseFamily) -> Value {
        .map(family.map { (key: Value.text($0.key), value: $0.value) })
    }

    static func encode(_ contents: DatabaseContents) -> Value {
        .map(contents.map { (key: Value.text($0.key), value: encode($0.value)) })
    }

    static func encode(_ pairs: [(key: String, value: Value)]) -> Value {
        .map(pairs.map { (key: Value.text($0.key), value: $0.value) })
    }

    static func encode(strings: [String]) -> Value {
        .array(strings.map { .text($0) })
    }

    /// A family map (string keys). `null` reads as an empty family.
    static func decodeFamily(_ value: Value) -> DatabaseFamily? {
        guard let pairs = decodePairs(value) else { return nil }
        var family = DatabaseFamily(minimumCapacity: pairs.count)
        for pair in pairs { family[pair.key] = pair.value }
        return family
    }

    /// A map with string keys as pairs in wire order (repeated keys: later wins when stored).
    /// `null` reads as no pairs.
    static func decodePairs(_ value: Value) -> [(key: String, value: Value)]? {
        if value.isNull { return [] }
        guard let pairs = value.mapValue else { return nil }
        var result: [(key: String, value: Value)] = []
        result.reserveCapacity(pairs.count)
        for pair in pairs {
            guard let key = pair.key.stringValue else { return nil }
            result.append((key, pair.value))
        }
        return result
    }

    /// A whole database `{family: {key: value}}`.
    static func decodeContents(_ value: Value) -> DatabaseContents? {
        guard let families = decodePairs(value) else { return nil }
        var contents = DatabaseContents(minimumCapacity: families.count)
        for family in families {
            guard let decoded = decodeFamily(family.value) else { return nil }
            contents[family.key, default: [:]].merge(decoded) { $1 }
        }
        return contents
    }

    /// An array of strings; `null` reads as empty.
    static func decodeStrings(_ value: Value) -> [String]? {
        if value.isNull { return [] }
        guard let elements = value.arrayValue else { return nil }
        var result: [String] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard let string = element.stringValue else { return nil }
            result.append(string)
        }
        return result
    }
}

/// Perl-style equality of database values, used by `db_set` to skip unchanged values.
///
/// Perl (`sv_eq`) compares two plain scalars as strings (so `1` equals `"1"`, and `undef` equals only
/// `undef`), and two references by their JSON encoding. This comparison follows that: scalars
/// compare by their Perl string form, containers compare structurally with byte and text strings
/// alike (JSON cannot tell them apart) and map order ignored (where Perl would compare its hash
/// order, which for an unchanged hash is stable).
enum PerlValueEquality {
    static func equal(_ lhs: Value, _ rhs: Value) -> Bool {
        let lhsContainer = isContainer(lhs)
        let rhsContainer = isContainer(rhs)
        if !lhsContainer && !rhsContainer {
            if lhs.isNull || rhs.isNull { return lhs.isNull && rhs.isNull }
            if let a = scalarString(lhs), let b = scalarString(rhs) { return a == b }
            return lhs == rhs
        }
        return structurallyEqual(lhs, rhs)
    }

    private static func isContainer(_ value: Value) -> Bool {
        switch value {
        case .array, .map, .tagged: true
        default: false
        }
    }

    /// The string Perl would compare with `eq`; `nil` for values without an obvious one.
    private static func scalarString(_ value: Value) -> String? {
        switch value {
        case .text, .bytes: return value.stringValue
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .bool(let b): return b ? "1" : ""
        case .float(let d):
            if let i = Int64(exactly: d) { return String(i) }
            return String(d)
        default: return nil
        }
    }

    private static func structurallyEqual(_ lhs: Value, _ rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.text, .bytes), (.bytes, .text), (.bytes, .bytes):
            return lhs.stringValue == rhs.stringValue
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { structurallyEqual($0, $1) }
        case (.map(let a), .map(let b)):
            guard let left = DatabaseCoding.decodeFamily(lhs), let right = DatabaseCoding.decodeFamily(rhs),
                left.count == a.count, right.count == b.count, left.count == right.count
            else { return lhs == rhs }
            for (key, value) in left {
                guard let other = right[key], structurallyEqual(value, other) else { return false }
            }
            return true
        default:
            return lhs == rhs
        }
    }
}
