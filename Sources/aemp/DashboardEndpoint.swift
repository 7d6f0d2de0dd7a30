#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import AEMP
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// The live dashboard of `aemp run dashboard <host:port>`: a read-only web page showing the network
/// as this node sees it, updated over a WebSocket.
///
/// Built directly on SwiftNIO's HTTP/1 server and `NIOWebSocket` (both part of swift-nio, which the
/// package already builds) rather than on Hummingbird: the endpoint serves four fixed paths and
/// one push-only WebSocket, and the metrics endpoint already uses the same SwiftNIO pattern, so a web
/// framework (and its dependency tree, compiled in CI) would add build time and no capability.
///
/// Paths: `/` (the page), `/dashboard.js`, `/dashboard.css` (its assets, embedded in the binary:
/// ``DashboardAssets``; no data in them), `/snapshot.json` (the latest ``DashboardSnapshot``),
/// `/db.json?family=<name>&page=<n>` (a page of a database family), `/ws` (the WebSocket: a
/// snapshot as a text message at once and then every second, and at once after a node went up or
/// down; messages from the browser are ignored). Anything else is 404, a method other than GET or
/// HEAD 405.
///
/// Access (``DashboardAccess``): on a loopback address no token is needed, but the `Host` header
/// must name a loopback host (a web page elsewhere cannot reach it by DNS rebinding). On any other
/// address every data path (the page, the JSON, the WebSocket) needs `?token=<token>`: 401 without
/// one, 403 with a wrong one. A WebSocket whose `Origin` is not the page's own host is refused (403).
///
/// A `Service`: it stops accepting on graceful shutdown and ends its WebSockets with a close frame.
final class DashboardEndpoint: Service, Sendable {
    /// How often the page gets a snapshot.
    static let interval: Duration = .seconds(1)
    /// How often the other nodes are surveyed, and each request's limit.
    static let surveyInterval: Duration = .seconds(2)
    static let surveyTimeout: Duration = .milliseconds(1500)

    let access: DashboardAccess
    private let node: Node
    private let channel: any Channel
    private let hub: DashboardHub
    private let model: DashboardModel
    private let mirror: DashboardDatabaseMirror
    private let logger: Logger

