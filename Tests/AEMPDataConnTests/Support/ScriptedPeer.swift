import AEMP
import AEMPCodecs
import AEMPHandle
import NIOCore
import Testing

/// A hand-driven AEMP peer (adapted from the AEMPTests target): a real loopback connection on which
/// the test writes exact bytes and reads what the node answers. It plays the Perl side, using the
/// protocol layer (`HandshakeStateMachine`) only to compute its auth line.
final class ScriptedPeer: Sendable {
    let handle: Handle

    private init(handle: Handle) {
        self.handle = handle
    }

    /// Connects to `address` (`host:port`).
    static func connect(to address: String) async throws -> ScriptedPeer {
        let colon = try #require(address.lastIndex(of: ":"))
        let handle = try await Handle.connect(
            host: String(address[..<colon]), service: String(address[address.index(after: colon)...]))
        return ScriptedPeer(handle: handle)
    }

    func write(_ text: String) async throws {
        try await handle.write(text)
    }

    func write(_ buffer: ByteBuffer) async throws {
        try await handle.write(buffer)
    }

    func readLine() async throws -> String {
        try await handle.read(.line()).string
    }

    /// Runs the handshake as node `nodeID` (spec §3), with a fixed greeting line 1 and nonce when
    /// given (to replay a capture).
    @discardableResult
    func handshake(
        as nodeID: NodeID, secret: String, framings: [Framing] = Framing.supported, greeting: Greeting? = nil,
        nonce: String? = nil
    ) async throws -> HandshakeResult {
        let configuration = HandshakeConfiguration(nodeID: nodeID, secret: secret, framings: framings)
        var machine =
            if let greeting {
                HandshakeStateMachine(configuration: configuration, greeting: greeting, nonce: nonce ?? HandshakeNonce.generate())
            } else {
                HandshakeStateMachine(configuration: configuration, peerAddress: nil)
            }
        var pending = machine.start()
        while true {
            for directive in pending {
                switch directive {
                case .send(let text): try await write(text)
                case .authenticated(let result): return result
                case .fail(let error): throw error
                case .peerGreeted, .startTLS: break
                }
            }
            let line = try await readLine()
            pending = machine.receiveLine(Array(line.utf8))
        }
    }

    /// Sends one data-phase message in CBOR.
    func send(_ message: [Value]) async throws {
        var buffer = ByteBuffer()
        buffer.writeCBOR(.array(message))
        try await write(buffer)
    }

    /// Reads one data-phase CBOR message, with byte strings turned into text.
    func receive() async throws -> [Value] {
        let value: Value = try await handle.read(.cbor())
        return try #require(Self.normalised(value).arrayValue)
    }

    /// Reads messages until one satisfies `matching` (bounded: at most `limit` messages).
    func receive(limit: Int = 50, until matching: ([Value]) -> Bool) async throws -> [Value] {
        for _ in 0..<limit {
            let message = try await receive()
            if matching(message) { return message }
        }
        throw InboxTimeoutLike()
    }

    struct InboxTimeoutLike: Error {}

    /// Perl sends strings as CBOR byte strings; compare them as text.
    static func normalised(_ value: Value) -> Value {
        switch value {
        case .bytes: return .text(value.stringValue ?? "")
        case .array(let elements): return .array(elements.map(normalised))
        case .map(let pairs): return .map(pairs.map { (normalised($0.key), normalised($0.value)) })
        default: return value
        }
    }

    func close() {
        handle.destroy()
    }
}
