import AEMPCodecs
import AEMPHandle
import AEMPSocket
import Logging
import NIOCore

/// A protocol upgrade connection (DataConn, spec §9.1) on a loop of the node's group other than the
/// node's own (``NodeCore/dataLoop``): one this node dials (connect, handshake, TLS), or one accepted
/// on the node's listener whose handshake moved here after the peer's greeting (``adopt(_:_:)``).
/// The data connection then lives there, so a bulk transfer over it never holds up the node's
/// messages. Only the outcome goes to the node's loop (``NodeCore/upgradeDialEnded(_:_:)``).
///
/// Created on the node's loop; afterwards everything but the constants runs on `loop`.
final class UpgradeDial: TransportConnectionDelegate, @unchecked Sendable {
    /// The outcome: the handed-over handle with the handshake result and the rendezvous ID, or the
    /// error text (connect error or handshake failure).
    typealias Outcome = Result<(handle: Handle, result: HandshakeResult, dataConnID: String?), UpgradeDialFailure>

    /// What a dial needs (`nil` for a connection accepted on the node's loop whose handshake moved
    /// here, see ``adopt(_:_:)``).
    private struct Dial {
        let address: String
        let configuration: HandshakeConfiguration
        let tls: TLSContext?
        let protocolName: String
        let dataConnID: String
        let handshakeTimeout: Duration
    }

    let key: UInt64
    let loop: any EventLoop
    /// Where lines about this connection go: for a dial, the node's logger with `aemp.direction`
    /// `out` and `aemp.address`; for an adopted connection, the node's (the connection brings its own).
    let logger: Logger
    private let core: NIOLoopBound<NodeCore>
    private let dial: Dial?

    // On `loop` only.
    private var guardian: TCPConnectGuard?
    private var connection: TransportConnection?
    private var ended = false

    init(key: UInt64, core: NodeCore, loop: any EventLoop, address: String, protocolName: String, dataConnID: String) {
        self.key = key
        self.loop = loop
        self.core = NIOLoopBound(core, eventLoop: core.eventLoop)
        self.dial = Dial(
            address: address, configuration: core.handshakeConfiguration, tls: core.tlsContext,
            protocolName: protocolName, dataConnID: dataConnID, handshakeTimeout: core.configuration.monitorTimeout)
        self.logger = core.dialLogger(address, peer: nil)
    }

    /// For an accepted connection whose handshake moves to `loop` (``adopt(_:_:)``). Node's loop.
    init(key: UInt64, core: NodeCore, loop: any EventLoop) {
        self.key = key
        self.loop = loop
        self.core = NIOLoopBound(core, eventLoop: core.eventLoop)
        self.dial = nil
        self.logger = core.logger
    }

    /// Goes on with a handshake that moved here with its handle. Loop only.
    func adopt(_ state: TransportConnection.Resumption, _ handle: Handle) {
        guard !ended else {
            handle.destroy()
            return
        }
        connection = TransportConnection(resuming: state, handle: handle, delegate: self)
    }

    /// The handle could not be adopted here: the connection is lost. Loop only.
    func lost(_ message: String) {
        guard !ended else { return }
        end(.failure(UpgradeDialFailure(message: message)))
    }

    /// Connects to `host`/`port` on ``loop``.
    func start(host: String, port: String) {
        loop.execute {
            guard !self.ended else { return }
            self.guardian = tcpConnect(host: host, service: port, on: self.loop) { outcome in
                // Name resolution may answer from another thread.
                self.loop.execute { self.connected(outcome) }
            }
        }
    }

    /// Stops the dial (node shutdown). Nothing is reported afterwards. Loop only.
    func cancel() {
        guard !ended else { return }
        ended = true
        guardian?.cancel()
        guardian = nil
        connection?.close()
        connection = nil
    }

    private func connected(_ outcome: TCPConnectOutcome) {
        guardian = nil
        guard !ended else {
            outcome.connection?.channel.close(promise: nil)
            return
        }
        guard let dial, let channel = outcome.connection?.channel else {
            end(.failure(UpgradeDialFailure(message: outcome.error.map { "\($0)" } ?? "connect failed")))
            return
        }
        let connection = TransportConnection(
            handle: Handle(channel: channel), configuration: dial.configuration, tls: dial.tls,
            direction: .dialled(address: dial.address), protocolName: dial.protocolName, dataConnID: dial.dataConnID,
            handshakeTimeout: dial.handshakeTimeout, delegate: self)
        connection.logger = logger
        self.connection = connection
        connection.start()
    }

    private func end(_ outcome: Outcome) {
        ended = true
        connection = nil
        let core = self.core
        let key = self.key
        core.eventLoop.execute { core.value.upgradeDialEnded(key, outcome) }
    }

    // MARK: TransportConnectionDelegate

    func connection(_ c: TransportConnection, greetedBy greeting: Greeting) {
        c.logger[metadataKey: "aemp.peer"] = "\(greeting.nodeID)"
    }

    func connection(_ c: TransportConnection, isAlreadyConnected node: NodeID) -> Bool { false }

    func connectionAuthenticated(_ c: TransportConnection, _ result: HandshakeResult) -> Bool {
        guard !ended else {
            c.close()
            return false
        }
        end(.success((c.handle, result, c.dataConnID ?? result.peerGreeting["dataconn_id"])))
        return false  // the handle is handed over
    }

    func connection(_ c: TransportConnection, received message: consuming [Value]) {}

    func connection(_ c: TransportConnection, closedWith message: String, authenticated: Bool) {
        guard !ended else { return }
        end(.failure(UpgradeDialFailure(message: message)))
    }
}

/// Why an upgrade dial failed: the connect error or the handshake failure, as text.
struct UpgradeDialFailure: Error, Sendable {
    let message: String
}