    /// The address it listens on (`ip:port`).
    var address: String {
        guard let local = channel.localAddress, let ip = local.ipAddress, let port = local.port else { return "?" }
        return local.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// The URL to open (with the token when one is needed).
    var url: String {
        "http://\(address)/" + (access.token.map { "?token=\($0)" } ?? "")
    }

    /// Binds `host:port` (port 0 picks one). A token is made when `host` is not a loopback address
    /// (`token` overrides it, e.g. in tests).
    static func start(
        host: String, port: Int, node: Node, token: String? = nil, logger: Logger = LiveNodeBackend.logger(level: .warning)
    ) async throws -> DashboardEndpoint {
        let access = DashboardAccess(host: host, token: token)
        let hub = DashboardHub()
        let mirror = DashboardDatabaseMirror(node: node)
        let model = DashboardModel(selfNode: node.nodeID, mirror: mirror)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let http = DashboardHTTPHandler(access: access, hub: hub, model: model)
                    let upgrader = NIOWebSocketServerUpgrader(
                        maxFrameSize: 1 << 16,
                        shouldUpgrade: { channel, head in
                            channel.eventLoop.makeSucceededFuture(
                                access.check(uri: head.uri, headers: head.headers, webSocket: true) == nil
                                    && DashboardHTTPHandler.path(head.uri) == "/ws" ? HTTPHeaders() : nil)
                        },
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture {
                                try channel.pipeline.syncOperations.addHandler(DashboardWebSocketHandler(hub: hub))
                            }
                        })
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                context.pipeline.syncOperations.removeHandler(name: DashboardHTTPHandler.name, promise: nil)
                            }
                        ),
                        withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(http, name: DashboardHTTPHandler.name)
                }
            }
            .bind(host: host, port: port).get()
        return DashboardEndpoint(
            access: access, node: node, channel: channel, hub: hub, model: model, mirror: mirror, logger: logger)
    }

    private init(
        access: DashboardAccess, node: Node, channel: any Channel, hub: DashboardHub, model: DashboardModel,
        mirror: DashboardDatabaseMirror, logger: Logger
    ) {
        self.access = access
        self.mirror = mirror
        self.node = node
        self.channel = channel
        self.hub = hub
        self.model = model
        self.logger = logger
    }

    /// Gathers and pushes until graceful shutdown or cancellation, then closes the listener and the
    /// WebSockets.
    func run() async throws {
        let channel = self.channel
        let hub = self.hub
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.gather() }
                    group.addTask { try? await channel.closeFuture.get() }
                    await group.next()
                    group.cancelAll()
                }
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
        hub.closeAll()
        mirror.stop()
    }

    /// Closes the listener and the WebSockets.
    func close() async {
        try? await channel.close()
        hub.closeAll()
        mirror.stop()
    }

    /// The snapshot loop, the survey loop and the event feeds, until cancelled.
    private func gather() async {
        let node = self.node
        let model = self.model
        let hub = self.hub
        let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in node.nodeEvents() {
                    await model.record(event)
                    wake.continuation.yield()
                }
            }
            group.addTask {
                for await observation in node.observations() {
                    await model.record(observation)
                }
            }
            group.addTask {
                var survey = DashboardSurvey(node: node, timeout: Self.surveyTimeout)
                while !Task.isCancelled {
                    let result = await survey.run()
                    await model.record(result)
                    try? await Task.sleep(for: Self.surveyInterval)
                }
            }
            group.addTask {
                // A snapshot every second, and one soon after a node event (a short pause lets the
                // statistics catch up with the event).
                let ticker = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: Self.interval)
                        wake.continuation.yield()
                    }
                }
                defer { ticker.cancel() }
                await Self.push(node: node, model: model, hub: hub)
                for await _ in wake.stream {
                    if Task.isCancelled { break }
                    try? await Task.sleep(for: .milliseconds(20))
                    await Self.push(node: node, model: model, hub: hub)
                }
            }
            await group.waitForAll()
        }
    }

    /// Takes a snapshot and sends it to every WebSocket.
    static func push(node: Node, model: DashboardModel, hub: DashboardHub) async {
        async let statistics = node.statistics()
        async let peers = node.peers()
        async let summary = node.summary()
        async let master = node.databaseMaster()
        let snapshot = await model.snapshot(statistics: statistics, peers: peers, summary: summary, master: master)
        guard let json = try? JSONEncoder().encode(snapshot) else { return }
        hub.broadcast(Array(json))
    }
}

/// Who may see the dashboard: ``check(uri:headers:webSocket:)`` says why not.
struct DashboardAccess: Sendable {
    /// The token every data request needs (`nil`: none, on loopback).
    let token: String?
    /// Whether the endpoint listens on loopback only (then `Host` must name a loopback host).
    let loopbackOnly: Bool

    /// The access rules for a bind host: on loopback no token unless `token` is given; elsewhere
    /// `token`, else a fresh random one (``makeToken()``).
    init(host: String, token: String? = nil) {
        let loopback = Self.isLoopback(host)
        self.init(token: loopback ? token : (token ?? Self.makeToken()), loopbackOnly: loopback)
    }

    init(token: String?, loopbackOnly: Bool) {
        self.token = token
        self.loopbackOnly = loopbackOnly
    }

