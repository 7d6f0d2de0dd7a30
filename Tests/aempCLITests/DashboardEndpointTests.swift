#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import AEMPCodecs
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import aemp

/// The dashboard's HTTP and WebSocket endpoint on real loopback sockets: a node in the test process
/// serves it, curl asks the HTTP paths, and a minimal WebSocket client written here on SwiftNIO (raw
/// bytes: the upgrade request, unmasked server frames, a masked close frame) reads snapshots.
@Suite("Dashboard endpoint: paths, access token, Host and Origin rules, WebSocket snapshots, database pages", .serialized)
struct DashboardEndpointTests {
    static let secret = "dashboard-endpoint-secret"

    /// A node that is its own seed (so it is global and its own database master), with a dashboard.
    final class Served: Sendable {
        let node: Node
        let endpoint: DashboardEndpoint
        let runner: Task<Void, any Error>

        init(token: String? = nil) async throws {
            let address = "127.0.0.1:\(AempBinary.freePort())"
            node = try await Node.start(
                NodeConfiguration(
                    nodeID: "dash-\(UInt32.random(in: 0...UInt32.max))", binds: [address], seeds: [address], secret: DashboardEndpointTests.secret))
            endpoint = try await DashboardEndpoint.start(
                host: "127.0.0.1", port: 0, node: node, token: token)
            let endpoint = self.endpoint
            runner = Task { try await endpoint.run() }
        }

        var base: String { "http://\(endpoint.address)" }
        var port: Int { Int(endpoint.address.split(separator: ":").last!)! }

        func stop() async {
            runner.cancel()
            await endpoint.close()
            await node.shutdown()
        }
    }

    static let curl = ["/usr/bin/curl", "/bin/curl"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// `curl -i`: the status, the header block and the body.
    static func http(_ url: String, _ extra: [String] = []) throws -> (status: Int, head: String, body: String) {
        let curl = try #require(Self.curl, "curl is needed (scripts/test.sh installs it)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: curl)
        process.arguments = ["-sS", "-i", "--max-time", "5"] + extra + [url]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        let parts = text.components(separatedBy: "\r\n\r\n")
        let head = parts.first ?? ""
        let status = head.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, head, parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    static func waitUntil(_ limit: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return try await condition()
    }

    @Test("loopback, no token: the page, its assets and a snapshot are served; unknown paths 404, other methods 405", .timeLimit(.minutes(1)))
    func pathsOnLoopback() async throws {
        let served = try await Served()
        #expect(served.endpoint.access.token == nil)
        #expect(served.endpoint.url == "\(served.base)/")
        let page = try Self.http(served.base + "/")
        #expect(page.status == 200, "\(page.head)")
        #expect(page.head.contains("Content-Type: text/html; charset=utf-8"))
        #expect(page.head.contains("Content-Security-Policy: default-src 'self'"), "no CDN, nothing from elsewhere")
        #expect(page.body.contains("<svg id=\"graph\"") && page.body.contains("/dashboard.js"))
        #expect(page.body.utf8.count == DashboardAssets.html.count)
        #expect(try Self.http(served.base + "/dashboard.js").body.contains("new WebSocket("))
        #expect(try Self.http(served.base + "/dashboard.css").head.contains("text/css"))
        #expect(try await Self.waitUntil { try Self.http(served.base + "/snapshot.json").body.contains(served.node.nodeID.rawValue) })
        let snapshot = try JSONDecoder().decode(DashboardSnapshot.self, from: Data(try Self.http(served.base + "/snapshot.json").body.utf8))
        #expect(snapshot.selfNode == served.node.nodeID.rawValue)
        #expect(snapshot.nodes.first { $0.isSelf }?.state == "up")
        #expect(try Self.http(served.base + "/nothing-here").status == 404)
        #expect(try Self.http(served.base + "/", ["-X", "POST"]).status == 405)
        #expect(try Self.http(served.base + "/ws").status == 400, "/ws without an upgrade")
        await served.stop()
    }

    @Test("with a token: none is 401, a wrong one 403, the right one 200; the assets need none", .timeLimit(.minutes(1)))
    func tokenRules() async throws {
        let served = try await Served(token: "0123456789abcdef0123456789abcdef")
        #expect(served.endpoint.url == "\(served.base)/?token=0123456789abcdef0123456789abcdef")
        let missing = try Self.http(served.base + "/")
        #expect(missing.status == 401)
        #expect(missing.body.contains("needs its access token"))
        #expect(try Self.http(served.base + "/?token=0123456789abcdef0123456789abcdee").status == 403)
        #expect(try Self.http(served.base + "/snapshot.json?token=wrong").status == 403)
        #expect(try Self.http(served.base + "/db.json?family=%27l").status == 401)
        #expect(try Self.http(served.base + "/?token=0123456789abcdef0123456789abcdef").status == 200)
        #expect(try Self.http(served.base + "/snapshot.json?token=0123456789abcdef0123456789abcdef").status == 200)
        #expect(try Self.http(served.base + "/dashboard.js").status == 200)
        #expect(try Self.http(served.base + "/dashboard.css").status == 200)
        await served.stop()
    }

    @Test("on loopback a request naming another host is refused (no DNS rebinding)", .timeLimit(.minutes(1)))
    func foreignHost() async throws {
        let served = try await Served()
        #expect(try Self.http(served.base + "/", ["-H", "Host: attacker.example:\(served.port)"]).status == 403)
        #expect(try Self.http(served.base + "/", ["-H", "Host: localhost:\(served.port)"]).status == 200)
        #expect(try Self.http(served.base + "/", ["-H", "Host: [::1]:\(served.port)"]).status == 200)
        await served.stop()
    }

    @Test("access rules: a token is made for every bind host but loopback", .timeLimit(.minutes(1)))
    func accessRules() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"] {
            #expect(DashboardAccess(host: host).token == nil, "\(host)")
            #expect(DashboardAccess(host: host).loopbackOnly, "\(host)")
        }
        for host in ["0.0.0.0", "::", "10.0.0.5", "example.org", "127.0.0.1.example.org", "1270.0.0.1"] {
            let access = DashboardAccess(host: host)
            let token = access.token ?? ""
            #expect(token.count == 32 && token.allSatisfy(\.isHexDigit), "\(host): \(token)")
            #expect(!access.loopbackOnly)
        }
        #expect(DashboardAccess(host: "0.0.0.0").token != DashboardAccess(host: "0.0.0.0").token)
        #expect(DashboardAccess(host: "0.0.0.0", token: "given").token == "given")
        #expect(DashboardAccess.query("/x?token=a%20b&page=2&token=c") == ["token": "a b", "page": "2"])
    }

