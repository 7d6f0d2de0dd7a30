import AEMP
import AEMPCodecs
import AEMPHandle
import NIOCore

/// A hand-driven AEMP peer for tests: a real loopback connection on which the test writes exact
/// bytes (greetings, auth lines, frames, garbage) and reads what the node answers. It plays the
/// Perl side in replay tests, using the protocol layer (`HandshakeStateMachine`) only to compute its
/// auth line.
public final class ScriptedPeer: Sendable {
    /// The connection.
    public let handle: Handle

    private init(handle: Handle) {
        self.handle = handle
    }

    /// A step the peer could not take.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
    }

    /// Connects to `address` (`host:port`).
    public static func connect(to address: String) async throws -> ScriptedPeer {
        guard let colon = address.lastIndex(of: ":") else { throw Failure(description: "not host:port: \(address)") }
        var host = String(address[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let handle = try await Handle.connect(host: host, service: String(address[address.index(after: colon)...]))
        return ScriptedPeer(handle: handle)
    }

    /// A scripted peer on a connection accepted elsewhere (e.g. a test's own listener).
    ///
    /// - Parameter handle: the accepted connection.
    /// - Returns: the peer.
    public static func adopt(_ handle: Handle) -> ScriptedPeer {
        ScriptedPeer(handle: handle)
    }

    /// Writes text as it is.
    public func write(_ text: String) async throws {
        try await handle.write(text)
    }

    /// Writes bytes as they are.
    public func write(_ buffer: ByteBuffer) async throws {
        try await handle.write(buffer)
    }

    /// Reads one line (without its end).
    public func readLine() async throws -> String {
        try await handle.read(.line()).string
    }

    /// Runs the handshake as node `nodeID` (spec §3), with a fixed greeting line 1 and nonce when
    /// given (to replay a capture).
    @discardableResult
    public func handshake(
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
    public func send(_ message: [Value], framing: Framing = .cbor) async throws {
        var buffer = ByteBuffer()
        if framing == .json {
            try buffer.writeJSON(.array(message))
        } else {
            buffer.writeCBOR(.array(message))
        }
        try await write(buffer)
    }

    /// Reads one data-phase message in `framing`, with byte strings turned into text.
    public func receive(framing: Framing = .cbor) async throws -> [Value] {
        let value: Value = framing == .json ? try await handle.read(.json()) : try await handle.read(.cbor())
        guard let message = Self.normalised(value).arrayValue else {
            throw Failure(description: "data-phase message is not an array: \(value)")
        }
        return message
    }

    /// Reads messages until one satisfies `matching` (at most `limit` messages).
    public func receive(
        framing: Framing = .cbor, limit: Int = 50, until matching: ([Value]) -> Bool
    ) async throws -> [Value] {
        for _ in 0..<limit {
            let message = try await receive(framing: framing)
            if matching(message) { return message }
        }
        throw Failure(description: "no matching message among \(limit)")
    }

    /// Perl sends strings as CBOR byte strings; this compares them as text.
    public static func normalised(_ value: Value) -> Value {
        switch value {
        case .bytes: return .text(value.stringValue ?? "")
        case .array(let elements): return .array(elements.map(normalised))
        case .map(let pairs): return .map(pairs.map { (normalised($0.key), normalised($0.value)) })
        default: return value
        }
    }

    /// Waits until the node closes the connection; `false` if it is still open after `limit`.
    public func closedByPeer(within limit: Duration = .seconds(10)) async -> Bool {
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

    /// Closes the connection.
    public func close() {
        handle.destroy()
    }
}
