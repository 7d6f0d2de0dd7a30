import AEMPCodecs
import AEMPHandle
import AEMPSocket
import Logging
import NIOCore
import Synchronization

/// What a graceful shutdown did (``Node/shutdown(gracePeriod:reason:)``).
public struct ShutdownSummary: Sendable, Hashable, CustomStringConvertible {
    /// Local ports killed with the shutdown reason.
    public var portsKilled: Int
    /// Connections that were up and closed at the end.
    public var connectionsClosed: Int
    /// Bytes that were waiting for the sockets when the shutdown began (or were written during it)
    /// and left before the connections closed.
    public var bytesFlushed: UInt64
    /// Bytes still waiting when the grace period ended; they were dropped.
    public var bytesDropped: Int
    /// Messages that were waiting for a connection that never came up; they were dropped.
    public var messagesDropped: Int
    /// Data connections (DataConn) that were still open and were closed.
    public var dataConnectionsClosed = 0
    /// Whether everything left within the grace period.
    public var completed: Bool { bytesDropped == 0 && messagesDropped == 0 }

    /// One line for a log: what was killed, flushed and dropped.
    public var description: String {
        var text =
            "\(portsKilled) port\(portsKilled == 1 ? "" : "s") killed, \(bytesFlushed) queued bytes flushed, "
            + "\(connectionsClosed) connection\(connectionsClosed == 1 ? "" : "s") closed"
        if dataConnectionsClosed > 0 { text += ", \(dataConnectionsClosed) data connection\(dataConnectionsClosed == 1 ? "" : "s") closed" }
        if completed {
            text += ", nothing dropped"
        } else {
            text += ", dropped \(bytesDropped) unsent bytes and \(messagesDropped) messages for unconnected nodes"
        }
        return text
    }
}

/// A data connection's handle, not kept alive by the node.
struct WeakHandle {
    weak var handle: Handle?
}

extension NodeCore {
    // MARK: Data connections

    func trackDataConnection(_ handle: Handle, totals: HandleTotals) {
        dataConnectionsOpened &+= 1
        dataConnections.append((WeakHandle(handle: handle), totals))
    }

    /// The open data connections (closed ones leave the list, their bytes stay counted), and the
    /// bytes of all of them.
    func dataConnectionFigures() -> (open: Int, sent: UInt64, received: UInt64) {
        dataConnections.removeAll { entry in
            let closed = entry.handle.handle.map { $0.isDestroyRequested } ?? true
            if closed {
                closedDataConnectionBytes.sent &+= entry.totals.written.load(ordering: .relaxed)
                closedDataConnectionBytes.received &+= entry.totals.received.load(ordering: .relaxed)
            }
            return closed
        }
        var (sent, received) = closedDataConnectionBytes
        for entry in dataConnections {
            sent &+= entry.totals.written.load(ordering: .relaxed)
            received &+= entry.totals.received.load(ordering: .relaxed)
        }
        return (dataConnections.count, sent, received)
    }

    /// Closes every open data connection (graceful shutdown).
    func closeDataConnections() -> Int {
        let open = dataConnections.compactMap { $0.handle.handle }.filter { !$0.isDestroyRequested }
        for handle in open { handle.destroy() }
        return open.count
    }

    // MARK: Forgetting anonymous nodes

    /// An anonymous node (a client with a fresh ID per run) that went down and is idle is forgotten:
    /// its traffic joins ``retiredAnonymousTraffic`` and its watches of local ports are dropped, so
    /// a long-running node that serves many short-lived clients does not grow. A named node is kept
    /// (it comes back under the same ID).
    func retireIfIdle(_ remote: RemoteNode) {
        guard remote.nodeID.isAnonymous, remote.isIdle, !isShutDown, remotes[remote.nodeID] === remote else { return }
        retiredAnonymousTraffic = retiredAnonymousTraffic + remote.traffic
        remotes[remote.nodeID] = nil
        if lastRemote === remote { lastRemote = nil }
        for port in ports.values { port.remoteWatchers.remove(remote.nodeID) }
    }

    // MARK: Statistics and metrics

