import AEMPCodecs

/// An ordered set of configuration keys and their values: the global settings of an rc file, one
/// profile, a list of `configure` arguments, or the merged result of a profile lookup.
///
/// Perl: the hashes of `AnyEvent::MP::Config` (`%CFG`, `$CFG{profile}{$name}`) and the `%kv` of
/// `configure`. Keys keep the order in which they were first set, so a saved rc file keeps the
/// order its author wrote; setting an existing key replaces its value in place.
///
/// ```swift
/// var settings = ProfileSettings()
/// settings["binds"] = ["127.0.0.1:4040"]
/// settings["secret"] = "s3cret"
/// let configuration = try NodeConfiguration(perlArguments: settings.pairs)
/// ```
public struct ProfileSettings: Sendable, Hashable, CustomStringConvertible {
    /// One key and its value.
    public struct Entry: Sendable, Hashable {
        /// The key, e.g. `seeds`.
        public var key: String
        /// Its value (JSON-shaped: text, numbers, booleans, arrays, maps, null).
        public var value: Value

        /// Creates an entry.
        ///
        /// - Parameters:
        ///   - key: the key.
        ///   - value: its value.
        public init(key: String, value: Value) {
            self.key = key
            self.value = value
        }
    }

    /// The entries in order.
    public private(set) var entries: [Entry]

    /// Creates empty settings.
    public init() {
        entries = []
    }

    /// Creates settings from key/value pairs; a later pair replaces an earlier one with the same key.
    ///
    /// - Parameter pairs: the pairs in order.
    public init(_ pairs: [(key: String, value: Value)]) {
        entries = []
        for (key, value) in pairs { self[key] = value }
    }

    /// The entries as the tuples ``NodeConfiguration/init(perlArguments:)`` takes.
    public var pairs: [(key: String, value: Value)] {
        entries.map { ($0.key, $0.value) }
    }

    /// The keys in order.
    public var keys: [String] { entries.map(\.key) }

    /// Whether there is no key at all.
    public var isEmpty: Bool { entries.isEmpty }

    /// The value of `key`, or `nil` if it is not set; assigning `nil` removes the key (Perl: `delete`).
    public subscript(key: String) -> Value? {
        get { entries.first { $0.key == key }?.value }
        set {
            if let index = entries.firstIndex(where: { $0.key == key }) {
                if let newValue { entries[index].value = newValue } else { entries.remove(at: index) }
            } else if let newValue {
                entries.append(Entry(key: key, value: newValue))
            }
        }
    }

    /// Whether `key` is set (to any value, `null` included; Perl: `exists`).
    ///
    /// - Parameter key: the key.
    /// - Returns: `true` if present.
    public func contains(_ key: String) -> Bool {
        entries.contains { $0.key == key }
    }

    /// Removes `key` and returns its old value (Perl: `delete $kv{$key}`).
    ///
    /// - Parameter key: the key.
    /// - Returns: the removed value, or `nil`.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> Value? {
        guard let index = entries.firstIndex(where: { $0.key == key }) else { return nil }
        return entries.remove(at: index).value
    }

    /// These settings with every key of `other` set on top (Perl: `(%self, %other)`).
    ///
    /// - Parameter other: the settings that win.
    /// - Returns: the merged settings.
    public func merging(_ other: ProfileSettings) -> ProfileSettings {
        var result = self
        for entry in other.entries { result[entry.key] = entry.value }
        return result
    }

    /// The string value of `key` (text or byte string), or `nil`.
    ///
    /// - Parameter key: the key.
    /// - Returns: the string.
    public func string(_ key: String) -> String? {
        self[key]?.stringValue
    }

    /// Whether `key` is set to a true value in Perl's sense: not missing, `null`, `false`, `0`, `""` or `"0"`.
    ///
    /// - Parameter key: the key.
    /// - Returns: the truth value.
    public func isTrue(_ key: String) -> Bool {
        guard let value = self[key] else { return false }
        return value.perlTruth
    }

    /// The settings as a JSON object, e.g. `{"binds": ["*:4040"]}` (for messages and tests).
    public var description: String {
        (try? ConfigFile.renderJSON(.map(entries.map { (.text($0.key), $0.value) }), pretty: false)) ?? "{…}"
    }
}

extension Value {
    /// Perl truth: `undef`, `""`, `"0"`, `0` and `false` are false, everything else is true.
    var perlTruth: Bool {
        switch self {
        case .null, .undefined: false
        case .bool(let flag): flag
        case .int(let number): number != 0
        case .uint(let number): number != 0
        case .float(let number): number != 0
        case .text, .bytes:
            stringValue.map { !($0.isEmpty || $0 == "0") } ?? true
        default: true
        }
    }
}
