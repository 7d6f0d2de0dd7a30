import NIOCore

/// A regular expression matched against raw bytes, with Perl's byte-string meaning.
///
/// Perl: a `qr/.../` object passed to the `regex` and `line` read types. Each byte is one character
/// (Latin-1), so `\r\n` is two characters and binary data is fine; `\d`, `\w` and `\s` are ASCII only;
/// `.` does not match `\n` unless `dotMatchesNewlines` (Perl's `/s`); the match is unanchored unless
/// the pattern starts with `^`. Matching runs Swift's `Regex` engine, which is slower than the
/// dedicated `\n` scan of ``LineReader/init()``.
public struct HandleRegex: @unchecked Sendable, CustomStringConvertible {
    /// The pattern source.
    public let pattern: String
    /// Whether `.` matches a newline (Perl's `/s` flag).
    public let dotMatchesNewlines: Bool
    private let regex: Regex<AnyRegexOutput>

    /// Compiles `pattern`.
    /// - Parameters:
    ///   - pattern: the pattern in the common Perl/PCRE syntax.
    ///   - dotMatchesNewlines: Perl's `/s` flag.
    /// - Throws: ``HandleError`` with `EINVAL` when the pattern does not compile.
    public init(_ pattern: String, dotMatchesNewlines: Bool = false) throws(HandleError) {
        self.pattern = pattern
        self.dotMatchesNewlines = dotMatchesNewlines
        do {
            self.regex = try Regex(pattern)
                .matchingSemantics(.unicodeScalar)
                .dotMatchesNewlines(dotMatchesNewlines)
                .asciiOnlyDigits()
                .asciiOnlyWhitespace()
                .asciiOnlyWordCharacters()
        } catch {
            throw HandleError(.init(errno: 22), message: "invalid regex \(pattern): \(error)")
        }
    }

    /// The pattern, with `/s` when set.
    public var description: String { "qr/\(pattern)/\(dotMatchesNewlines ? "s" : "")" }

    /// A match: byte ranges relative to the buffer's reader index.
    struct Match {
        var range: Range<Int>
        var groups: [Range<Int>?]
    }

    /// Perl's `line` with a regex: `^(.*?)($eol)` with `/s` outside the end-of-line part.
    func lineSplitter() -> HandleRegex {
        let inner = "(?\(dotMatchesNewlines ? "s" : "-s"):\(pattern))"
        // The pattern compiled already, so the combination does too.
        return try! HandleRegex("^((?s:.*?))(\(inner))", dotMatchesNewlines: false)
    }

    /// Finds the leftmost match in the readable bytes of `buffer`.
    func firstMatch(in buffer: ByteBuffer) -> Match? {
        var scalars = String.UnicodeScalarView()
        buffer.withUnsafeReadableBytes { raw in
            for byte in raw { scalars.append(Unicode.Scalar(byte)) }
        }
        let text = String(scalars)
        guard let found = try? regex.firstMatch(in: text) else { return nil }
        let view = text.unicodeScalars
        func offsets(_ range: Range<String.Index>) -> Range<Int> {
            let lower = view.distance(from: view.startIndex, to: range.lowerBound)
            return lower..<(lower + view.distance(from: range.lowerBound, to: range.upperBound))
        }
        var groups: [Range<Int>?] = []
        groups.reserveCapacity(found.output.count - 1)
        for index in found.output.indices.dropFirst() {
            groups.append(found.output[index].range.map(offsets))
        }
        return Match(range: offsets(found.range), groups: groups)
    }
}