    @Test("a WebSocket client gets a snapshot at once and the next within 1.5 s; its close frame is answered", .timeLimit(.minutes(1)))
    func webSocketSnapshots() async throws {
        let served = try await Served(token: "tok")
        _ = await Self.waitUntil { served.endpoint.address != "?" }
        let client = try await RawWebSocketClient.connect(port: served.port)
        try await client.send(Array(RawWebSocketClient.upgradeRequest(path: "/ws?token=tok", host: "127.0.0.1:\(served.port)").utf8))
        let response = try #require(await client.responseHead(within: .seconds(5)), "no HTTP response")
        #expect(response.hasPrefix("HTTP/1.1 101"), "\(response)")
        #expect(response.lowercased().contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "\(response)")
        let first = try #require(await client.nextFrame(within: .seconds(5)), "no snapshot")
        #expect(first.opcode == 1)
        let snapshot = try JSONDecoder().decode(DashboardSnapshot.self, from: Data(first.payload))
        #expect(snapshot.selfNode == served.node.nodeID.rawValue)
        let started = ContinuousClock.now
        let second = try #require(await client.nextFrame(within: .milliseconds(1500)), "no second snapshot within 1.5 s")
        #expect(ContinuousClock.now - started < .milliseconds(1500))
        let later = try JSONDecoder().decode(DashboardSnapshot.self, from: Data(second.payload))
        #expect(later.time > snapshot.time)
        // A masked close frame (code 1000) gets a close frame back, then the connection ends.
        try await client.send([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2])
        var sawClose = false
        for _ in 0..<5 {
            guard let frame = await client.nextFrame(within: .seconds(3)) else { break }
            if frame.opcode == 8 { sawClose = true; break }
        }
        #expect(sawClose)
        #expect(await client.waitClosed(within: .seconds(3)))
        await served.stop()
    }

