import AEMPCodecs
import AEMPHandle
import AEMPSocket
import Logging
import NIOCore
import NIOPosix

/// Why this node holds a handshake that is not attached yet.
enum ConnectionPurpose {
    /// Accepted on a listener.
    case accepted
    /// Dialled for a connect attempt to a node.
    case dial(NodeID)
    /// Dialled to a seed address (index into ``NodeCore/seeds``).
    case seed(Int)
}

/// A configured seed address and what this node learned about it (spec §7, "Seeds").
struct SeedState {
    let address: String
    /// The node ID its greeting announced.
    var nodeID: NodeID?
    /// The next retry delay.
    var backoff: Duration
    var timer: Scheduled<Void>?
    /// A dial to the seed is in progress.
    var dialing = false
    /// The seed is this node itself: never dialled again.
    var isSelf = false
    /// Why the last dial or handshake to the seed failed (cleared when its node comes up): a connect
    /// attempt that times out waiting for a database master says so.
    var lastFailure: String?
}

/// The receiver of an authenticated connection whose greeting asked for a protocol upgrade
/// (e.g. `aemp-dataconn`); it takes the connection's handle over, with the handshake result and the
/// rendezvous ID. Called on the node's loop; the handle may live on another loop.
typealias ProtocolUpgradeHandler = (Handle, HandshakeResult, _ dataConnID: String?) -> Void

extension NodeCore: TransportConnectionDelegate {
    // MARK: Handshake settings

    var handshakeConfiguration: HandshakeConfiguration {
        var settings = HandshakeConfiguration(node: configuration, nodeID: nodeID)
        settings.protocolUpgrades = Set(upgradeHandlers.keys)
        return settings
    }

    /// Starts a handshake on a new connection.
    func startConnection(
        _ channel: any Channel, direction: TransportConnection.Direction, purpose: ConnectionPurpose
    ) -> TransportConnection {
        let handle = Handle(channel: channel)
        let connection = TransportConnection(
            handle: handle, configuration: handshakeConfiguration, tls: tlsContext, direction: direction,
            handshakeTimeout: configuration.monitorTimeout, delegate: self)
        var peer: NodeID?
        if case .dial(let node) = purpose { peer = node }
        connection.logger = connectionLogger(direction: direction, peer: peer)
        connection.logger.trace("starting handshake as \(purpose)")
        pending[ObjectIdentifier(connection)] = (connection, purpose)
        connection.start()
        return connection
    }

    /// The logger of one connection: the node's, with the direction (`aemp.direction`: `in` for an
    /// accepted connection, `out` for a dialled one), the peer's address (`aemp.address`) and, when
    /// known, the peer's node ID (`aemp.peer`; for an accepted connection it is added once the peer's
    /// greeting names it). Made once per connection.
    func connectionLogger(direction: TransportConnection.Direction, peer: NodeID?) -> Logger {
        var connectionLogger = logger
        switch direction {
        case .dialled(let address):
            connectionLogger[metadataKey: "aemp.direction"] = "out"
            connectionLogger[metadataKey: "aemp.address"] = "\(address)"
        case .accepted(let address):
            connectionLogger[metadataKey: "aemp.direction"] = "in"
            if let address { connectionLogger[metadataKey: "aemp.address"] = "\(address)" }
        }
        if let peer { connectionLogger[metadataKey: "aemp.peer"] = "\(peer)" }
        return connectionLogger
    }

    /// The logger for lines about what `node` sent: its connection's (with `aemp.peer` and
    /// `aemp.direction`) while it is up, else the node's with `aemp.peer`.
    func peerLogger(_ node: NodeID) -> Logger {
        guard let remote = remotes[node] else { return logger }
        return remote.link?.logger ?? remote.logger
    }

    /// The logger for messages about dialling `address` (before any connection exists).
    func dialLogger(_ address: String, peer: NodeID?) -> Logger {
        connectionLogger(direction: .dialled(address: address), peer: peer)
    }

    // MARK: Listening

