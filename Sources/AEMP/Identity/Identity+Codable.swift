/// Node and port IDs travel as the strings Perl uses for them: `"echo"` and `"echo#DIIBdJVBPb"`.
/// So a `Codable` message field of type ``PortID`` is a plain text string on the wire, and a Perl
/// node can put any port ID it has into it.
extension NodeID: Codable {
    /// Decodes a node ID from its text.
    ///
    /// - Throws: `DecodingError.dataCorrupted` naming the problem when the text is no valid node ID.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do {
            self = try NodeID(validating: text)
        } catch {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a node ID: \(text.debugDescription) (\(error))")
        }
    }

    /// Encodes the node ID as its text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

extension PortID: Codable {
    /// Decodes a port ID from its text, `<nodeid>#<portname>`.
    ///
    /// - Throws: `DecodingError.dataCorrupted` when the text has no `#` or an invalid node part.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let port = PortID(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not a port ID (<nodeid>#<portname>): \(text.debugDescription)")
        }
        self = port
    }

    /// Encodes the port ID as its text, `<nodeid>#<portname>`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
