import AEMPCodecs
import NIOCore

/// A configure argument that cannot be used.
public struct NodeConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The Perl key, e.g. `monitor_timeout`.
    public var key: String
    /// Why the value was refused.
    public var reason: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - key: the configure key.
    ///   - reason: the explanation.
    public init(key: String, reason: String) {
        self.key = key
        self.reason = reason
    }

    /// `<key>: <reason>`.
    public var description: String { "\(key): \(reason)" }
}

extension NodeConfiguration {
    /// The configure keys this type understands (spec §10). Perl also knows `profile`, `parent`,
    /// `norc`, `force` and `eval`, which concern profile lookup or the command line and are ignored here.
    public static let perlKeys: Set<String> = [
        "nodeid", "binds", "seeds", "secret", "cert", "auth_offer", "auth_accept", "framing_format",
        "monitor_timeout", "connect_interval", "nodelay", "autocork", "secure", "services", "liveness_timeout",
        "shutdown_timeout", "busy_poll",
    ]

    /// Creates a configuration from Perl `configure` arguments / profile keys, starting from the
    /// defaults. Unknown keys are ignored, as Perl does.
    ///
    /// Perl: `configure nodeid => "echo", binds => ["*:4040"], ...` and the JSON profile of
    /// `~/.perl-anyevent-mp`. Values may be JSON-typed (`["*:4040"]`, `30`, `true`) or strings as
    /// `aemp run key value` passes them (`"30"`, `"1"`, a single address, a comma-separated list).
    /// Framings only Perl speaks (`storable`) are dropped from `framing_format`.
    ///
    /// - Parameter arguments: key/value pairs; a later pair overrides an earlier one.
    /// - Throws: ``NodeConfigurationError`` for a value of the wrong shape.
    public init(perlArguments arguments: [(key: String, value: Value)]) throws(NodeConfigurationError) {
        self.init()
        for (key, value) in arguments {
            try apply(key: key, value: value)
        }
    }

    /// Sets one Perl configure key.
    ///
    /// - Parameters:
    ///   - key: the Perl key, e.g. `"seeds"`.
    ///   - value: its value.
    /// - Throws: ``NodeConfigurationError`` for a value of the wrong shape.
    public mutating func apply(key: String, value: Value) throws(NodeConfigurationError) {
        switch key {
        case "nodeid": nodeID = try Self.optionalString(key, value)
        case "binds": binds = try Self.strings(key, value, splitCommas: false)
        case "seeds": seeds = try Self.strings(key, value, splitCommas: false)
        case "services": services = try Self.strings(key, value, splitCommas: false)
        case "secret": secret = try Self.optionalString(key, value)
        case "cert": certificate = try Self.optionalString(key, value)
        case "auth_offer": authOffer = try Self.strings(key, value, splitCommas: true).map(AuthMethod.init(rawValue:))
        case "auth_accept": authAccept = try Self.strings(key, value, splitCommas: true).map(AuthMethod.init(rawValue:))
        case "framing_format":
            let framings = try Self.strings(key, value, splitCommas: true).map(Framing.init(rawValue:)).filter(\.isSupported)
            guard !framings.isEmpty else { throw NodeConfigurationError(key: key, reason: "no supported framing (cbor, json)") }
            framingFormats = framings
        case "monitor_timeout": monitorTimeout = try Self.duration(key, value)
        case "connect_interval": connectInterval = try Self.duration(key, value)
        case "liveness_timeout": livenessTimeout = try Self.duration(key, value, zeroAllowed: true)
        case "shutdown_timeout": shutdownTimeout = try Self.duration(key, value, zeroAllowed: true)
        case "busy_poll": busyPoll = try Self.duration(key, value, zeroAllowed: true)
        case "nodelay": nodelay = try Self.bool(key, value)
        case "autocork": autocork = try Self.bool(key, value)
        case "secure": secure = try Self.bool(key, value)
        default: break
        }
    }

    // MARK: Value shapes

    private static func text(_ value: Value) -> String? {
        switch value {
        case .text(let text): text
        case .bytes(let bytes): String(decoding: bytes.readableBytesView, as: UTF8.self)
        default: nil
        }
    }

    private static func optionalString(_ key: String, _ value: Value) throws(NodeConfigurationError) -> String? {
        if case .null = value { return nil }
        guard let text = text(value) else { throw NodeConfigurationError(key: key, reason: "expected a string") }
        return text
    }

    private static func strings(_ key: String, _ value: Value, splitCommas: Bool) throws(NodeConfigurationError) -> [String] {
        switch value {
        case .null:
            return []
        case .array(let elements):
            var result: [String] = []
            for element in elements {
                guard let text = text(element) else {
                    throw NodeConfigurationError(key: key, reason: "expected an array of strings")
                }
                result.append(text)
            }
            return result
        default:
            guard let text = text(value) else {
                throw NodeConfigurationError(key: key, reason: "expected a string or an array of strings")
            }
            guard splitCommas else { return text.isEmpty ? [] : [text] }
            return text.split(separator: ",").map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
        }
    }

    private static func number(_ value: Value) -> Double? {
        switch value {
        case .int(let number): Double(number)
        case .uint(let number): Double(number)
        case .float(let number): number
        default: text(value).flatMap { Double($0.trimmingSpaces()) }
        }
    }

    private static func duration(
        _ key: String, _ value: Value, zeroAllowed: Bool = false
    ) throws(NodeConfigurationError) -> Duration {
        guard let seconds = number(value), seconds.isFinite, seconds > 0 || (zeroAllowed && seconds == 0), seconds < 1e9
        else {
            let expected = zeroAllowed ? "a number of seconds, 0 or more" : "a positive number of seconds"
            throw NodeConfigurationError(key: key, reason: "expected \(expected)")
        }
        return .microseconds(Int64((seconds * 1_000_000).rounded()))
    }

    /// Perl truth: `undef`, `""`, `"0"` and 0 are false, everything else is true.
    private static func bool(_ key: String, _ value: Value) throws(NodeConfigurationError) -> Bool {
        switch value {
        case .null: return false
        case .bool(let flag): return flag
        case .int, .uint, .float: return number(value) != 0
        default:
            guard let text = text(value) else { throw NodeConfigurationError(key: key, reason: "expected a boolean") }
            return !(text.isEmpty || text == "0")
        }
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[start...end])
    }
}
