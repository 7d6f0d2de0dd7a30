import AEMPCodecs
import AEMPHandle
import DequeModule
import Logging
import NIOCore

/// Another node as this node knows it: its connection, the messages waiting for it, and this node's
/// monitors of its ports. Perl: an `AnyEvent::MP::Node::Remote` object in `%NODE`.
///
/// Loop-confined to the owning ``NodeCore``.
final class RemoteNode {
    let nodeID: NodeID
    unowned let core: NodeCore

    /// The attached, authenticated connection while the node is up.
    var link: TransportConnection?
    /// Messages waiting for the connection (port name, elements), in order.
    var queue: Deque<(String, [Value])> = []
    /// Flow-controlled senders waiting for the queue to drain (``Node/send(to:_:)``).
    var queueWaiters: [CheckedContinuation<Void, Never>] = []
    /// Monitors of this node's ports: port name → monitor ID → action.
    var monitors: [String: [UInt64: MonitorAction]] = [:]

    /// A connect attempt is running (spec §7).
    var connecting = false
    var connectTimer: Scheduled<Void>?
    var dialTimer: Scheduled<Void>?
    /// The node's logger: the node's, with `aemp.peer` (made once).
    let logger: Logger
    /// Why the last handshake with the node failed during the current attempt (the text its log
    /// line gives), for the `connect timeout` reason.
    var lastHandshakeFailure: String?
    /// Why the last dial of the current attempt failed (the socket error, which names the address),
    /// used when no handshake failed.
    var lastDialFailure: String?
    /// The address lookup of the current attempt has answered.
    var addressesKnown = false
    /// Handshakes this node started towards the node for the current attempt.
    var dials: [ObjectIdentifier: TransportConnection] = [:]
    /// Raises the generation of the current connect attempt, so stale lookups and timers are ignored.
    var attempt: UInt64 = 0
    /// Traffic of the connections that ended (``NodeStatistics``).
    var pastTraffic = Traffic()

    init(nodeID: NodeID, core: NodeCore) {
        self.nodeID = nodeID
        self.core = core
        var logger = core.logger
        logger[metadataKey: "aemp.peer"] = "\(nodeID)"
        self.logger = logger
    }

    var isUp: Bool { link != nil }

    // MARK: Sending

    /// Sends `[portName, elements...]`, connecting first if needed (spec §7: connect on first use).
    func send(portName: String, _ elements: [Value]) {
        if let link {
            do {
                try link.send(portName: portName, elements)
            } catch {
                link.logger.error("cannot send a message to \(nodeID)#\(portName): \(error)")
            }
            return
        }
        queue.append((portName, elements))
        connect()
    }

    // MARK: Monitors

    func addMonitor(portName: String, id: UInt64, _ action: MonitorAction) {
        let first = monitors[portName]?.isEmpty ?? true
        monitors[portName, default: [:]][id] = action
        // Monitoring the node port sends nothing and opens no connection (spec §5.4).
        if first, !portName.isEmpty {
            send(portName: "", [.text("mon1"), .text(portName)])
        }
    }

    func removeMonitor(portName: String, id: UInt64) {
        guard monitors[portName]?.removeValue(forKey: id) != nil else { return }
        if monitors[portName]!.isEmpty {
            monitors[portName] = nil
            if !portName.isEmpty, isUp {
                send(portName: "", [.text("mon0"), .text(portName)])
            }
        }
    }

    /// `kil0` from the node: the monitors of that port fire once and are removed.
    func fireMonitors(portName: String, _ reason: KillReason) {
        guard let actions = monitors.removeValue(forKey: portName) else { return }
        core.observe(.portDied(PortID(node: nodeID, name: portName), reason))
        for id in actions.keys.sorted() {
            core.fire(actions[id]!, reason)
        }
    }

    // MARK: Connecting (spec §7)

    /// Starts a connect attempt unless one is running or the node is up.
    func connect() {
        guard !connecting, link == nil, !core.isShutDown else { return }
        connecting = true
        attempt &+= 1
        let generation = attempt
        let loop = core.eventLoop.assumeIsolatedUnsafeUnchecked()
        connectTimer = loop.scheduleTask(in: core.configuration.connectInterval.timeAmount) {
            guard self.attempt == generation, self.connecting else { return }
            self.fail(message: KillReason.connectTimeoutMessage(detail: self.connectFailureDetail()))
        }
        // A handshake with the node is already under way (e.g. its seed connection): wait for it.
        if core.pending.values.contains(where: { $0.0.peerGreeting?.nodeID == nodeID }) { return }
        core.lookupAddresses(of: nodeID) { addresses in
            guard self.attempt == generation, self.connecting else { return }
            self.addressesKnown = true
            guard let addresses, !addresses.isEmpty else {
                self.fail(message: KillReason.noKnownAddress)
                return
            }
            self.dial(addresses, index: 0, generation: generation)
        }
    }

