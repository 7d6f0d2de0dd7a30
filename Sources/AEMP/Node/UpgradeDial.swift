import AEMPCodecs
import AEMPHandle
import AEMPSocket
import NIOCore

/// A protocol upgrade dial (DataConn, spec §9.1) that runs on a loop of the node's group other than
/// the node's own (``NodeCore/dataLoop``): the connect, the handshake, TLS and then the data
/// connection itself live there, so a bulk transfer over it never holds up the node's messages. Only
/// the outcome goes to the node's loop (``NodeCore/upgradeDialEnded(_:_:)``).
///
/// Created on the node's loop; afterwards everything but the constants runs on `loop`.
final class UpgradeDial: TransportConnectionDelegate, @unchecked Sendable {
    /// The outcome: the handed-over handle with the handshake result and the rendezvous ID, or the
    /// error text (connect error or handshake failure).
    typealias Outcome = Result<(handle: Handle, result: HandshakeResult, dataConnID: String?), UpgradeDialFailure>

    let key: UInt64
    let loop: any EventLoop
    private let core: NIOLoopBound<NodeCore>
    private let address: String
    private let configuration: HandshakeConfiguration
    private let tls: TLSContext?
    private let protocolName: String
    private let dataConnID: String
    private let handshakeTimeout: Duration

    // On `loop` only.
    private var guardian: TCPConnectGuard?
    private var connection: TransportConnection?
    private var ended = false

    init(key: UInt64, core: NodeCore, loop: any EventLoop, address: String, protocolName: String, dataConnID: String) {
        self.key = key
        self.loop = loop
        self.core = NIOLoopBound(core, eventLoop: core.eventLoop)
        self.address = address
        self.configuration = core.handshakeConfiguration
        self.tls = core.tlsContext
        self.protocolName = protocolName
        self.dataConnID = dataConnID
        self.handshakeTimeout = core.configuration.monitorTimeout
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
        guard let channel = outcome.connection?.channel else {
            end(.failure(UpgradeDialFailure(message: outcome.error.map { "\($0)" } ?? "connect failed")))
            return
        }
        let connection = TransportConnection(
            handle: Handle(channel: channel), configuration: configuration, tls: tls,
            direction: .dialled(address: address), protocolName: protocolName, dataConnID: dataConnID,
            handshakeTimeout: handshakeTimeout, delegate: self)
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

    func connection(_ c: TransportConnection, greetedBy greeting: Greeting) {}

    func connection(_ c: TransportConnection, isAlreadyConnected node: NodeID) -> Bool { false }

    func connectionAuthenticated(_ c: TransportConnection, _ result: HandshakeResult) -> Bool {
        guard !ended else {
            c.close()
            return false
        }
        end(.success((c.handle, result, c.dataConnID ?? result.peerGreeting["dataconn_id"])))
        return false  // the handle is handed over
    }

    func connection(_ c: TransportConnection, received message: [Value]) {}

    func connection(_ c: TransportConnection, closedWith message: String, authenticated: Bool) {
        guard !ended else { return }
        end(.failure(UpgradeDialFailure(message: message)))
    }
}

/// Why an upgrade dial failed: the connect error or the handshake failure, as text.
struct UpgradeDialFailure: Error, Sendable {
    let message: String
}
