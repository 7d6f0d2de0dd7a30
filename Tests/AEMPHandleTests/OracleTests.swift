import AEMPTestSupport
import Foundation
import Testing

/// Replays `handle-oracle.json` (the real Perl AnyEvent::Handle's callback sequences) against `Handle`.
@Suite("Handle oracle replay", .serialized)
struct OracleTests {
    typealias Object = Oracle.Object

    nonisolated(unsafe) static let scenarios: [Object] = {
        let root = (try? SharedFiles.json("vectors/handle-oracle.json")) as? Object
        return root?["scenarios"] as? [Object] ?? []
    }()

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

    @Test("the oracle file loads")
    func loads() {
        #expect(Self.scenarios.count >= 150)
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
    func counts() {
        let skipped = Self.scenarios.filter { Self.skipReason($0) != nil }
        var byReason: [String: Int] = [:]
        for scenario in skipped { byReason[Self.skipReason(scenario)!, default: 0] += 1 }
        let total = Self.scenarios.count
        print("oracle: \(total) scenarios, \(skipped.count) skipped, \(Self.deviations.count) deviations")
        for (reason, count) in byReason.sorted(by: { $0.key < $1.key }) { print("  skip \(count): \(reason)") }
        #expect(skipped.count < Self.scenarios.count)
    }
}