    /// Whether `host` (a bind host) is a loopback address: `127.x.x.x`, `::1` or `localhost`.
    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased()
        if host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// A random token: 128 bits, hex.
    static func makeToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in
            let word = String(generator.next() as UInt32, radix: 16)
            return String(repeating: "0", count: 8 - word.count) + word
        }.joined()
    }

    /// `nil` when the request may proceed, else the status and the text to answer with.
    func check(uri: String, headers: HTTPHeaders, webSocket: Bool) -> (HTTPResponseStatus, String)? {
        if loopbackOnly {
            guard let host = headers.first(name: "host"), Self.isLoopback(Self.hostName(host)) else {
                return (.forbidden, "this dashboard listens on loopback: open it as http://127.0.0.1:<port>/\n")
            }
        }
        if webSocket, let origin = headers.first(name: "origin") {
            let originHost = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init)
            guard let originHost, originHost.lowercased() == headers.first(name: "host")?.lowercased() else {
                return (.forbidden, "the WebSocket is only for the dashboard's own page\n")
            }
        }
        guard let token else { return nil }
        guard let given = Self.query(uri)["token"] else {
            return (.unauthorized, "this dashboard needs its access token: open the URL aemp run printed (...?token=...)\n")
        }
        guard Self.same(given, token) else { return (.forbidden, "wrong access token\n") }
        return nil
    }

    /// The host part of a `Host` header (`[::1]:8080` → `::1`, `127.0.0.1:8080` → `127.0.0.1`).
    static func hostName(_ header: String) -> String {
        if header.hasPrefix("["), let end = header.firstIndex(of: "]") {
            return String(header[header.index(after: header.startIndex)..<end])
        }
        return String(header.split(separator: ":", maxSplits: 1).first ?? "")
    }

    /// The query parameters of a request URI (percent-decoded).
    static func query(_ uri: String) -> [String: String] {
        guard let mark = uri.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "") : ""
            if result[key] == nil { result[key] = value }
        }
        return result
    }

    /// Compares in time independent of where the strings differ.
    private static func same(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<min(x.count, y.count) { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}

/// The open WebSockets, and the latest snapshot for new ones.
final class DashboardHub: Sendable {
    private struct State {
        var clients: [ObjectIdentifier: any Channel] = [:]
        var latest: [UInt8]?
        var closed = false
    }

    private let state = Mutex(State())

    /// Adds a WebSocket and sends it the latest snapshot.
    func add(_ channel: any Channel) {
        let latest = state.withLock { state -> [UInt8]?? in
            guard !state.closed else { return .none }
            state.clients[ObjectIdentifier(channel)] = channel
            return .some(state.latest)
        }
        switch latest {
        case .none: Self.close(channel)
        case .some(let bytes?): Self.send(bytes, to: channel)
        case .some(nil): break
        }
    }

    func remove(_ channel: any Channel) {
        _ = state.withLock { $0.clients.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// Open WebSockets.
    var count: Int { state.withLock { $0.clients.count } }

    /// The latest snapshot's JSON.
    var latest: [UInt8]? { state.withLock { $0.latest } }

    /// Sends `json` to every WebSocket that keeps up (one still writing its previous snapshot skips
    /// this one: the next is complete anyway).
    func broadcast(_ json: [UInt8]) {
        let clients = state.withLock { state -> [any Channel] in
            state.latest = json
            return Array(state.clients.values)
        }
        for channel in clients where channel.isWritable { Self.send(json, to: channel) }
    }

    /// Sends a close frame to every WebSocket and forgets them.
    func closeAll() {
        let clients = state.withLock { state -> [any Channel] in
            state.closed = true
            defer { state.clients.removeAll() }
            return Array(state.clients.values)
        }
        for channel in clients { Self.close(channel) }
    }

    private static func send(_ json: [UInt8], to channel: any Channel) {
        let frame = WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(bytes: json))
        channel.writeAndFlush(frame, promise: nil)
    }

    static func close(_ channel: any Channel) {
        var data = channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: .goingAway)
        let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
        channel.writeAndFlush(frame).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// One WebSocket: joins the hub, answers pings and close frames, ignores everything else.
private final class DashboardWebSocketHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let hub: DashboardHub

    init(hub: DashboardHub) {
        self.hub = hub
    }

    func handlerAdded(context: ChannelHandlerContext) {
        hub.add(context.channel)
    }

    func channelInactive(context: ChannelHandlerContext) {
        hub.remove(context.channel)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .connectionClose:
            hub.remove(context.channel)
            var reply = context.channel.allocator.buffer(capacity: 2)
            reply.write(webSocketErrorCode: .normalClosure)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
                .whenComplete { _ in channel.close(promise: nil) }
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        default:
            break
        }
    }
}

/// One HTTP connection of the dashboard (until a WebSocket upgrade removes it).
private final class DashboardHTTPHandler: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "aemp-dashboard-http"

    private let access: DashboardAccess
    private let hub: DashboardHub
    private let model: DashboardModel

    init(access: DashboardAccess, hub: DashboardHub, model: DashboardModel) {
        self.access = access
        self.hub = hub
        self.model = model
    }

    /// A request URI's path.
    static func path(_ uri: String) -> String {
        uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? uri
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let path = Self.path(request.uri)
        let keepAlive = request.isKeepAlive
        let isHead = request.method == .HEAD
        let known = ["/", "/index.html", "/dashboard.js", "/dashboard.css", "/snapshot.json", "/db.json", "/ws"]
        guard known.contains(path) else {
            return Self.respond(context, .notFound, body: Array("not found: the dashboard is at /\n".utf8), keepAlive: keepAlive)
        }
        guard request.method == .GET || isHead else {
            return Self.respond(context, .methodNotAllowed, body: Array("read-only: only GET and HEAD\n".utf8), keepAlive: keepAlive)
        }
        // The assets hold no data; the loopback Host rule still applies to them.
        let isAsset = path == "/dashboard.js" || path == "/dashboard.css"
        let checked = isAsset ? DashboardAccess(token: nil, loopbackOnly: access.loopbackOnly) : access
        if let (status, text) = checked.check(uri: request.uri, headers: request.headers, webSocket: path == "/ws") {
            return Self.respond(context, status, body: Array(text.utf8), keepAlive: keepAlive)
        }
        switch path {
        case "/", "/index.html":
            Self.respond(context, .ok, type: "text/html; charset=utf-8", body: DashboardAssets.html, omitBody: isHead, keepAlive: keepAlive)
        case "/dashboard.js":
            Self.respond(
                context, .ok, type: "text/javascript; charset=utf-8", body: DashboardAssets.script, omitBody: isHead, keepAlive: keepAlive)
        case "/dashboard.css":
            Self.respond(context, .ok, type: "text/css; charset=utf-8", body: DashboardAssets.style, omitBody: isHead, keepAlive: keepAlive)
        case "/snapshot.json":
            let body = hub.latest ?? Array("{}".utf8)
            Self.respond(context, .ok, type: "application/json", body: body, omitBody: isHead, keepAlive: keepAlive)
        case "/db.json":
            let query = DashboardAccess.query(request.uri)
            let family = query["family"] ?? ""
            let page = Int(query["page"] ?? "0") ?? 0
            let model = self.model
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let promise = context.eventLoop.makePromise(of: DashboardDatabasePage?.self)
            promise.completeWithTask { await model.databasePage(family: family, page: page) }
            promise.futureResult.whenSuccess { page in
                if let page, let json = try? JSONEncoder().encode(page) {
                    Self.respond(bound.value, .ok, type: "application/json", body: Array(json), omitBody: isHead, keepAlive: keepAlive)
                } else {
                    Self.respond(bound.value, .notFound, body: Array("no such family: \(family)\n".utf8), keepAlive: keepAlive)
                }
            }
        default:
            // `/ws` without a valid upgrade.
            Self.respond(context, .badRequest, body: Array("/ws is a WebSocket\n".utf8), keepAlive: keepAlive)
        }
    }

    private static func respond(
        _ context: ChannelHandlerContext, _ status: HTTPResponseStatus, type: String = "text/plain; charset=utf-8",
        body: [UInt8], omitBody: Bool = false, keepAlive: Bool
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        headers.add(name: "Referrer-Policy", value: "no-referrer")
        if type.hasPrefix("text/html") {
            headers.add(
                name: "Content-Security-Policy",
                value: "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'")
        }
        writeHTTPResponse(context, status: status, headers: headers, body: body, omitBody: omitBody, keepAlive: keepAlive)
    }
}
