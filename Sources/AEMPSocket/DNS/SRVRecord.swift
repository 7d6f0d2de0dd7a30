/// One DNS SRV record (RFC 2782): where a service runs.
///
/// Perl: the `[priority, weight, port, target]` arrays that `AnyEvent::DNS::srv` passes on.
public struct SRVRecord: Hashable, Sendable {
    /// Lower values are tried first.
    public var priority: UInt16
    /// Relative share among records of the same priority.
    public var weight: UInt16
    /// The TCP or UDP port of the service.
    public var port: Int
    /// The host name offering the service, lowercased and without the trailing dot;
    /// `"."` means "the service is decidedly not available at this domain".
    public var target: String

    /// Creates a record.
    public init(priority: UInt16, weight: UInt16, port: Int, target: String) {
        self.priority = priority
        self.weight = weight
        self.port = port
        self.target = target
    }

    /// Orders records as RFC 2782 asks: ascending priority, and within one priority a weighted
    /// random order (a record's chance to come next is proportional to its weight; zero-weight
    /// records get a small chance and are placed first so they can be picked at all).
    ///
    /// - Parameters:
    ///   - records: The records in any order.
    ///   - generator: The random source (injectable for tests).
    /// - Returns: The records in the order a client should try them.
    public static func rfc2782Order(
        _ records: [SRVRecord],
        using generator: inout some RandomNumberGenerator
    ) -> [SRVRecord] {
        var result: [SRVRecord] = []
        result.reserveCapacity(records.count)
        let byPriority = Dictionary(grouping: records, by: \.priority)
        for priority in byPriority.keys.sorted() {
            // Zero weights first, as RFC 2782 describes the selection.
            var remaining = byPriority[priority]!.sorted { $0.weight < $1.weight }
            var sum = remaining.reduce(0) { $0 + Int($1.weight) }
            while !remaining.isEmpty {
                let pick = Int.random(in: 0...sum, using: &generator)
                var running = 0
                var chosen = remaining.count - 1
                for (index, record) in remaining.enumerated() {
                    running += Int(record.weight)
                    if running >= pick {
                        chosen = index
                        break
                    }
                }
                sum -= Int(remaining[chosen].weight)
                result.append(remaining.remove(at: chosen))
            }
        }
        return result
    }

    /// ``rfc2782Order(_:using:)`` with the system random generator.
    public static func rfc2782Order(_ records: [SRVRecord]) -> [SRVRecord] {
        var generator = SystemRandomNumberGenerator()
        return rfc2782Order(records, using: &generator)
    }
}