    /// A snapshot of the node's counters.
    func statistics() -> NodeStatistics {
        var peers: [NodeID: NodeStatistics.Peer] = [:]
        var monitors = nodeMonitors.count
        for (id, remote) in remotes {
            peers[id] = NodeStatistics.Peer(
                isUp: remote.isUp, traffic: remote.traffic, queuedBytes: remote.link?.writeBufferLength ?? 0,
                queuedMessages: remote.queue.count)
            monitors += remote.monitors.values.reduce(0) { $0 + $1.count }
        }
        for port in ports.values { monitors += port.monitors.count + port.remoteWatchers.count }
        let data = dataConnectionFigures()
        return NodeStatistics(
            nodeID: nodeID, peers: peers, connectionAttempts: connectionAttempts, handshakeFailures: handshakeFailures,
            ports: ports.count, monitors: monitors, dataConnectionsOpen: data.open, dataConnectionsOpened: dataConnectionsOpened,
            dataBytesSent: data.sent, dataBytesReceived: data.received, retiredAnonymousTraffic: retiredAnonymousTraffic)
    }

    /// Reports to the metrics backend now.
    func reportMetrics() {
        guard NodeMetricsReporter.isActive else { return }
        metricsReporter.report(statistics())
    }

    /// Starts the periodic report (``NodeConfiguration/metricsInterval``).
    func startMetrics() {
        let interval = configuration.metricsInterval
        guard interval > .zero else { return }
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        metricsTimer = eventLoop.scheduleRepeatedTask(initialDelay: interval.timeAmount, delay: interval.timeAmount) { _ in
            bound.value.reportMetrics()
        }
    }

    // MARK: Graceful shutdown

    /// The first step of a graceful shutdown, on the loop: stop accepting and reconnecting, tell
    /// every connected peer, kill every local port with `reason` (local monitors fire, remote
    /// watchers get `kil0` before the close). Returns the number of ports killed and the bytes
    /// queued by then, or nil when the node is already down or stopping.
    func beginGracefulShutdown(reason: KillReason, message: String) -> (ports: Int, accepted: UInt64)? {
        guard !isShutDown, !isStopping else { return nil }
        isStopping = true
        logger.notice("shutting down: \(message)")
        for server in servers { server.cancel() }
        servers.removeAll()
        for index in seeds.indices { seeds[index].timer?.cancel() }
        for timer in keptConnectionTimers.values { timer.cancel() }
        keptConnectionTimers.removeAll()
        // Peers learn the reason before the close (`["", "", "shutdown", message]`: a no-op for Perl).
        for remote in remotes.values where remote.isUp {
            remote.send(portName: "", [.text(""), .text("shutdown"), .text(message)])
        }
        let names = ports.keys.sorted()
        for name in names { kill(name: name, reason: reason) }
        return (names.count, acceptedBytes())
    }

    /// Bytes the sockets of the up connections took so far.
    func acceptedBytes() -> UInt64 {
        remotes.values.reduce(0) { $0 &+ ($1.link?.handle.socketAcceptedBytes ?? 0) }
    }

    /// Whether everything queued has left: no bytes waiting for a socket, no message waiting for a
    /// connection.
    var isDrained: Bool {
        remotes.values.allSatisfy { remote in
            remote.queue.isEmpty && (remote.link.map { $0.writeBufferLength == 0 } ?? true)
        }
    }

    /// The last step: counts what could not leave, then closes everything.
    func finishGracefulShutdown(portsKilled: Int, acceptedAtStart: UInt64) -> ShutdownSummary {
        let accepted = acceptedBytes()
        var summary = ShutdownSummary(
            portsKilled: portsKilled, connectionsClosed: remotes.values.count { $0.isUp },
            bytesFlushed: accepted > acceptedAtStart ? accepted - acceptedAtStart : 0, bytesDropped: 0, messagesDropped: 0)
        for remote in remotes.values {
            summary.messagesDropped += remote.queue.count
            summary.bytesDropped += remote.link?.writeBufferLength ?? 0
        }
        summary.dataConnectionsClosed = closeDataConnections()
        logger.notice("shut down: \(summary)")
        shutdown()
        return summary
    }
}
