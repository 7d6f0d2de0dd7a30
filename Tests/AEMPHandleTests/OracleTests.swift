import AEMPTestSupport
import Foundation
import Testing

/// Replays `handle-oracle.json` (the real Perl AnyEvent::Handle's callback sequences) against `Handle`.
@Suite("Handle oracle replay", .serialized)
struct OracleTests {
    typealias Object = Oracle.Object

    static let path = "vectors/handle-oracle.json"

    /// The oracle file's scenarios (any number; each must have a name), or why they could not be loaded.
    nonisolated(unsafe) static let loaded: Result<[Object], FixtureError> = Result { () throws(FixtureError) in
        let scenarios = try Fixtures.list(path, key: "scenarios")
        for (index, scenario) in scenarios.enumerated() where (scenario["name"] as? String)?.isEmpty ?? true {
            throw Fixtures.error(path, "scenario \(index) has no name")
        }
        return scenarios
    }

    nonisolated(unsafe) static let scenarios: [Object] = loaded.or([])

    /// Read/write types not replayed: the Perl-only one, and those still to come.
    static let pendingTypes: [String: String] = [
        "storable": "Perl-only type (tag storable): record only",
    ]

    /// Scenarios where Perl contradicts its own documentation (none so far).
    static let deviations: [String: String] = [:]

    static func skipReason(_ scenario: Object) -> String? {
        if (scenario["tags"] as? [String] ?? []).contains("storable") { return pendingTypes["storable"] }
        var found: String?
        func walk(_ value: Any?) {
            if let object = value as? Object {
                if let type = object["type"] as? String, let reason = pendingTypes[type] { found = found ?? reason }
                object.values.forEach(walk)
            } else if let list = value as? [Any] {
                list.forEach(walk)
            }
        }
        walk(scenario["actions"])
        walk(scenario["setup"])
        walk(scenario["reactions"])
        walk(scenario["templates"])
        return found
    }

    static let names: [String] = scenarios.compactMap { $0["name"] as? String }

    /// The runner replays whatever the file holds; the file's own `count` says how many that is.
    @Test("the oracle file loads and holds the number of scenarios it declares")
    func loads() throws {
        let scenarios = try Self.loaded.get()
        let root = try Fixtures.jsonObject(Self.path)
        let declared = try #require(root["count"] as? Int, "\(Fixtures.error(Self.path, "has no count"))")
        #expect(scenarios.count == declared, "\(Fixtures.error(Self.path, "declares \(declared) scenarios"))")
    }

    @Test("scenario", arguments: names)
    func replay(_ name: String) throws {
        let scenario = try #require(Self.scenarios.first { $0["name"] as? String == name })
        if Self.skipReason(scenario) != nil || Self.deviations[name] != nil { return }
        let expect = scenario["expect"] as? Object ?? [:]
        let expected = (expect["events"] as? [Object] ?? []).map { Oracle.text(Oracle.canonicalize($0)) }
        let expectedFinal = Oracle.text(Oracle.canonicalize(expect["final"] as? Object ?? [:]))
        let (events, final) = try OracleRun(scenario).run()
        let actual = events.map { Oracle.text(Oracle.canonicalize($0)) }
        let actualFinal = Oracle.text(Oracle.canonicalize(final))
        let expectedText = expected.joined(separator: "\n")
        let actualText = actual.joined(separator: "\n")
        #expect(actual == expected, "\(name) events:\nexpected:\n\(expectedText)\nactual:\n\(actualText)")
        #expect(actualFinal == expectedFinal, "\(name) final:\nexpected: \(expectedFinal)\nactual:   \(actualFinal)")
    }

    @Test("skip and deviation counts")
    func counts() throws {
        let scenarios = try Self.loaded.get()
        let skipped = scenarios.filter { Self.skipReason($0) != nil }
        var byReason: [String: Int] = [:]
        for scenario in skipped { byReason[Self.skipReason(scenario)!, default: 0] += 1 }
        print("oracle: \(scenarios.count) scenarios, \(skipped.count) skipped, \(Self.deviations.count) deviations")
        for (reason, count) in byReason.sorted(by: { $0.key < $1.key }) { print("  skip \(count): \(reason)") }
        #expect(skipped.count < scenarios.count)
    }
}
