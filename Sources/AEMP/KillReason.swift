import AEMPCodecs
import NIOCore

/// Why a port died: the list Perl passes to `kil` and hands to monitors (spec §8).
///
/// Perl: `kil $port, @reason` and the `@reason` of `mon` callbacks. An empty list is a normal kill;
/// otherwise the first element is a short tag. On the wire (`kil0`/`kil1`, spec §5.2) the reason
/// travels as the trailing elements of the message, exactly ``values``.
///
/// ```swift
/// KillReason.transportError(node: echo2, message: KillReason.unexpectedEndOfFile).values
/// // ["transport_error", "echo2", "Unexpected end-of-file"]
/// ```
public struct KillReason: Sendable, Hashable, CustomStringConvertible {
    /// The reason's elements (empty for a normal kill).
    public var values: [Value]

    /// Wraps a reason list as it arrived from the wire or a user.
    ///
    /// - Parameter values: the elements.
    public init(_ values: [Value]) {
        self.values = values
    }

    // MARK: Standard tags and messages

    /// Tag of an exception in a port callback. Perl: `die`.
    public static let dieTag = "die"
    /// Tag of a message no callback handled. Perl: `unhandled_message`.
    public static let unhandledMessageTag = "unhandled_message"
    /// Tag of a lost or impossible connection. Perl: `transport_error`.
    public static let transportErrorTag = "transport_error"
    /// Tag of a monitor request for a port that does not exist. Perl: `no_such_port`.
    public static let noSuchPortTag = "no_such_port"
    /// The tag of ``shutdown(node:message:)``.
    public static let shutdownTag = "shutdown"
    /// Tag of a DataConn failure. Perl: `AnyEvent::MP::DataConn`.
    public static let dataConnTag = "AnyEvent::MP::DataConn"

    /// Transport message when no connection could be made within `connect_interval`.
    public static let connectTimeout = "connect timeout"
    /// The transport message of a connect attempt that timed out: ``connectTimeout``, followed by
    /// what is known about why in parentheses, e.g.
    /// `connect timeout (last attempt: authentication failure/shared secret mismatch)` or
    /// `connect timeout (last attempt: TLS handshake failed: peer sent alert unknown CA (error:10000418))`.
    /// The first words stay Perl's, so code that looks for `connect timeout` at the start still works.
    ///
    /// - Parameter detail: the explanation; `nil` or empty gives ``connectTimeout`` alone.
    /// - Returns: the message.
    public static func connectTimeoutMessage(detail: String?) -> String {
        guard let detail, !detail.isEmpty else { return connectTimeout }
        return "\(connectTimeout) (\(detail))"
    }

    /// Transport message when the master does not know the node's address.
    public static let noKnownAddress = "no known address"
    /// Transport message when a newer connection to the same node replaced this one.
    public static let switchedConnections = "switched connections"
    /// Transport message when the peer closed the connection (AnyEvent::Handle's EPIPE-on-EOF text).
    public static let unexpectedEndOfFile = "Unexpected end-of-file"

    /// A normal kill: no reason. Perl: `kil $port`.
    public static let normal = KillReason([])

    /// `("die", message)`: a port callback threw. Trailing newlines are removed, as Perl does.
    ///
    /// - Parameter message: the error text.
    /// - Returns: the reason.
    public static func die(_ message: String) -> KillReason {
        var text = Substring(message)
        while let last = text.last, last == "\n" || last == "\r\n" || last == "\r" { text = text.dropLast() }
        return KillReason([.text(dieTag), .text(String(text))])
    }

    /// `("unhandled_message", "no callback found for message '<tag>'")`: a port without a matching
    /// callback got a message. `<tag>` is the first 30 characters of the message's first element,
    /// with characters outside printable ASCII shown as `.`.
    ///
    /// - Parameter firstElement: the message's first element (`nil` for an empty message).
    /// - Returns: the reason.
    public static func unhandledMessage(firstElement: Value?) -> KillReason {
        var shown = ""
        for scalar in perlString(firstElement).unicodeScalars.prefix(30) {
            shown.unicodeScalars.append((0x20...0x7E).contains(scalar.value) ? scalar : ".")
        }
        return KillReason([.text(unhandledMessageTag), .text("no callback found for message '\(shown)'")])
    }

