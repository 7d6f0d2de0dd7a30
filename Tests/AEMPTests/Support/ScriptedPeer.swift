import AEMP
import AEMPCodecs
import AEMPHandle
import AEMPSocket
import NIOCore
import Testing

/// A hand-driven AEMP peer for tests: a real loopback connection on which the test writes exact
/// bytes (greetings, auth lines, frames, garbage) and reads what the node answers. It plays the
/// Perl side in replay tests, using the protocol layer (`HandshakeStateMachine`) only to compute
/// its auth line.
final class ScriptedPeer: Sendable {
    let handle: Handle

    private init(handle: Handle) {
        self.handle = handle
    }

    /// Connects to `address` (`host:port`).
    static func connect(to address: String) async throws -> ScriptedPeer {
        let target = try #require(parseHostPort(address))
        let connection = try await tcpConnect(host: target.host, service: target.port)
        let handle = try await Handle.make(channel: connection.channel).get()
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

    /// Sends one data-phase message in `framing`.
    func send(_ message: [Value], framing: Framing) async throws {
        var buffer = ByteBuffer()
        if framing == .json {
            try buffer.writeJSON(.array(message))
        } else {
            buffer.writeCBOR(.array(message))
        }
        try await write(buffer)
    }

    /// Reads one data-phase message in `framing`.
    func receive(framing: Framing) async throws -> [Value] {
        let value: Value = framing == .json ? try await handle.read(.json()) : try await handle.read(.cbor())
        return try #require(value.arrayValue)
    }

    /// Waits until the node closes the connection; `false` if it is still open after `limit`.
    func closedByPeer(within limit: Duration = .seconds(10)) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            do {
                _ = try await handle.read(.chunk(1))
            } catch {
                return true
            }
        }
        return false
    }

    func close() {
        handle.destroy()
    }
}
