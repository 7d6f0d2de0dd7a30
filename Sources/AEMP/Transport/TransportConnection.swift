// TEMPORARY SHIM — NOT COMMITTED. Replaced by the transport branch.
import AEMPCodecs
import AEMPHandle
import NIOCore

struct TransportSendError: Error {}
protocol TransportConnectionDelegate: AnyObject {
    func connection(_ c: TransportConnection, greetedBy greeting: Greeting)
    func connection(_ c: TransportConnection, isAlreadyConnected node: NodeID) -> Bool
    func connectionAuthenticated(_ c: TransportConnection, _ result: HandshakeResult) -> Bool
    func connection(_ c: TransportConnection, received message: [Value])
    func connection(_ c: TransportConnection, closedWith message: String, authenticated: Bool)
}
final class TransportConnection {
    enum Direction { case dialled(address: String), accepted(peerAddress: String?) }
    init(handle: Handle, configuration: HandshakeConfiguration, tls: TLSContext?, direction: Direction,
         protocolName: String = Greeting.aemp, dataConnID: String? = nil,
         handshakeTimeout: Duration, nonce: String = HandshakeNonce.generate(),
         delegate: any TransportConnectionDelegate) { fatalError() }
    func start() {}
    private(set) var result: HandshakeResult?
    var peerGreeting: Greeting? { nil }
    var dataConnID: String? { nil }
    let handle: Handle
    func send(portName: String, _ elements: [Value]) throws(TransportSendError) {}
    func send(_ message: [Value]) throws(TransportSendError) {}
    var writeBufferLength: Int { 0 }
    func close() {}
    static func tlsContext(certificate: String) throws -> TLSContext { fatalError() }
}