    /// `("transport_error", node, message)`: the connection to `node` was lost or could not be made.
    ///
    /// - Parameters:
    ///   - node: the remote node.
    ///   - message: e.g. ``connectTimeout``, ``noKnownAddress``, ``unexpectedEndOfFile``.
    /// - Returns: the reason.
    public static func transportError(node: NodeID, message: String) -> KillReason {
        KillReason([.text(transportErrorTag), .text(node.rawValue), .text(message)])
    }

    /// `("shutdown", "<node>", message)`: the port's node shut down gracefully
    /// (``Node/shutdown(gracePeriod:reason:)``, a ``Node`` service stopping). Swift only; a Perl node
    /// receives it like any other reason.
    ///
    /// - Parameters:
    ///   - node: the node that shut down.
    ///   - message: why (default `node shut down`).
    /// - Returns: the reason.
    public static func shutdown(node: NodeID, message: String = "node shut down") -> KillReason {
        KillReason([.text(shutdownTag), .text(node.rawValue), .text(message)])
    }

    /// `("no_such_port", "cannot monitor nonexistent port", "<node>#<port>")`: reply to `mon1` for a
    /// port that does not exist.
    ///
    /// - Parameter port: the port that was asked for.
    /// - Returns: the reason.
    public static func noSuchPort(_ port: PortID) -> KillReason {
        KillReason([.text(noSuchPortTag), .text("cannot monitor nonexistent port"), .text(port.description)])
    }

    /// `("AnyEvent::MP::DataConn", message)`: a DataConn rendezvous failed (`nil` message = null).
    ///
    /// - Parameter message: the failure text.
    /// - Returns: the reason.
    public static func dataConn(_ message: String?) -> KillReason {
        KillReason([.text(dataConnTag), message.map(Value.text) ?? .null])
    }

    /// A user-chosen reason. Perl: `kil $port, @reason`.
    ///
    /// - Parameter values: the elements.
    /// - Returns: the reason.
    public static func user(_ values: [Value]) -> KillReason {
        KillReason(values)
    }

    // MARK: Reading

    /// Whether this is a normal kill (empty reason).
    public var isNormal: Bool { values.isEmpty }

    /// The first element as a string (text or byte string, as Perl sends tags in CBOR), if any.
    public var tag: String? {
        values.first.flatMap(Self.string(of:))
    }

    /// Element `index` as a string (text or byte string), if present and a string.
    ///
    /// - Parameter index: the element position.
    public func string(at index: Int) -> String? {
        values.indices.contains(index) ? Self.string(of: values[index]) : nil
    }

    /// Whether the reason is a `transport_error`.
    public var isTransportError: Bool { tag == Self.transportErrorTag }

    /// The reason in a readable, log-friendly form, e.g. `transport_error echo2 Unexpected end-of-file`.
    public var description: String {
        isNormal ? "(normal)" : values.map(Self.perlString).joined(separator: " ")
    }

    // MARK: Helpers

    static func string(of value: Value) -> String? {
        switch value {
        case .text(let text): text
        case .bytes(let bytes): String(decoding: bytes.readableBytesView, as: UTF8.self)
        default: nil
        }
    }

    /// How Perl would stringify a scalar (references become their type name).
    static func perlString(_ value: Value?) -> String {
        guard let value else { return "" }
        switch value {
        case .null, .undefined: return ""
        case .bool(let flag): return flag ? "1" : ""
        case .int(let number): return String(number)
        case .uint(let number): return String(number)
        case .float(let number):
            return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .text, .bytes: return string(of: value) ?? ""
        case .array: return "ARRAY"
        case .map: return "HASH"
        case .bignum, .tagged, .simple: return "SCALAR"
        }
    }
}