    /// Opens a listener per bind and records the concrete addresses (spec §1.3).
    func listen() throws {
        for bind in configuration.binds {
            guard let parsed = parseHostPort(bind, defaultPort: 0) else {
                throw NodeError.invalidBind(bind)
            }
            let wildcard = parsed.host == "*"
            let server: TCPServer
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            let loop = eventLoop
            do {
                server = try tcpServer(
                    host: wildcard ? nil : parsed.host, service: parsed.port, on: eventLoop
                ) { connection in
                    loop.execute { bound.value.accepted(connection) }
                }
            } catch {
                throw NodeError.cannotListen(bind, String(describing: error))
            }
            servers.append(server)
            let port = String(server.localPort)
            if wildcard {
                listenerAddresses += Self.localAddresses().map { formatHostPort(host: $0, port: port) }
            } else {
                listenerAddresses.append(formatHostPort(host: server.localHost, port: port))
            }
        }
    }

    private func accepted(_ connection: TCPConnection) {
        guard !isShutDown else {
            connection.channel.close(promise: nil)
            return
        }
        let peer = formatHostPort(host: connection.peerHost, port: String(connection.peerPort))
        _ = startConnection(connection.channel, direction: .accepted(peerAddress: peer), purpose: .accepted)
    }

    /// The addresses a wildcard bind publishes: those of this machine's interfaces that another host
    /// can reach (``publishableAddresses(_:)``).
    static func localAddresses() -> [String] {
        let devices = (try? System.enumerateDevices()) ?? []
        return publishableAddresses(devices.compactMap { $0.address?.ipAddress })
    }

    /// What Perl's kernel publishes for a `*` bind, given the interface addresses: every IPv4 address
    /// but 127.0.0.0/8, and only the IPv6 addresses that are not loopback (`::1`), link-local
    /// (`fe80::/10`), unspecified or multicast: global, unique-local and site-local
    /// ones. So a peer on another host never gets an address that leads back to itself. Only a host
    /// with no such address (loopback alone) publishes its loopback addresses, so nodes on it still
    /// reach each other. IPv4 first, each family in address order, no duplicates.
    static func publishableAddresses(_ addresses: [String]) -> [String] {
        var parsed: [IPAddress] = []
        for text in addresses {
            guard let address = parseIP(text), !parsed.contains(address) else { continue }
            parsed.append(address)
        }
        let reachable = parsed.filter(isReachableFromOtherHosts)
        let chosen = reachable.isEmpty ? parsed.filter(isLoopback) : reachable
        return chosen.sorted { lhs, rhs in
            lhs.family != rhs.family ? lhs.family == .ipv4 : lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
        }.map(formatIP)
    }

    private static func isLoopback(_ address: IPAddress) -> Bool {
        address.family == .ipv4 ? address.bytes[0] == 127 : address == .ipv6Loopback
    }

    private static func isReachableFromOtherHosts(_ address: IPAddress) -> Bool {
        let bytes = address.bytes
        if address.family == .ipv4 { return bytes[0] != 127 && bytes != IPAddress.ipv4Any.bytes }
        if address == .ipv6Loopback || address == .ipv6Any { return false }
        if bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 { return false }  // fe80::/10 link-local
        if bytes[0] == 0xFF { return false }  // multicast
        return true
    }

    // MARK: Dialling

    /// Dials one address for a connect attempt of `remote`; a failure is noted for the attempt's
    /// `connect timeout` reason.
    func dial(address: String, for remote: RemoteNode) {
        let generation = remote.attempt
        dialAddress(address, logger: dialLogger(address, peer: remote.nodeID), failed: { text in
            guard remote.attempt == generation, remote.connecting else { return }
            remote.lastDialFailure = text
        }) { channel in
            guard remote.connecting, !self.isShutDown else {
                channel.close(promise: nil)
                return
            }
            let connection = self.startConnection(channel, direction: .dialled(address: address), purpose: .dial(remote.nodeID))
            remote.dials[ObjectIdentifier(connection)] = connection
        }
    }

