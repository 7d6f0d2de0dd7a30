import Foundation

/// Locates the project's shared reference material (`../shared` beside the checkout).
///
/// `AEMP_SHARED` overrides the location; otherwise the folder is found relative to this source file.
public enum SharedFiles {
    /// The `shared/` folder: vectors, wire spec and captures.
    public static var root: URL {
        if let override = ProcessInfo.processInfo.environment["AEMP_SHARED"], !override.isEmpty {
            return URL(fileURLWithPath: override, isDirectory: true)
        }
        // <repo>/Tests/AEMPTestSupport/SharedFiles.swift -> <repo>/../shared
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared", isDirectory: true)
    }

    /// Reads a file below ``root``, e.g. `vectors/socket-ip.json`.
    public static func data(_ relativePath: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(relativePath))
    }

    /// Reads and parses a JSON file below ``root`` with Foundation's `JSONSerialization`.
    public static func json(_ relativePath: String) throws -> Any {
        try JSONSerialization.jsonObject(with: data(relativePath), options: [.fragmentsAllowed])
    }
}
