import NIOCore

/// The output of ``RegexReader``: everything up to and including the match, and its groups.
public struct HandleRegexMatch: Sendable, Hashable {
    /// The bytes up to and including the accepting match (plus any skipped bytes before them).
    public var data: ByteBuffer
    /// The capture groups of the accepting match (Perl: `$1`, `$2`, ...); `nil` for a group that did
    /// not take part in the match.
    public var groups: [ByteBuffer?]

    /// Creates a match value.
    public init(data: ByteBuffer, groups: [ByteBuffer?]) {
        self.data = data
        self.groups = groups
    }
}

/// Reads up to and including a match of a regular expression.
///
/// Perl: `push_read (regex => $accept, $reject, $skip, $cb)`. When `accept` does not match, a match
/// of `reject` raises a non-fatal `EBADMSG` (the reader stays queued); otherwise a match of `skip`
/// moves everything up to the end of that match out of the buffer into the pending result, so
/// later attempts do not start from the beginning.
public struct RegexReader: HandleReader, Sendable {
    /// The accepting expression.
    public let accept: HandleRegex
    /// The rejecting expression, if any.
    public let reject: HandleRegex?
    /// The skipping expression, if any.
    public let skip: HandleRegex?
    private var skipped: ByteBuffer?

    /// Creates a regex reader. Perl: `regex => $accept, $reject, $skip`.
    public init(accept: HandleRegex, reject: HandleRegex? = nil, skip: HandleRegex? = nil) {
        self.accept = accept
        self.reject = reject
        self.skip = skip
    }

    /// Returns the data up to the accepting match, or raises `EBADMSG` on a reject match.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> HandleRegexMatch? {
        if let match = accept.firstMatch(in: buffer) {
            let base = buffer.readerIndex
            let groups = match.groups.map { range in
                range.map { buffer.getSlice(at: base + $0.lowerBound, length: $0.count)! }
            }
            var data = buffer.readSlice(length: match.range.upperBound)!
            if var head = skipped {
                skipped = nil
                head.writeBuffer(&data)
                data = head
            }
            return HandleRegexMatch(data: data, groups: groups)
        }
        if let reject, reject.firstMatch(in: buffer) != nil {
            throw HandleError.badMessage()
        }
        if let skip, let match = skip.firstMatch(in: buffer), match.range.upperBound > 0 {
            var part = buffer.readSlice(length: match.range.upperBound)!
            if skipped == nil {
                skipped = part
            } else {
                skipped!.writeBuffer(&part)
            }
        }
        return nil
    }
}

extension HandleReader where Self == RegexReader {
    /// Reads up to a match of `accept`. Perl: `regex => $accept, $reject, $skip`.
    public static func regex(_ accept: HandleRegex, reject: HandleRegex? = nil, skip: HandleRegex? = nil)
        -> RegexReader
    {
        RegexReader(accept: accept, reject: reject, skip: skip)
    }
}
