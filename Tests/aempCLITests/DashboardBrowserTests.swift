#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Testing

/// What the browser test needs: python3 with Selenium, and Debian's chromium and chromium-driver.
enum DashboardBrowser {
    /// The package's root directory.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The driver script.
    static let script = packageRoot.appendingPathComponent("scripts/dashboard-browser.py").path
    /// Where the test leaves its screenshot.
    static let screenshot = packageRoot.appendingPathComponent(".build/dashboard-test.png").path

    static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// python3 on the test's PATH.
    static let python: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Whether Selenium imports and the browser and its driver are installed.
    static let installed: Bool = {
        guard let python else { return false }
        let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].contains {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard browser, driver else { return false }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "import selenium"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    /// In CI the test always runs (a missing browser fails it); elsewhere only when installed.
    static let enabled = isCI || installed
}

/// The dashboard in a real browser: three `aemp run` nodes, the first serving the dashboard, the
/// page opened in headless Chromium by scripts/dashboard-browser.py (Selenium). It must show the
/// three nodes up and the two connections of the dashboard node; then one node is killed with
/// SIGKILL and the page must mark it down within the liveness bound (liveness_timeout 3 s, plus one
/// second). The screenshot goes to .build/dashboard-test.png.
@Suite(
    "Dashboard in headless Chromium", .serialized,
    .enabled(if: AempBinary.path != nil, "needs the built aemp executable"),
    .enabled(
        if: DashboardBrowser.enabled,
        "needs python3 with Selenium (PyPI) and Debian's chromium and chromium-driver; scripts/test.sh installs them (in CI, CI=true, their absence fails the test)"
    ))
struct DashboardBrowserTests {
    static let secret = "dashboard-browser-secret"
    static let livenessTimeout = 3

    @Test("the page shows three nodes and their links, marks a SIGKILLed node down within the liveness bound, and is saved as a screenshot", .timeLimit(.minutes(2)))
    func threeNodesOneKilled() async throws {
        let python = try #require(DashboardBrowser.python, "python3 is not on PATH")
        let sandbox = try ProcessSandbox(rc: nil)
        let seed = "127.0.0.1:\(AempBinary.freePort())"
        let common = ["seeds", seed, "secret", Self.secret, "liveness_timeout", String(Self.livenessTimeout)]
        let (first, firstID) = try await sandbox.startNode(["nodeid", "dash-one", "binds", seed, "dashboard", "127.0.0.1:0"] + common)
        defer { first.signal(SIGKILL) }
        let (second, secondID) = try await sandbox.startNode(["nodeid", "dash-two", "binds", "127.0.0.1:0"] + common)
        defer { second.signal(SIGKILL) }
        let (third, thirdID) = try await sandbox.startNode(["nodeid", "dash-three", "binds", "127.0.0.1:0"] + common)
        defer { third.signal(SIGKILL) }
        let line = first.output.text.split(separator: "\n").first { $0.contains("dashboard:") } ?? ""
        let url = try #require(line.split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init), "\(first.transcript)")

        try? FileManager.default.removeItem(atPath: DashboardBrowser.screenshot)
        let bound = Double(Self.livenessTimeout + 1)
        let browser = try AempProcess(
            [
                DashboardBrowser.script, "--url", url, "--nodes", "3", "--links", "2", "--down-from-stdin",
                "--down-within", String(bound), "--screenshot", DashboardBrowser.screenshot, "--settle", "0.5", "--timeout", "40",
            ],
            environment: ProcessInfo.processInfo.environment, executable: python, input: true)
        defer { browser.signal(SIGKILL) }

        let ready = await browser.waitUntil(timeout: .seconds(60)) {
            $0.output.text.contains("READY ") || !$0.process.isRunning
        }
        if !browser.process.isRunning, browser.errors.text.contains("BROWSER-UNAVAILABLE") {
            Issue.record(
                "headless Chromium could not be started (scripts/test.sh installs chromium, chromium-driver and selenium): \(browser.errors.text)"
            )
            return
        }
        #expect(ready && browser.output.text.contains("READY "), "\(browser.transcript)")
        let readyLine = browser.output.text.split(separator: "\n").first { $0.hasPrefix("READY ") } ?? ""
        let state = try JSONSerialization.jsonObject(with: Data(readyLine.dropFirst(6).utf8)) as? [String: Any] ?? [:]
        let nodes = state["nodes"] as? [[String: Any]] ?? []
        #expect(Set(nodes.compactMap { $0["id"] as? String }) == [firstID, secondID, thirdID], "\(readyLine)")
        #expect(nodes.allSatisfy { $0["implementation"] as? String == "swift" }, "\(readyLine)")
        #expect(nodes.filter { $0["self"] as? Bool == true }.compactMap { $0["id"] as? String } == [firstID], "\(readyLine)")
        let links = (state["links"] as? [[String]] ?? []).map { Set($0) }
        #expect(links.contains([firstID, secondID]) && links.contains([firstID, thirdID]), "\(readyLine)")

        third.signal(SIGKILL)
        browser.type(thirdID)
        let down = await browser.waitUntil(timeout: .seconds(20)) { $0.output.text.contains("DOWN ") || !$0.process.isRunning }
        #expect(down && browser.output.text.contains("DOWN \(thirdID) "), "\(browser.transcript)")
        let status = await browser.finish(timeout: .seconds(30))
        #expect(status == 0, "\(browser.transcript)")
        let downLine = browser.output.text.split(separator: "\n").first { $0.hasPrefix("DOWN ") } ?? ""
        if let seconds = downLine.split(separator: " ").last.flatMap({ Double($0) }) {
            #expect(seconds <= bound, "marked down after \(seconds) s")
        }
        let png = FileManager.default.contents(atPath: DashboardBrowser.screenshot) ?? Data()
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "no PNG at \(DashboardBrowser.screenshot)")
    }
}
