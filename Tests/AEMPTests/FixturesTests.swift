import AEMPTestSupport
import Foundation
import Testing

/// The fixture loaders (Tests/AEMPTestSupport/Fixtures.swift): every problem is one error naming the
/// file, and the repository reads its reference data from nowhere but `Tests/Fixtures`.
@Suite("Fixtures")
struct FixturesTests {
    /// A fresh folder with the given files (relative path → contents).
    func folder(_ files: [String: String]) throws -> URL {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("aemp-fixtures-\(UUID().uuidString)", isDirectory: true)
        for (path, contents) in files {
            let url = root.appendingPathComponent(path)
            try FileManager.default.createDirectory(
                at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(contents.utf8).write(to: url)
        }
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return root
    }

    /// The ``FixtureError`` that `body` throws, nil when it throws nothing (or another error).
    func failure(_ body: () throws -> Void) -> FixtureError? {
        do {
            try body()
            return nil
        } catch {
            return error as? FixtureError
        }
    }

    @Test("a missing file is named in the error")
    func missing() throws {
        let root = try folder([:])
        defer { try? FileManager.default.removeItem(at: root) }
        let error = try #require(failure { _ = try Fixtures.json("vectors/socket-ip.json", in: root) })
        #expect(error.path == root.appendingPathComponent("vectors/socket-ip.json").path)
        #expect(error.problem == "is missing")
        #expect(error.description.hasPrefix("fixture \(error.path) is missing"))
        #expect(error.description.contains("AEMP_FIXTURES"))
    }

    @Test("a directory where a file belongs")
    func directory() throws {
        let root = try folder(["vectors/socket-ip.json/x": ""])
        defer { try? FileManager.default.removeItem(at: root) }
        let error = try #require(failure { _ = try Fixtures.data("vectors/socket-ip.json", in: root) })
        #expect(error.problem == "is a directory")
    }

    @Test(
        "malformed files: each problem named",
        arguments: [
            ("{\"cases\": [", "is not valid JSON"),
            ("[1, 2]", "is not a JSON object"),
            ("{\"count\": 1}", "has no array of objects under \"cases\""),
            ("{\"cases\": [1]}", "has no array of objects under \"cases\""),
            ("{\"cases\": []}", "has an empty \"cases\" array"),
            ("{\"cases\": [{\"kind\": \"decode\"}]}", "has no cases of kind \"encode\""),
        ])
    func malformed(contents: String, problem: String) throws {
        let root = try folder(["vectors/cbor-perl.json": contents])
        defer { try? FileManager.default.removeItem(at: root) }
        let error = try #require(failure { _ = try Fixtures.cases("vectors/cbor-perl.json", kind: "encode", in: root) })
        #expect(error.problem == problem)
        #expect(error.path.hasSuffix("/vectors/cbor-perl.json"))
    }

    @Test("arrays of objects: empty and wrong shapes are refused")
    func arrays() throws {
        let root = try folder(["a.json": "[]", "b.json": "{\"x\": 1}", "c.json": "[{\"conn\": 1}]"])
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(failure { _ = try Fixtures.jsonObjects("a.json", in: root) }?.problem == "is an empty array")
        #expect(failure { _ = try Fixtures.jsonObjects("b.json", in: root) }?.problem == "is not a JSON array of objects")
        #expect(failure { _ = try Fixtures.jsonObjects("c.json", in: root) } == nil)
    }

    @Test("the shipped fixtures all load")
    func shippedFixturesLoad() throws {
        for file in ["cbor-perl", "json-perl", "netstring", "packstring", "socket-hostport", "socket-ip"] {
            #expect(try Fixtures.list("vectors/\(file).json", key: "cases").count > 0)
        }
        #expect(try Fixtures.list("vectors/handle-oracle.json", key: "scenarios").count > 0)
        #expect(try CapturedStreams.loaded.get().count == 10)
        #expect(try Captures.loadedSyntheticVectors.get().count == 7)
        #expect(try CapturedMessages.byConnection.get().keys.sorted() == [2, 3, 4, 6, 8, 9, 10])
        let readme = try Fixtures.data("README.md")
        #expect(!readme.isEmpty)
    }

    @Test("a capture connection that is not there is an error, not a crash")
    func unknownConnection() {
        #expect(throws: FixtureError.self) { try Captures.connection(99) }
    }

    /// The repository's code reads reference data only from the repository: no path to the hand-over
    /// folder beside the checkout, nor the variable that once pointed there. (CI also runs the suite
    /// with that folder hidden: scripts/test.sh.)
    @Test("no source or test refers to a folder outside the repository")
    func nothingReadsOutsideTheRepository() throws {
        let repository = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let forbidden = ["../" + "shared", "AEMP_" + "SHARED", "spec/" + "captures", "\"sha" + "red/"]
        var offenders: [String] = []
        for folder in ["Sources", "Tests", "Benchmarks", "Fuzz", "scripts", ".ci"] {
            let base = repository.appendingPathComponent(folder)
            guard let walker = FileManager.default.enumerator(at: base, includingPropertiesForKeys: nil) else { continue }
            for case let url as URL in walker {
                let name = url.lastPathComponent
                if name.hasPrefix(".build") || url.path.contains("/.build") {
                    walker.skipDescendants()
                    continue
                }
                guard ["swift", "sh", "py", "pl", "erl", ""].contains(url.pathExtension) || folder == ".ci",
                    let text = try? String(contentsOf: url, encoding: .utf8)
                else { continue }
                for word in forbidden where text.contains(word) {
                    offenders.append("\(url.path.dropFirst(repository.path.count + 1)): \(word)")
                }
            }
        }
        #expect(offenders.isEmpty, "\(offenders.joined(separator: "\n"))")
    }
}
