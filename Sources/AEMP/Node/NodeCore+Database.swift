import AEMPCodecs
import Logging
import NIOCore

/// The node's side of the global database (spec §6): it feeds the sans-IO ``DatabaseClient`` with
/// node events and messages and carries out the actions it returns.
extension NodeCore {
    /// Whether a node-port tag belongs to the global database protocol (gproto, spec §6.3).
    func isDatabaseTag(_ tag: String) -> Bool {
        DatabaseClient.handles(tag: tag)
    }

    func databaseReceive(tag: String, _ arguments: [Value], from source: NodeID) {
        peerLogger(source).trace("database message \(tag) from \(source)")
        apply(database.receive(from: source, tag: tag, arguments: arguments))
    }

    /// Finds the listener addresses of a node (spec §7 step 2): addresses learned from seeds and
    /// earlier lookups first, then the database (a global node answers at once, any other node asks
    /// its master with `g_find`).
    func lookupAddresses(of node: NodeID, _ completion: @escaping ([String]?) -> Void) {
        if let known = knownAddresses[node], !known.isEmpty {
            completion(known)
            return
        }
        addressWaiters[node, default: []].append(completion)
        if addressWaiters[node]!.count == 1 {
            apply(database.lookup(node))
        }
    }

    /// A node's listener list (family `'l`), for DataConn.
    func lookupListeners(of node: NodeID, _ completion: @escaping ([String]?) -> Void) {
        lookupAddresses(of: node, completion)
    }

    func databaseStart() {
        apply(database.setListeners(listenerAddresses))
    }

    func databaseSeedGreeted(_ node: NodeID) { apply(database.seedGreeted(node)) }
    func becomeGlobal() { apply(database.becomeGlobal()) }
    func databaseNodeUp(_ node: NodeID) { apply(database.nodeUp(node)) }
    func databaseNodeDown(_ node: NodeID) {
        apply(database.nodeDown(node))
        if keptConnections.contains(node) { scheduleKeptConnection(node) }
    }
    func databasePortDied(_ port: PortID) { apply(database.portDied(port)) }

    func databaseCancel(_ id: UInt64) {
        guard let monitor = databaseMonitors.removeValue(forKey: id) else { return }
        apply(database.dbMonitorCancel(monitor.id))
    }

    /// Carries out what the database logic asks for, in order.
    func apply(_ actions: [DatabaseAction]) {
        for action in actions {
            switch action {
            case .send(let node, let message):
                guard let portName = message.first?.stringValue else { continue }
                send(to: PortID(node: node, name: portName), Array(message.dropFirst()))
            case .keepConnected(let node):
                if keptConnections.insert(node).inserted, remotes[node]?.isUp != true {
                    remote(node).connect()
                }
            case .stopKeepingConnected(let node):
                keptConnections.remove(node)
                keptConnectionTimers.removeValue(forKey: node)?.cancel()
            case .lookupResult(let node, let addresses):
                if let addresses, !addresses.isEmpty { knownAddresses[node] = addresses }
                for waiter in addressWaiters.removeValue(forKey: node) ?? [] {
                    waiter(addresses)
                }
            case .queryResult(let id, let result):
                databaseQueries.removeValue(forKey: id)?(.success(result))
            case .monitorEvent(let id, let change):
                for monitor in databaseMonitors.values where monitor.id == id {
                    monitor.callback(change)
                }
            case .masterChanged(let master):
                if let master {
                    logger.info("database master is \(master)")
                } else {
                    logger.notice("no database master connected")
                }
            case .becameGlobal:
                logger.info("this node is a global node")
            case .malformed(let node, let tag, let reason):
                peerLogger(node).warning("error processing node message from \(node): malformed '\(tag)' message: \(reason)")
            }
        }
    }

    /// Reconnects a node the database wants kept connected (global nodes), with back-off.
    func scheduleKeptConnection(_ node: NodeID, delay: Duration? = nil) {
        guard !isShutDown, !isStopping else { return }
        let wait = delay ?? .milliseconds(Int64(300 * Double.random(in: 1...2)))
        keptConnectionTimers[node]?.cancel()
        keptConnectionTimers[node] = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: wait.timeAmount) {
            self.keptConnectionTimers[node] = nil
            guard self.keptConnections.contains(node), self.remotes[node]?.isUp != true else { return }
            self.remote(node).connect()
            self.scheduleKeptConnection(node, delay: min(wait * 2, self.configuration.monitorTimeout))
        }
    }

    // MARK: User API

    func query(
        _ make: (DatabaseClient) -> (DatabaseRequestID, [DatabaseAction]), timeout: Duration,
        _ completion: @escaping (Result<DatabaseQueryResult, CallError>) -> Void
    ) {
        guard !isShutDown else { return completion(.failure(.nodeShutDown)) }
        let (id, actions) = make(database)
        let timer = eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: timeout.timeAmount) {
            guard let waiting = self.databaseQueries.removeValue(forKey: id) else { return }
            self.database.cancelQuery(id)
            waiting(.failure(.timeout(timeout)))
        }
        databaseQueries[id] = { result in
            timer.cancel()
            completion(result)
        }
        apply(actions)
    }

    func monitorDatabase(_ family: String, _ callback: @escaping @Sendable (DatabaseChange) -> Void) -> MonitorKey? {
        guard !isShutDown else { return nil }
        let key = makeMonitorID()
        let (id, actions) = database.dbMonitor(family)
        databaseMonitors[key] = (id, callback)
        apply(actions)
        return .database(id: key)
    }
}
