import Foundation

/// The reference data the tests replay (Perl vectors, the Handle oracle, captured Perl connections),
/// shipped in the repository under `Tests/Fixtures/` (see its README).
///
/// `AEMP_FIXTURES=<dir>` points every suite at another folder of the same layout, e.g. a regenerated
/// vector set or a new oracle file, without a code change.
///
/// Every loader throws a ``FixtureError`` that names the file when it cannot be read or parsed, so a
/// missing or malformed fixture fails the tests that need it with one clear message instead of
/// running them on empty data. The `in:` parameters exist for the loaders' own tests.
public enum Fixtures {
    /// The environment variable that overrides ``root``.
    public static let overrideVariable = "AEMP_FIXTURES"

    /// The fixture folder: `$AEMP_FIXTURES`, else `Tests/Fixtures` of this checkout.
    public static var root: URL {
        if let override = ProcessInfo.processInfo.environment[overrideVariable], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        // <repo>/Tests/AEMPTestSupport/Fixtures.swift -> <repo>/Tests/Fixtures
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures", isDirectory: true)
    }

    /// The file at `relativePath` below `root` (e.g. `vectors/socket-ip.json`).
    public static func url(_ relativePath: String, in root: URL = Fixtures.root) -> URL {
        root.appendingPathComponent(relativePath)
    }

    /// A ``FixtureError`` for the file at `relativePath` below ``root``, for loaders that check what
    /// they parsed.
    public static func error(_ relativePath: String, _ problem: String) -> FixtureError {
        FixtureError(path: url(relativePath).path, problem: problem)
    }

    /// The bytes of a fixture file.
    public static func data(_ relativePath: String, in root: URL = Fixtures.root) throws(FixtureError) -> Data {
        let url = url(relativePath, in: root)
        do {
            return try Data(contentsOf: url)
        } catch {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory)
            let problem = !exists ? "is missing" : isDirectory.boolValue ? "is a directory" : "cannot be read"
            throw FixtureError(path: url.path, problem: problem)
        }
    }

    /// A fixture file parsed as JSON (Foundation's `JSONSerialization`).
    public static func json(_ relativePath: String, in root: URL = Fixtures.root) throws(FixtureError) -> Any {
        let bytes = try data(relativePath, in: root)
        do {
            return try JSONSerialization.jsonObject(with: bytes, options: [.fragmentsAllowed])
        } catch {
            throw FixtureError(path: url(relativePath, in: root).path, problem: "is not valid JSON")
        }
    }

    /// A fixture file whose top level must be a JSON object.
    public static func jsonObject(
        _ relativePath: String, in root: URL = Fixtures.root
    ) throws(FixtureError) -> [String: Any] {
        guard let object = try json(relativePath, in: root) as? [String: Any] else {
            throw FixtureError(path: url(relativePath, in: root).path, problem: "is not a JSON object")
        }
        return object
    }

    /// A fixture file whose top level must be a non-empty JSON array of objects.
    public static func jsonObjects(
        _ relativePath: String, in root: URL = Fixtures.root
    ) throws(FixtureError) -> [[String: Any]] {
        guard let list = try json(relativePath, in: root) as? [[String: Any]] else {
            throw FixtureError(path: url(relativePath, in: root).path, problem: "is not a JSON array of objects")
        }
        guard !list.isEmpty else {
            throw FixtureError(path: url(relativePath, in: root).path, problem: "is an empty array")
        }
        return list
    }

    /// The non-empty array of objects under `key` of a fixture whose top level is a JSON object (e.g.
    /// the `cases` of a Perl vector file, the `scenarios` of the Handle oracle).
    public static func list(
        _ relativePath: String, key: String, in root: URL = Fixtures.root
    ) throws(FixtureError) -> [[String: Any]] {
        guard let list = try jsonObject(relativePath, in: root)[key] as? [[String: Any]] else {
            throw FixtureError(
                path: url(relativePath, in: root).path, problem: "has no array of objects under \"\(key)\"")
        }
        guard !list.isEmpty else {
            throw FixtureError(path: url(relativePath, in: root).path, problem: "has an empty \"\(key)\" array")
        }
        return list
    }

    /// The `cases` of a Perl vector file (`vectors/*.json`, see `vectors/README.md`) whose `kind` is
    /// `kind`; throws when the file has none, so a replay never passes on zero cases.
    public static func cases(
        _ relativePath: String, kind: String, in root: URL = Fixtures.root
    ) throws(FixtureError) -> [[String: Any]] {
        let matching = try list(relativePath, key: "cases", in: root).filter { $0["kind"] as? String == kind }
        guard !matching.isEmpty else {
            throw FixtureError(path: url(relativePath, in: root).path, problem: "has no cases of kind \"\(kind)\"")
        }
        return matching
    }
}

/// A fixture file that could not be found, read or parsed; the message names the file.
public struct FixtureError: Error, Equatable, CustomStringConvertible {
    /// The absolute path of the file.
    public var path: String
    /// What is wrong with it (`is missing`, `is not valid JSON`, ...).
    public var problem: String

    /// Creates an error for the file at `path`.
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    /// `fixture <path> <problem>`, and where fixtures come from.
    public var description: String {
        "fixture \(path) \(problem) (fixtures come from Tests/Fixtures of the repository, or $\(Fixtures.overrideVariable))"
    }
}

extension Result where Failure == FixtureError {
    /// The loaded value, or `fallback` when loading failed. For test argument lists only: the
    /// suite's own loading test reports the ``FixtureError``.
    public func or(_ fallback: Success) -> Success {
        (try? get()) ?? fallback
    }
}
