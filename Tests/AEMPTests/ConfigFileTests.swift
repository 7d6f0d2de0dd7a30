#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMPCodecs
import NIOCore
import Testing

@testable import AEMP

/// A private temporary directory, removed with its files at the end of the test.
final class ConfigTemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/aemp-config-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw ConfigFileError(.unwritable, reason: "mkdtemp") }
        path = String(cString: created)
    }

    deinit { Self.remove(path) }

    private static func remove(_ path: String) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            if let directory = opendir(path) {
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if name != "." && name != ".." { remove(path + "/" + name) }
                }
                closedir(directory)
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    func writeFile(_ name: String, _ text: String, mode: mode_t = 0o644) {
        let descriptor = open(path + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, mode)
        precondition(descriptor >= 0)
        _ = Array(text.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
    }

    func contents(_ name: String) -> String? {
        let descriptor = open(path + "/" + name, O_RDONLY)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func mode(_ name: String) -> mode_t? {
        var status = stat()
        guard stat(path + "/" + name, &status) == 0 else { return nil }
        return status.st_mode & 0o7777
    }
}

@Suite("Config file")
struct ConfigFileTests {
    static let perlFile = """
        {
           "secret" : "global-secret",
           "seeds" : [
              "10.0.0.1:4040"
           ],
           "version" : 1,
           "profile" : {
              "server" : {
                 "binds" : [
                    "*:4040"
                 ]
              },
              "doomed" : {
                 "parent" : "server",
                 "nodeid" : "doomed"
              }
           }
        }

        """

    @Test func parsesPerlLayout() throws {
        let file = try ConfigFile(json: Self.perlFile)
        #expect(file.global.keys == ["secret", "seeds", "version"])
        #expect(file.global["secret"] == .text("global-secret"))
        #expect(file.profileNames == ["server", "doomed"])
        #expect(file.profile("doomed")?["parent"] == .text("server"))
        #expect(file.profile("nope") == nil)
    }

    @Test func prettyTextMatchesPerlStyleAndRoundTrips() throws {
        let file = try ConfigFile(json: Self.perlFile)
        let text = try file.jsonText()
        #expect(text == Self.perlFile)
        #expect(try ConfigFile(json: text) == file)
    }

    @Test func emptyContainersAndScalarsRender() throws {
        var file = ConfigFile()
        file.global["seeds"] = .array([])
        file.global["x"] = .map([])
        file.global["n"] = .float(2.5)
        file.global["b"] = .bool(true)
        file.global["z"] = .null
        file.global["s"] = .text("a\"b\n")
        file.setProfile("p", ProfileSettings())
        #expect(try file.jsonText() == """
            {
               "version" : 1,
               "seeds" : [],
               "x" : {},
               "n" : 2.5,
               "b" : true,
               "z" : null,
               "s" : "a\\"b\\n",
               "profile" : {
                  "p" : {}
               }
            }

            """)
    }

    @Test func freshConfigurationHasVersion() {
        #expect(ConfigFile().global.pairs.map(\.key) == ["version"])
        #expect(ConfigFile().profiles.isEmpty)
    }

    @Test(arguments: [
        ("[1, 2]", "expected a JSON object at the top level"),
        ("\"x\"", "expected a JSON object at the top level"),
        ("{\"profile\": []}", "\"profile\" must be a JSON object of profiles"),
        ("{\"profile\": {\"a\": 1}}", "profile \"a\" must be a JSON object"),
        ("{} {}", "more than one JSON text"),
        ("", "empty, expected JSON text"),
        ("  \n", "empty, expected JSON text"),
        ("{\"a\": 1,}", "not valid JSON"),
        ("{\"a\": inf}", "not valid JSON"),
        ("{\"a\": ", "not valid JSON"),
    ])
    func malformedTextIsRefused(_ text: String, _ reason: String) {
        let error = #expect(throws: ConfigFileError.self) { try ConfigFile(json: text, path: "/x/rc") }
        #expect(error?.code == .malformed)
        #expect(error?.path == "/x/rc")
        #expect(error?.reason.hasPrefix(reason) == true)
        #expect(error?.description.hasPrefix("/x/rc: ") == true)
    }

    @Test func loadOfMissingFileIsFresh() throws {
        let directory = try ConfigTemporaryDirectory()
        #expect(try ConfigFile.load(path: directory.path + "/none.json") == ConfigFile())
    }

    @Test func saveAndLoadRoundTripWithMode0600() throws {
        let directory = try ConfigTemporaryDirectory()
        let path = directory.path + "/sub/dir/config.json"
        var file = try ConfigFile(json: Self.perlFile)
        file.edit(profile: "new") { $0["secret"] = "s" }
        try file.save(to: path)
        #expect(directory.mode("sub/dir/config.json") == 0o600)
        #expect(directory.mode("sub") == 0o700)
        #expect(try ConfigFile.load(path: path) == file)
        #expect(directory.contents("sub/dir/config.json") == (try file.jsonText()))
        // No temporary file is left behind.
        #expect(directory.contents("sub/dir/config.json~new~\(getpid())") == nil)
    }

    @Test func saveTightensModeOfExistingFile() throws {
        let directory = try ConfigTemporaryDirectory()
        directory.writeFile("rc", "{}", mode: 0o644)
        try ConfigFile().save(to: directory.path + "/rc")
        #expect(directory.mode("rc") == 0o600)
        #expect(try ConfigFile.load(path: directory.path + "/rc") == ConfigFile())
    }

    @Test func saveThroughSymbolicLinkKeepsTheLink() throws {
        let directory = try ConfigTemporaryDirectory()
        directory.writeFile("real.json", "{}")
        #expect(symlink(directory.path + "/real.json", directory.path + "/link.json") == 0)
        var file = ConfigFile()
        file.global["secret"] = "x"
        try file.save(to: directory.path + "/link.json")
        var status = stat()
        #expect(lstat(directory.path + "/link.json", &status) == 0 && (status.st_mode & S_IFMT) == S_IFLNK)
        #expect(try ConfigFile.load(path: directory.path + "/real.json").global["secret"] == "x")
    }

    @Test func unwritablePlaceIsAClearError() throws {
        let directory = try ConfigTemporaryDirectory()
        directory.writeFile("file", "")
        let error = #expect(throws: ConfigFileError.self) { try ConfigFile().save(to: directory.path + "/file/rc.json") }
        #expect(error?.code == .unwritable)
        #expect(error?.description.contains(directory.path + "/file") == true)
    }

    @Test func directoryIsUnreadable() throws {
        let directory = try ConfigTemporaryDirectory()
        let error = #expect(throws: ConfigFileError.self) { try ConfigFile.load(path: directory.path) }
        #expect(error?.code == .unreadable)
        #expect(error?.path == directory.path)
    }

    @Test func oversizeFileIsUnreadable() throws {
        let directory = try ConfigTemporaryDirectory()
        directory.writeFile("big", String(repeating: " ", count: ConfigFile.maximumFileSize + 1))
        let error = #expect(throws: ConfigFileError.self) { try ConfigFile.load(path: directory.path + "/big") }
        #expect(error?.code == .unreadable)
        #expect(error?.reason.contains("larger than") == true)
    }

    @Test func malformedFileNamesPathAndReason() throws {
        let directory = try ConfigTemporaryDirectory()
        directory.writeFile("rc", "{\"secret\": ")
        let error = #expect(throws: ConfigFileError.self) { try ConfigFile.load(path: directory.path + "/rc") }
        #expect(error?.code == .malformed)
        #expect(error?.description.hasPrefix(directory.path + "/rc: not valid JSON") == true)
    }

    @Test func permissionDeniedIsUnreadable() throws {
        guard geteuid() != 0 else { return }  // root reads any file
        let directory = try ConfigTemporaryDirectory()
        directory.writeFile("rc", "{}", mode: 0)
        let error = #expect(throws: ConfigFileError.self) { try ConfigFile.load(path: directory.path + "/rc") }
        #expect(error?.code == .unreadable)
    }

    @Test func defaultPathPrecedence() {
        #expect(ConfigFile.defaultPath(environment: ["AEMP_RC": "/a/rc", "XDG_CONFIG_HOME": "/x", "HOME": "/h"]) == "/a/rc")
        #expect(ConfigFile.defaultPath(environment: ["AEMP_RC": "", "XDG_CONFIG_HOME": "/x", "HOME": "/h"]) == "/x/aemp/config.json")
        #expect(ConfigFile.defaultPath(environment: ["XDG_CONFIG_HOME": "/x/", "HOME": "/h"]) == "/x/aemp/config.json")
        #expect(ConfigFile.defaultPath(environment: ["XDG_CONFIG_HOME": "relative", "HOME": "/h"]) == "/h/.config/aemp/config.json")
        #expect(ConfigFile.defaultPath(environment: ["HOME": "/h/"]) == "/h/.config/aemp/config.json")
        #expect(ConfigFile.defaultPath(environment: [:]) == nil)
    }

    @Test func unwritableValueIsAnError() {
        var file = ConfigFile()
        file.global["bad"] = .float(.nan)
        let error = #expect(throws: ConfigFileError.self) { try file.jsonText() }
        #expect(error?.code == .invalidArguments)
    }
}