    @Test("the WebSocket refuses a missing or wrong token and a foreign Origin", .timeLimit(.minutes(1)))
    func webSocketRefusals() async throws {
        let served = try await Served(token: "tok")
        let host = "127.0.0.1:\(served.port)"
        let cases: [(String, String?, String)] = [
            ("/ws", nil, "HTTP/1.1 401"),
            ("/ws?token=nope", nil, "HTTP/1.1 403"),
            ("/ws?token=tok", "http://attacker.example", "HTTP/1.1 403"),
            ("/ws?token=tok", "http://\(host)", "HTTP/1.1 101"),
        ]
        for (path, origin, expected) in cases {
            let client = try await RawWebSocketClient.connect(port: served.port)
            try await client.send(Array(RawWebSocketClient.upgradeRequest(path: path, host: host, origin: origin).utf8))
            let head = await client.responseHead(within: .seconds(5)) ?? "(none)"
            #expect(head.hasPrefix(expected), "\(path) origin \(origin ?? "-"): \(head)")
            client.close()
        }
        await served.stop()
    }

    @Test("the database: families listed in the snapshot, contents paged by db.json", .timeLimit(.minutes(1)))
    func databasePages() async throws {
        let served = try await Served()
        for index in 0..<60 { served.node.dbSet("dash_paged", String(format: "key%02d", index), .int(Int64(index))) }
        let listed = try await Self.waitUntil(.seconds(15)) {
            let body = try Self.http(served.base + "/snapshot.json").body
            guard let snapshot = try? JSONDecoder().decode(DashboardSnapshot.self, from: Data(body.utf8)) else { return false }
            return snapshot.database.families.contains { $0.name == "dash_paged" && $0.count == 60 }
        }
        #expect(listed, "the family did not appear in a snapshot")
        let page = try Self.http(served.base + "/db.json?family=dash_paged&page=2")
        #expect(page.status == 200)
        let decoded = try JSONDecoder().decode(DashboardDatabasePage.self, from: Data(page.body.utf8))
        #expect(decoded.pages == 3 && decoded.page == 2 && decoded.count == 60)
        #expect(decoded.entries.map(\.key) == (50..<60).map { String(format: "key%02d", $0) })
        #expect(decoded.entries.first?.value == "50")
        let listeners = try Self.http(served.base + "/db.json?family=%27l&page=0")
        #expect(listeners.status == 200 && listeners.body.contains(served.node.nodeID.rawValue), "\(listeners)")
        #expect(try Self.http(served.base + "/db.json?family=no_such_family").status == 404)
        await served.stop()
    }

    @Test("aemp run dashboard: the banner names the URL, the snapshot answers, SIGTERM still exits 0", .timeLimit(.minutes(1)))
    func runWithDashboard() async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let (node, id) = try await sandbox.startNode([
            "nodeid", "dash-run", "binds", address, "seeds", address, "secret", Self.secret, "dashboard", "127.0.0.1:0",
        ])
        defer { node.signal(SIGKILL) }
        let line = node.output.text.split(separator: "\n").first { $0.contains("dashboard:") } ?? ""
        let url = try #require(line.split(separator: " ").first { $0.hasPrefix("http://") }.map(String.init), "\(node.transcript)")
        #expect(line.contains("(live view in a browser)") && !url.contains("token"), "\(line)")
        #expect(try await Self.waitUntil { try Self.http(url + "snapshot.json").body.contains("\"selfNode\":\"\(id)\"") })
        node.signal(SIGTERM)
        #expect(await node.finish(timeout: .seconds(10)) == 0, "\(node.transcript)")
    }

    @Test("the dashboard setting: alone it keeps the default node, in a profile it applies; the banner tells about the token")
    func settingAndBanner() async throws {
        let sandbox = try CLISandbox()
        let backend = RecordingBackend()
        try await sandbox.run(["run", "dashboard", "127.0.0.1:8080"], backend: backend)
        #expect(backend.runOptions.last?.dashboardAddress == .init(host: "127.0.0.1", port: 8080))
        #expect(backend.recorded.last?.configuration.binds == ["127.0.0.1:4040"], "the embedded default node")
        #expect(sandbox.errors.lines.isEmpty, "no unknown-key warning: \(sandbox.errors.lines)")
        #expect(sandbox.output.text.contains("dashboard:    off (serve it with dashboard <host:port>)"), "the recording backend serves none")
        sandbox.writeFile(
            "rc.json", #"{"secret": "s", "profile": {"watch": {"nodeid": "watcher", "dashboard": "[::1]:8081"}}}"#)
        try await sandbox.run(["run", "watch"], backend: backend)
        #expect(backend.runOptions.last?.dashboardAddress == .init(host: "::1", port: 8081))
        #expect(backend.recorded.last?.configuration.nodeID == "watcher")
        try await sandbox.run(["run", "secret", "s", "dashboard", "*:0"], backend: backend)
        #expect(backend.runOptions.last?.dashboardAddress == .init(host: "0.0.0.0", port: 0))

        let remote = RecordingBackend(
            running: RunningNode(
                nodeID: NodeID("watcher")!, listenerAddresses: ["10.0.0.5:4040"], dashboardURL: "http://10.0.0.5:8080/?token=abc123"))
        let banner = try CLISandbox()
        try await banner.run(["run", "secret", "s", "dashboard", "10.0.0.5:8080"], backend: remote)
        #expect(
            banner.output.text.contains(
                "dashboard:    http://10.0.0.5:8080/?token=abc123 (live view in a browser; the token is required: not on loopback)"),
            "\(banner.output.text)")
    }

    @Test("a bad dashboard address is refused with a clear error")
    func badAddress() async throws {
        let sandbox = try ProcessSandbox(rc: nil)
        for bad in ["nowhere", "127.0.0.1:99999", "127.0.0.1:"] {
            let result = try await sandbox.client(["run", "nodeid", "dash-bad", "secret", Self.secret, "dashboard", bad])
            #expect(result.status == 1)
            #expect(result.errors.contains("dashboard must be host:port (e.g. 127.0.0.1:8080), got \(bad)"), "\(result.errors)")
        }
        // A well-formed address that cannot be bound: the node's own listener.
        let address = "127.0.0.1:\(AempBinary.freePort())"
        let result = try await sandbox.client([
            "run", "nodeid", "dash-bad", "binds", address, "secret", Self.secret, "dashboard", address,
        ])
        #expect(result.status == 1)
        #expect(result.errors.contains("cannot serve the dashboard on \(address)"), "\(result.errors)")
    }
}