    /// What the `connect timeout` reason adds in parentheses: `last attempt: ` and the last handshake
    /// failure with the node (also of a seed connection to it), else the last dial error; while the
    /// address lookup is still waiting for a database master, why no seed answered. `nil` when nothing
    /// failed (the node never answered).
    func connectFailureDetail() -> String? {
        if let lastHandshakeFailure { return "last attempt: \(lastHandshakeFailure)" }
        let seeds = core.seeds.filter { !$0.isSelf }
        if let failure = seeds.first(where: { $0.nodeID == nodeID && $0.lastFailure != nil })?.lastFailure {
            return "last attempt: \(failure)"
        }
        if let lastDialFailure { return "last attempt: \(lastDialFailure)" }
        guard !addressesKnown, core.database.master == nil else { return nil }
        if seeds.isEmpty { return "no database master to look up its address: no seeds configured" }
        let failures = seeds.compactMap { seed in seed.lastFailure.map { "seed \(seed.address): \($0)" } }
        return "no database master to look up its address"
            + (failures.isEmpty ? "" : " (\(failures.joined(separator: "; ")))")
    }

    /// Dials the addresses one after the other: the first at once, then one every dial interval
    /// (spec §7 step 3), going round until the attempt ends.
    private func dial(_ addresses: [String], index: Int, generation: UInt64) {
        guard attempt == generation, connecting else { return }
        // The node is dialling us and its handshake is under way: a dial of ours now would make two
        // connections that both sides then have to sort out (see NodeCore's simultaneous-connect
        // rule); wait for that one, and dial at the next interval if it failed meanwhile.
        let greeted = core.pending.values.contains { entry in
            if case .accepted = entry.1, entry.0.peerGreeting?.nodeID == nodeID { true } else { false }
        }
        if !greeted { core.dial(address: addresses[index % addresses.count], for: self) }
        let interval = core.configuration.dialInterval(addressCount: addresses.count)
        let jittered = TimeAmount.nanoseconds(Int64(Double(interval.timeAmount.nanoseconds) * Double.random(in: 0.9...1.0)))
        dialTimer = core.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: jittered) {
            self.dial(addresses, index: index + 1, generation: generation)
        }
    }

    /// A handshake to or from the node completed: it becomes the node's connection.
    func attach(_ connection: TransportConnection) {
        if let old = link {
            // Two handshakes completed: the newer one wins (spec §7 step 5).
            old.close()
            lost(message: KillReason.switchedConnections)
        }
        dials[ObjectIdentifier(connection)] = nil
        endAttempt()
        link = connection
        connection.attachedNode = self
        connection.logger.info("node \(nodeID) is up")
        core.nodeCameUp(nodeID)
        // Queued messages go out in order, unless a callback above took the node down again.
        while link === connection, let (portName, elements) = queue.popFirst() {
            send(portName: portName, elements)
        }
        resumeQueueWaiters()
    }

    /// The attached connection ended.
    func lost(message: String) {
        guard let old = link else { return }
        old.attachedNode = nil
        pastTraffic = pastTraffic + old.trafficTotals
        link = nil
        let reported = old.peerShutdownMessage ?? message
        old.logger.notice("node \(nodeID) is down: \(reported)")
        fail(message: reported, wasUp: true)
    }

    /// Nothing refers to this node any more: no connection or attempt, no queued message or waiting
    /// sender, no monitor of its ports.
    var isIdle: Bool {
        link == nil && !connecting && dials.isEmpty && queue.isEmpty && queueWaiters.isEmpty && monitors.isEmpty
    }

    /// Ends the attempt or the connection: every monitor of the node's ports fires with
    /// `("transport_error", node, message)`, queued messages are dropped, then node-down is announced
    /// if the node was up (spec §5.4).
    func fail(message: String, wasUp: Bool = false) {
        if !wasUp {
            logger.notice("cannot connect to node \(nodeID): \(message)", metadata: ["aemp.direction": "out"])
        }
        endAttempt()
        queue.removeAll()
        resumeQueueWaiters()
        let reason = KillReason.transportError(node: nodeID, message: message)
        let fired = monitors
        monitors.removeAll()
        for portName in fired.keys.sorted() {
            core.observe(.portDied(PortID(node: nodeID, name: portName), reason))
            for id in fired[portName]!.keys.sorted() {
                core.fire(fired[portName]![id]!, reason)
            }
        }
        if wasUp {
            core.nodeWentDown(nodeID, reason: reason)
        }
        core.retireIfIdle(self)
    }

    /// Stops timers and the handshakes of the current attempt.
    private func endAttempt() {
        connecting = false
        attempt &+= 1
        lastHandshakeFailure = nil
        lastDialFailure = nil
        addressesKnown = false
        connectTimer?.cancel()
        connectTimer = nil
        dialTimer?.cancel()
        dialTimer = nil
        let pending = dials
        dials.removeAll()
        for connection in pending.values where connection !== link {
            connection.close()
        }
    }

    /// Traffic since the first connection, the current one included.
    var traffic: Traffic {
        guard let link else { return pastTraffic }
        return pastTraffic + link.trafficTotals
    }

    func resumeQueueWaiters() {
        let waiters = queueWaiters
        queueWaiters.removeAll()
        for waiter in waiters { waiter.resume() }
    }

    /// Drops everything at node shutdown, without callbacks.
    func shutdown() {
        endAttempt()
        queue.removeAll()
        resumeQueueWaiters()
        monitors.removeAll()
        link?.attachedNode = nil
        link?.close()
        link = nil
    }
}

extension Duration {
    /// This duration as a NIO `TimeAmount`.
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
