/// Why the rc file or a profile lookup failed.
///
/// Perl: `AnyEvent::MP::Config` croaks when it cannot write the file and silently starts from an
/// empty configuration when it cannot read or parse it; the Swift port reports both, naming the file
/// and the reason, so a typo in a hand-edited file is never mistaken for "no configuration".
public struct ConfigFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure; new kinds may be added.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Kind: String, Sendable, Hashable {
            case unreadable, malformed, unwritable, parentCycle, invalidArguments
        }

        private let kind: Kind

        /// The file exists but cannot be opened or read (permissions, a directory, too large).
        public static var unreadable: Self { Self(kind: .unreadable) }
        /// The file is not a JSON object of the expected layout.
        public static var malformed: Self { Self(kind: .malformed) }
        /// The file or its directory cannot be written.
        public static var unwritable: Self { Self(kind: .unwritable) }
        /// A profile's `parent` chain leads back to itself.
        public static var parentCycle: Self { Self(kind: .parentCycle) }
        /// `configure` arguments of the wrong shape (a key that is not a string, `AEMP_CONFIG` not an object, ...).
        public static var invalidArguments: Self { Self(kind: .invalidArguments) }

        /// The code's name, e.g. `malformed`.
        public var description: String { kind.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// The file concerned, if any.
    public var path: String?
    /// What went wrong, e.g. `expected a JSON object at the top level`.
    public var reason: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: the kind of failure.
    ///   - path: the file concerned.
    ///   - reason: the explanation.
    public init(_ code: Code, path: String? = nil, reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    /// `<path>: <reason>`, or just the reason when no file is concerned.
    public var description: String {
        if let path { return "\(path): \(reason)" }
        return reason
    }
}
