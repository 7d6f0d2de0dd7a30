import AEMPCodecs
import AEMPHandle
import NIOCore
import Synchronization

/// The hooks protocol extensions (DataConn) use; not part of the public API.
extension Node {
    /// Runs `body` on the node's loop with the loop-confined state.
    package func onLoop(_ body: @escaping @Sendable (NodeExtensionContext) -> Void) {
        perform { core in body(NodeExtensionContext(core: core)) }
    }

    /// Registers a library function callable by name from other nodes, allowed in secure mode; in
    /// place when this returns.
    package func registerBuiltinFunction(_ name: String, _ body: @escaping NodeFunction) {
        functions.set(name, body, builtin: true)
    }

    /// The extension object stored under `key`, created with `make` the first time (any thread).
    package func extensionObject<T: AnyObject & Sendable>(_ key: String, make: () -> T) -> T {
        extensionObjects.withLock { objects in
            if let existing = objects[key] as? T { return existing }
            let created = make()
            objects[key] = created
            return created
        }
    }
}

/// Loop-confined access to a node for protocol extensions. Only valid inside ``Node/onLoop(_:)``.
package struct NodeExtensionContext: @unchecked Sendable {
    let core: NodeCore

    /// The node.
    package var node: Node { core.facade }

    /// Whether the node was shut down.
    package var isShutDown: Bool { core.isShutDown }

    /// The next value of the node's Perl-style counter (`b`, `c`, …), e.g. for rendezvous IDs.
    package func nextCounter() -> String {
        node.names.withLock { $0.nextCounter() }
    }

    /// This node's listener addresses.
    package var listenerAddresses: [String] { core.listenerAddresses }

    /// Counts an established data connection in the node's statistics and closes it when the node
    /// shuts down gracefully. Call before the handle reaches its user; it is settled on its own loop
    /// (``AEMPHandle/Handle/countBytes(into:)``).
    package func trackDataConnection(_ handle: Handle) {
        let totals = HandleTotals()
        core.trackDataConnection(handle, totals: totals)
        if handle.eventLoop.inEventLoop {
            handle.countBytes(into: totals)
        } else {
            handle.eventLoop.execute { handle.countBytes(into: totals) }
        }
    }

    /// Registers the receiver of authenticated connections whose greeting names `protocolName`
    /// (spec §3.3 step 2). It gets the connection's handle, quiescent, with any buffered bytes, the
    /// handshake result and the rendezvous ID, on the node's loop. The handle lives on the node's data
    /// loop: a dialled connection is made there, an accepted one moves there after the peer's
    /// greeting (or, when it could not move then, after the handshake if it is plain).
    package func registerUpgrade(
        _ protocolName: String, _ handler: @escaping (Handle, HandshakeResult, _ dataConnID: String?) -> Void
    ) {
        core.upgradeHandlers[protocolName] = handler
    }

    /// Finds a node's listener addresses (database family `'l`).
    package func lookupListeners(of node: NodeID, _ completion: @escaping ([String]?) -> Void) {
        core.lookupListeners(of: node, completion)
    }

    /// Dials `address` with a protocol upgrade greeting (`aemp-dataconn` with `dataconn_id`).
    ///
    /// The connect and the handshake run on another loop of the node's group when it has one (the
    /// data loop), where the connection then stays. On success the registered upgrade handler gets
    /// the handle; on failure `failed` gets the error text (connect error or handshake failure). Both
    /// are called on the node's loop.
    package func dialUpgrade(
        address: String, protocolName: String, dataConnID: String, failed: @escaping (String) -> Void
    ) {
        core.dialUpgrade(address: address, protocolName: protocolName, dataConnID: dataConnID, failed: failed)
    }

    /// Sends a message (Perl: `snd`).
    package func send(_ port: PortID, _ message: [Value]) {
        core.send(to: port, message)
    }

    /// Kills a port (Perl: `kil`).
    package func kill(_ port: PortID, reason: KillReason) {
        core.kill(port, reason: reason)
    }

    /// Creates a local port with a loop-confined callback; returns its ID.
    package func makePort(_ callback: @escaping ([Value]) -> Void) -> PortID {
        let name = node.names.withLock { $0.nextLocalName() }
        let bound = NIOLoopBound(callback, eventLoop: core.eventLoop)
        core.createPort(name: name) { _, message in bound.value(message) }
        return PortID(node: core.nodeID, name: name)
    }

    /// Monitors a port; the returned key cancels it with ``cancel(_:)``.
    package func monitor(_ port: PortID, _ callback: @escaping @Sendable (KillReason) -> Void) -> MonitorKey? {
        core.monitor(port, .callback(callback))
    }

    /// Cancels a monitor from ``monitor(_:_:)``.
    package func cancel(_ key: MonitorKey) {
        core.cancel(key)
    }

    /// Schedules `body` on the node's loop.
    @discardableResult
    package func schedule(in delay: Duration, _ body: @escaping () -> Void) -> Scheduled<Void> {
        core.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: delay.timeAmount, body)
    }

    /// Returns the extension state stored under `key`, creating it with `make` the first time.
    package func state<State: AnyObject>(_ key: String, make: () -> State) -> State {
        if let existing = core.extensionState[key] as? State { return existing }
        let created = make()
        core.extensionState[key] = created
        return created
    }

    /// The node's event loop.
    package var eventLoop: any EventLoop { core.eventLoop }

    /// The loop the node's data connections live on (`Node.start`'s `dataGroup`).
    package var dataLoop: any EventLoop { core.dataLoop }
}