    /// Connects to `address` ("host:port") on the node's loop; failures are only logged (spec §8: dial
    /// errors end in `connect timeout`).
    func dialAddress(
        _ address: String, logger: Logger, failed: ((String) -> Void)? = nil,
        _ connected: @escaping (any Channel) -> Void
    ) {
        guard let target = parseHostPort(address) else {
            logger.warning("cannot dial \(address): not a host:port address")
            failed?("\(address): not a host:port address")
            return
        }
        // The guard keeps the attempt alive (dropping it would abort it, as in Perl).
        connectionAttempts &+= 1
        dialCounter &+= 1
        let key = dialCounter
        let bound = NIOLoopBound((self, connected, failed), eventLoop: eventLoop)
        let loop = eventLoop
        let guardian = tcpConnect(host: target.host, service: target.port, on: eventLoop, connect: { outcome in
            loop.execute {
                let (core, connected, failed) = bound.value
                core.dialGuards[key] = nil
                if let connection = outcome.connection {
                    connected(connection.channel)
                } else {
                    let text = outcome.error.map { "\($0)" } ?? "connect failed"
                    logger.debug("cannot dial \(address): \(text)")
                    failed?(text)
                }
            }
        })
        dialGuards[key] = guardian
    }

    /// Dials with a protocol upgrade greeting (spec §9.1), on ``dataLoop`` (``UpgradeDial``).
    func dialUpgrade(address: String, protocolName: String, dataConnID: String, failed: @escaping (String) -> Void) {
        guard !isShutDown else { return }
        guard let target = parseHostPort(address) else {
            dialLogger(address, peer: nil).warning("cannot dial \(address): not a host:port address")
            failed("\(address): not a host:port address")
            return
        }
        dialCounter &+= 1
        let dial = UpgradeDial(
            key: dialCounter, core: self, loop: dataLoop, address: address, protocolName: protocolName,
            dataConnID: dataConnID)
        upgradeDials[dial.key] = (dial, failed)
        dial.start(host: target.host, port: target.port)
    }

    /// An upgrade dial ended: the handle goes to the protocol's handler, a failure to whoever dialled.
    func upgradeDialEnded(_ key: UInt64, _ outcome: UpgradeDial.Outcome) {
        let entry = upgradeDials.removeValue(forKey: key)
        switch outcome {
        case .success(let (handle, result, dataConnID)):
            guard entry != nil, !isShutDown, let handler = upgradeHandlers[result.protocolName] else {
                handle.destroy()
                return
            }
            handler(handle, result, dataConnID)
        case .failure(let failure):
            (entry?.dial.logger ?? logger).debug("upgrade dial failed: \(failure.message)")
            entry?.failed(failure.message)
        }
    }

    // MARK: Seeds

    func startSeeds() {
        seeds = configuration.seeds.map { SeedState(address: $0, backoff: Self.initialSeedBackoff()) }
        for index in seeds.indices {
            dialSeed(index)
        }
    }

    static func initialSeedBackoff() -> Duration {
        .milliseconds(Int64(600 * Double.random(in: 1...2)))
    }

    func dialSeed(_ index: Int) {
        guard !isShutDown, seeds.indices.contains(index) else { return }
        seeds[index].timer?.cancel()
        seeds[index].timer = nil
        let seed = seeds[index]
        if seed.isSelf || seed.dialing { return }
        if let node = seed.nodeID, remotes[node]?.isUp == true { return }
        seeds[index].dialing = true
        let seedLogger = dialLogger(seed.address, peer: seed.nodeID)
        seedLogger.trace("dialling seed \(seed.address)")
        dialAddress(seed.address, logger: seedLogger, failed: { text in
            guard self.seeds.indices.contains(index) else { return }
            self.seeds[index].lastFailure = text
        }) { channel in
            guard !self.isShutDown else {
                channel.close(promise: nil)
                return
            }
            _ = self.startConnection(channel, direction: .dialled(address: seed.address), purpose: .seed(index))
        }
        // A dial that fails before any handshake starts is retried like a failed handshake.
        scheduleSeedRetry(index)
    }

