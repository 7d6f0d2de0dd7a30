import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

extension Node {
    /// Shuts the node down gracefully:
    ///
    /// 1. stops accepting connections and reconnecting (seeds, global nodes);
    /// 2. tells every connected node, then kills every local port with
    ///    ``KillReason/shutdown(node:message:)``: local monitors fire, and nodes that monitor a
    ///    port get the `kil0` before the connection closes (Perl nodes included);
    /// 3. waits up to `gracePeriod` for queued messages to leave (bytes waiting for a socket, and
    ///    messages waiting for a connection that is being made);
    /// 4. closes every connection; Swift peers report the node down with `reason` instead of the
    ///    socket's end of file, Perl peers with their usual `transport_error`;
    /// 5. then behaves as ``shutdown()``.
    ///
    /// A second call while one runs waits for it and returns an empty summary.
    ///
    /// - Parameters:
    ///   - gracePeriod: how long queued messages may take to leave (e.g.
    ///     ``NodeConfiguration/shutdownTimeout``).
    ///   - reason: the message of the ports' kill reason and of the peers' node-down reason.
    /// - Returns: what was killed, flushed and dropped; it is also logged.
    @discardableResult
    public func shutdown(gracePeriod: Duration, reason: String = "node shut down") async -> ShutdownSummary {
        let killReason = KillReason.shutdown(node: nodeID, message: reason)
        let started = await evaluate { $0.beginGracefulShutdown(reason: killReason, message: reason) }
        guard let started else {
            _ = try? await evaluate { $0.terminated.futureResult }.get()
            return ShutdownSummary(portsKilled: 0, connectionsClosed: 0, bytesFlushed: 0, bytesDropped: 0, messagesDropped: 0)
        }
        let deadline = ContinuousClock.now + gracePeriod
        while ContinuousClock.now < deadline, await evaluate({ !$0.isShutDown && !$0.isDrained }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return await evaluate { core in
            core.finishGracefulShutdown(portsKilled: started.ports, acceptedAtStart: started.accepted)
        }
    }

    /// A snapshot of the node's counters: traffic per peer, connections, handshake failures, ports
    /// and monitors.
    public func statistics() async -> NodeStatistics {
        await evaluate { $0.statistics() }
    }

    /// Reports the node's statistics to the swift-metrics backend now (it does so every
    /// ``NodeConfiguration/metricsInterval`` anyway); e.g. before a Prometheus scrape is answered.
    public func reportMetrics() async {
        await evaluate { $0.reportMetrics() }
    }
}

/// A node runs as a swift-service-lifecycle `Service`: start it with ``Node/start(_:group:dataGroup:logger:)``
/// and add it to a `ServiceGroup`. `run()` returns when the node shuts down; graceful shutdown of
/// the group shuts it down gracefully (``Node/shutdown(gracePeriod:reason:)`` with
/// ``NodeConfiguration/shutdownTimeout``), cancellation at once (``Node/shutdown()``).
///
/// ```swift
/// let node = try await Node.start(configuration)
/// let group = ServiceGroup(
///     configuration: .init(services: [node], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
extension Node: Service {
    /// Runs until the node shuts down (see the extension's documentation).
    public func run() async throws {
        let terminated = await evaluate { $0.terminated.futureResult }
        let graceful = Mutex<Task<ShutdownSummary, Never>?>(nil)
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await terminated.get()
            } onGracefulShutdown: {
                graceful.withLock { $0 = Task { await self.shutdown(gracePeriod: self.configuration.shutdownTimeout) } }
            }
            // The node is down; a graceful shutdown still finishes its report.
            if let task = graceful.withLock({ $0 }) { _ = await task.value }
        } onCancel: {
            Task { await self.shutdown() }
        }
    }
}
