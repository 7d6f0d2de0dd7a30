import AEMP
import Logging
import Metrics
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle

/// The Prometheus endpoint of `aemp run metrics <host:port>`: an HTTP/1.1 server on SwiftNIO that
/// answers `GET /metrics` with the Prometheus text format of a swift-prometheus registry (the
/// backend this process bootstraps for swift-metrics), after asking the node to report its current
/// figures. Any other path is 404, any other method 405. A `Service`: it stops accepting on
/// graceful shutdown.
final class MetricsEndpoint: Service, Sendable {
    /// The registry the process's metrics go to.
    let registry: PrometheusCollectorRegistry
    private let node: Node
    private let channel: any Channel
    private let logger: Logger

    /// The address it listens on (`ip:port`).
    var address: String {
        guard let local = channel.localAddress, let ip = local.ipAddress, let port = local.port else { return "?" }
        return local.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// Binds `host:port` (port 0 picks one) and bootstraps swift-metrics with a Prometheus factory on
    /// `registry`, unless the process already has a backend.
    static func start(
        host: String, port: Int, node: Node, registry: PrometheusCollectorRegistry, logger: Logger
    ) async throws -> MetricsEndpoint {
        let provider = NodeProvider(node: node, registry: registry)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(provider: provider))
                }
            }
            .bind(host: host, port: port).get()
        return MetricsEndpoint(registry: registry, node: node, channel: channel, logger: logger)
    }

    private init(registry: PrometheusCollectorRegistry, node: Node, channel: any Channel, logger: Logger) {
        self.registry = registry
        self.node = node
        self.channel = channel
        self.logger = logger
    }

    /// Serves until graceful shutdown or cancellation, then closes the listener.
    func run() async throws {
        let channel = self.channel
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await channel.closeFuture.get()
            } onGracefulShutdown: {
                channel.close(promise: nil)
            }
        } onCancel: {
            channel.close(promise: nil)
        }
    }

    /// Closes the listener.
    func close() async {
        try? await channel.close()
    }
}

/// What a scrape reads: the node's figures, reported first, then the registry's text.
struct NodeProvider: Sendable {
    let node: Node
    let registry: PrometheusCollectorRegistry

    func scrape() async -> [UInt8] {
        await node.reportMetrics()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        registry.emit(into: &bytes)
        return bytes
    }
}

/// One HTTP connection of the endpoint.
private final class MetricsHTTPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let provider: NodeProvider

    init(provider: NodeProvider) {
        self.provider = provider
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let keepAlive = request.isKeepAlive
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        switch (request.method, path) {
        case (.GET, "/metrics"), (.HEAD, "/metrics"):
            let isHead = request.method == .HEAD
            let provider = self.provider
            let promise = context.eventLoop.makePromise(of: [UInt8].self)
            promise.completeWithTask { await provider.scrape() }
            promise.futureResult.whenSuccess { bytes in
                Self.respond(
                    bound.value, status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: bytes,
                    omitBody: isHead, keepAlive: keepAlive)
            }
        case (_, "/metrics"):
            Self.respond(context, status: .methodNotAllowed, body: Array("only GET and HEAD\n".utf8), keepAlive: keepAlive)
        default:
            Self.respond(context, status: .notFound, body: Array("not found: try /metrics\n".utf8), keepAlive: keepAlive)
        }
    }

    private static func respond(
        _ context: ChannelHandlerContext, status: HTTPResponseStatus, contentType: String = "text/plain; charset=utf-8",
        body: [UInt8], omitBody: Bool = false, keepAlive: Bool
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        writeHTTPResponse(context, status: status, headers: headers, body: body, omitBody: omitBody, keepAlive: keepAlive)
    }
}