    /// Retries a seed later, doubling the delay up to `monitor_timeout`.
    func scheduleSeedRetry(_ index: Int) {
        guard !isShutDown, !isStopping, seeds.indices.contains(index), !seeds[index].isSelf else { return }
        let delay = seeds[index].backoff
        seeds[index].backoff = min(delay * 2, configuration.monitorTimeout)
        seeds[index].timer?.cancel()
        seeds[index].timer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: delay.timeAmount) {
            self.seeds[index].dialing = false
            self.dialSeed(index)
        }
    }

    // MARK: TransportConnectionDelegate

    func connection(_ c: TransportConnection, greetedBy greeting: Greeting) {
        let peer = greeting.nodeID
        c.logger[metadataKey: "aemp.peer"] = "\(peer)"
        c.logger.trace("greeted by \(peer) (provider \(greeting["provider"] ?? "none"))")
        guard let (_, purpose) = pending[ObjectIdentifier(c)] else { return }
        if case .seed(let index) = purpose, seeds.indices.contains(index) {
            seeds[index].nodeID = peer
            if peer == nodeID {
                // Our own seed list contains us: we are a global node (spec §6.1).
                seeds[index].isSelf = true
                seeds[index].timer?.cancel()
                becomeGlobal()
            } else {
                var addresses = knownAddresses[peer] ?? []
                if !addresses.contains(seeds[index].address) { addresses.append(seeds[index].address) }
                knownAddresses[peer] = addresses
                databaseSeedGreeted(peer)
            }
        }
    }

    /// An accepted connection asking for a protocol upgrade this node serves (DataConn) moves to
    /// ``dataLoop`` right after the peer's greeting, before TLS starts: its handshake, its TLS state
    /// and the data connection then live there (``UpgradeDial/adopt(_:_:)``).
    func connection(_ c: TransportConnection, moveAfterGreeting greeting: Greeting)
        -> (loop: any EventLoop, resume: @Sendable (TransportConnection.Resumption, Result<Handle, any Error>) -> Void)?
    {
        let key = ObjectIdentifier(c)
        // (`dataLoop` last: it is chosen on first use.)
        guard greeting.protocolName != Greeting.aemp, upgradeHandlers[greeting.protocolName] != nil,
            case .accepted? = pending[key]?.1, dataLoop !== eventLoop
        else { return nil }
        dialCounter &+= 1
        let accepted = UpgradeDial(key: dialCounter, core: self, loop: dataLoop)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        let logger = c.logger
        let label = "\(greeting.protocolName) connection from \(greeting.nodeID)"
        return (dataLoop, { state, outcome in
            // On the data loop. The registration hop runs before any outcome of the handshake's.
            bound.eventLoop.execute {
                let core = bound.value
                core.pending[key] = nil
                guard !core.isShutDown else {
                    accepted.loop.execute { accepted.cancel() }
                    return
                }
                core.upgradeDials[accepted.key] = (accepted, { logger.notice("\(label) failed: \($0)") })
            }
            switch outcome {
            case .success(let handle): accepted.adopt(state, handle)
            case .failure(let error): accepted.lost("moving to the data loop failed: \(error)")
            }
        })
    }

    /// Whether a greeting from `node` is refused as "already connected" (spec §3.3 step 5): the node
    /// has an attached connection, or both nodes are dialling each other at this moment.
    ///
    /// Deviation: Perl refuses only for an attached connection; when two handshakes between the same
    /// pair complete, the newer replaces the older (spec §7 step 5), and the two sides may replace
    /// opposite ones, so that each closes the connection the other kept and messages are lost
    /// (reported to monitors as `switched connections` or a reset). For a simultaneous connect the
    /// connection dialled by the node with the smaller ID is kept, decided alike on both sides: that
    /// node refuses the other's connection while its own dial is in progress, and the other accepts.
    func connection(_ c: TransportConnection, isAlreadyConnected node: NodeID) -> Bool {
        guard let remote = remotes[node] else { return false }
        if remote.isUp { return true }
        if case .accepted = c.direction, !remote.dials.isEmpty, nodeID < node { return true }
        return false
    }

    func connectionAuthenticated(_ c: TransportConnection, _ result: HandshakeResult) -> Bool {
        pending[ObjectIdentifier(c)] = nil
        if result.protocolName != Greeting.aemp {
            guard let handler = upgradeHandlers[result.protocolName] else {
                c.close()
                return false
            }
            handOverUpgrade(c.handle, result, c.dataConnID ?? result.peerGreeting["dataconn_id"], logger: c.logger, to: handler)
            return false
        }
        let node = result.peerNodeID
        remote(node).attach(c)
        return true
    }

    /// Hands an accepted protocol upgrade connection whose handshake stayed on the node's loop (it
    /// could not move after the greeting) to its handler. A plain one first moves to ``dataLoop``
    /// (``AEMPHandle/Handle/move(to:)``), so that a bulk transfer over it does not hold up the node's
    /// messages; a TLS one stays (its TLS state cannot move).
    private func handOverUpgrade(
        _ handle: Handle, _ result: HandshakeResult, _ dataConnID: String?, logger: Logger,
        to handler: @escaping ProtocolUpgradeHandler
    ) {
        guard dataLoop !== eventLoop else {
            handler(handle, result, dataConnID)
            return
        }
        let bound = NIOLoopBound((self, handler), eventLoop: eventLoop)
        let loop = eventLoop
        // After the connection's own bookkeeping for the hand-over.
        loop.assumeIsolatedUnsafeUnchecked().execute {
            let (core, handler) = bound.value
            guard !core.isShutDown else {
                handle.destroy()
                return
            }
            guard let moving = handle.move(to: core.dataLoop) else {
                handler(handle, result, dataConnID)
                return
            }
            moving.whenComplete { outcome in
                loop.execute {
                    let (core, handler) = bound.value
                    switch outcome {
                    case .success(let moved):
                        if core.isShutDown {
                            moved.destroy()
                        } else {
                            handler(moved, result, dataConnID)
                        }
                    case .failure(let error):
                        logger.notice(
                            "\(result.protocolName) connection from \(result.peerNodeID) lost while moving to the data loop: \(error)")
                    }
                }
            }
        }
    }

    func connection(_ c: TransportConnection, received message: consuming [Value]) {
        guard let remote = c.attachedNode, remote.link === c else { return }
        // The transport guarantees a text port name in element 0. The decoded array is handed over
        // (`consuming`), so it is ours alone: removing the name in place spares a second array per
        // message.
        var elements = message
        guard case .text(let portName)? = elements.first else { return }
        elements.removeFirst()
        if let window = busyPollWindow { keepPolling(for: window) }
        deliver(name: portName, elements, source: remote.nodeID)
    }

    func connection(_ c: TransportConnection, closedWith message: String, authenticated: Bool) {
        let entry = pending.removeValue(forKey: ObjectIdentifier(c))
        if !authenticated {
            handshakeFailures[NodeStatistics.failureCategory(message), default: 0] &+= 1
        }
        if authenticated, let node = c.result?.peerNodeID, let remote = remotes[node], remote.link === c {
            remote.lost(message: message)
            return
        }
        guard let (_, purpose) = entry else { return }
        let failure = c.failureDescription(message)
        let greeted = c.peerGreeting?.nodeID
        if !authenticated { observeHandshakeFailure(c, message: message, failure: failure) }
        switch purpose {
        case .accepted:
            if greeted == nodeID {
                // Our own seed dial reaching ourselves (spec §6.1): expected, not worth a notice.
                c.logger.debug("connection from ourselves refused: \(failure)")
            } else {
                c.logger.notice("connection from \(greeted?.description ?? "unknown node") failed: \(failure)")
            }
        case .dial(let node):
            c.logger.notice("connection to \(node) failed: \(failure)")
            if let remote = remotes[node], remote.dials.removeValue(forKey: ObjectIdentifier(c)) != nil {
                remote.lastHandshakeFailure = failure
            }
        case .seed(let index):
            guard seeds.indices.contains(index), !seeds[index].isSelf, greeted != nodeID else { break }
            c.logger.notice("connection to seed \(seeds[index].address) failed: \(failure)")
            seeds[index].lastFailure = failure
            // A seed dial is a connection attempt to that node too.
            if let greeted, let remote = remotes[greeted], remote.connecting { remote.lastHandshakeFailure = failure }
        }
    }

    // MARK: Node up and down

    func nodeCameUp(_ node: NodeID) {
        for index in seeds.indices where seeds[index].nodeID == node { seeds[index].lastFailure = nil }
        announce(node: node, up: true, reason: .normal)
        databaseNodeUp(node)
    }

    func nodeWentDown(_ node: NodeID, reason: KillReason) {
        announce(node: node, up: false, reason: reason)
        databaseNodeDown(node)
        for index in seeds.indices where seeds[index].nodeID == node {
            seeds[index].dialing = false
            seeds[index].backoff = Self.initialSeedBackoff()
            scheduleSeedRetry(index)
        }
    }

    /// The record of a node, created on first use.
    func remote(_ node: NodeID) -> RemoteNode {
        if let last = lastRemote, last.nodeID == node { return last }
        let found: RemoteNode
        if let existing = remotes[node] {
            found = existing
        } else {
            found = RemoteNode(nodeID: node, core: self)
            remotes[node] = found
        }
        lastRemote = found
        return found
    }

    // MARK: Shutdown

    func shutdownNetwork() {
        for server in servers { server.cancel() }
        let guards = dialGuards
        dialGuards.removeAll()
        for guardian in guards.values { guardian.cancel() }
        servers.removeAll()
        for index in seeds.indices { seeds[index].timer?.cancel() }
        seeds.removeAll()
        for remote in remotes.values { remote.shutdown() }
        let open = pending.values.map(\.0)
        pending.removeAll()
        for connection in open { connection.close() }
        let dials = upgradeDials.values.map(\.dial)
        upgradeDials.removeAll()
        for dial in dials { dial.loop.execute { dial.cancel() } }
    }
}