/// A WebSocket client on raw bytes, enough to test the server: it sends what the test gives it and
/// parses the HTTP response head and unmasked server frames.
final class RawWebSocketClient: Sendable {
    struct Frame {
        var opcode: UInt8
        var payload: [UInt8]
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let bytes = Mutex<[UInt8]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            let chunk = buffer.readBytes(length: buffer.readableBytes) ?? []
            bytes.withLock { $0 += chunk }
        }
    }

    private let channel: any Channel
    private let collector: Collector
    /// Bytes taken by the parsers so far.
    private let consumed = Mutex(0)

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(port: Int) async throws -> RawWebSocketClient {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawWebSocketClient(channel: channel, collector: collector)
    }

    /// An upgrade request with the RFC 6455 example key.
    static func upgradeRequest(path: String, host: String, origin: String? = nil) -> String {
        "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            + (origin.map { "Origin: \($0)\r\n" } ?? "") + "\r\n"
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    func close() {
        channel.close(promise: nil)
    }

    /// Polls the received bytes with `parse` (given the unconsumed bytes; returns the value and how
    /// many bytes it took) until it succeeds or `limit` passes.
    private func take<T>(within limit: Duration, _ parse: ([UInt8]) -> (T, Int)?) async -> T? {
        let deadline = ContinuousClock.now + limit
        while true {
            let available = collector.bytes.withLock { Array($0) }
            let start = consumed.withLock { $0 }
            if let (value, used) = parse(Array(available[start...])) {
                consumed.withLock { $0 += used }
                return value
            }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The response head (up to the empty line).
    func responseHead(within limit: Duration) async -> String? {
        await take(within: limit) { bytes in
            let marker: [UInt8] = [13, 10, 13, 10]
            guard bytes.count >= 4 else { return nil }
            for index in 0...(bytes.count - 4) where Array(bytes[index..<index + 4]) == marker {
                return (String(decoding: bytes[..<index], as: UTF8.self), index + 4)
            }
            return nil
        }
    }

    /// The next complete frame from the server.
    func nextFrame(within limit: Duration) async -> Frame? {
        await take(within: limit) { bytes in
            guard bytes.count >= 2 else { return nil }
            var length = Int(bytes[1] & 0x7F)
            var offset = 2
            if length == 126 {
                guard bytes.count >= 4 else { return nil }
                length = Int(bytes[2]) << 8 | Int(bytes[3])
                offset = 4
            } else if length == 127 {
                guard bytes.count >= 10 else { return nil }
                length = bytes[2..<10].reduce(0) { $0 << 8 | Int($1) }
                offset = 10
            }
            guard bytes.count >= offset + length else { return nil }
            return (Frame(opcode: bytes[0] & 0x0F, payload: Array(bytes[offset..<offset + length])), offset + length)
        }
    }

    /// Whether the server closed the connection within `limit`.
    func waitClosed(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while channel.isActive, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        return !channel.isActive
    }
}