/// Why a node could not start. Perl: `configure` croaks.
public struct NodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The explanation.
    public var message: String

    /// Creates an error.
    public init(_ message: String) {
        self.message = message
    }

    static func invalidBind(_ bind: String) -> NodeError {
        NodeError("bind '\(bind)' is not a host:port address")
    }

    static func cannotListen(_ bind: String, _ reason: String) -> NodeError {
        NodeError("cannot listen on '\(bind)': \(reason)")
    }

    /// The explanation.
    public var description: String { message }
}

extension NodeCore {
    /// Keeps the loop polling its sockets for ``NodeConfiguration/busyPoll`` after now: a timer that
    /// re-arms itself every few microseconds until the deadline passes. The loop's selector then
    /// waits at most that long, so the thread never sleeps deeply and arriving bytes are read without
    /// a full wake-up. (An immediate task would not do: the loop runs every ready task before it
    /// polls again, so a task that re-queues itself would keep the sockets unread.)
    func keepPolling(for window: TimeAmount) {
        busyPollUntil = .now() + window
        guard !busyPolling else { return }
        busyPolling = true
        scheduleBusyPollTick()
    }

    private func scheduleBusyPollTick() {
        eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: Self.busyPollPeriod) { self.busyPollTick() }
    }

    /// How often the busy-poll timer fires.
    static let busyPollPeriod = TimeAmount.microseconds(5)

    private func busyPollTick() {
        guard !isShutDown, NIODeadline.now() < busyPollUntil else {
            busyPolling = false
            return
        }
        scheduleBusyPollTick()
    }
}
