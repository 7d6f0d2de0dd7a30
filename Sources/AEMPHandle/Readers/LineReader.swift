import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A line and the end-of-line marker that ended it (the output of ``LineReader``).
public struct HandleLine: Sendable, Hashable {
    /// The line without its end-of-line marker (Perl: `$line`).
    public var line: ByteBuffer
    /// The end-of-line marker as it appeared in the input (Perl: `$eol`).
    public var eol: ByteBuffer

    /// Creates a line value.
    public init(line: ByteBuffer, eol: ByteBuffer) {
        self.line = line
        self.eol = eol
    }

    /// The line decoded as UTF-8 (invalid sequences are replaced).
    public var string: String { String(buffer: line) }
}

/// Reads one line. Perl: `push_read (line => [$eol,] $cb)`.
///
/// The default end of line is `\r?\n`, found by scanning for `\n` directly (no regular expression).
/// A string end of line is a literal byte sequence; a ``HandleRegex`` end of line is matched as Perl
/// does with `^(.*?)($eol)`, against the bytes that have arrived so far. Partial lines at the end of
/// the stream are never returned. Searches resume where the previous call stopped.
public struct LineReader: HandleReader, Sendable {
    enum Mode {
        case newline
        case literal([UInt8])
        case regex(HandleRegex)
    }

    let mode: Mode
    /// How many bytes from the front are known to hold no complete end of line.
    private var scanned = 0

    /// Lines ending in `\r?\n` (Perl: `line` without `$eol`).
    public init() { self.mode = .newline }

    /// Lines ending in the literal byte sequence `eol` (Perl: `line => "string"`).
    public init(eol: some Sequence<UInt8>) { self.mode = .literal(Array(eol)) }

    /// Lines ending in the literal string `eol` (its UTF-8 bytes).
    public init(eol: String) { self.mode = .literal(Array(eol.utf8)) }

    /// Lines ending in a match of `eol` (Perl: `line => qr/.../`).
    public init(eol: HandleRegex) {
        self.mode = .regex(eol.lineSplitter())
    }

    /// Forgets how far the search went.
    public mutating func restartScan() { scanned = 0 }

    /// Returns the next line and its end-of-line marker once a full line has arrived.
    public mutating func read(from buffer: inout ByteBuffer) throws(HandleError) -> HandleLine? {
        switch mode {
        case .newline:
            return readNewline(&buffer)
        case .literal(let eol):
            return readLiteral(&buffer, eol: eol)
        case .regex(let regex):
            guard let match = regex.firstMatch(in: buffer), match.groups.count >= 2,
                let lineRange = match.groups[0], let eolRange = match.groups[1]
            else { return nil }
            let line = buffer.getSlice(at: buffer.readerIndex + lineRange.lowerBound, length: lineRange.count)!
            let eol = buffer.getSlice(at: buffer.readerIndex + eolRange.lowerBound, length: eolRange.count)!
            buffer.moveReaderIndex(forwardBy: match.range.upperBound)
            return HandleLine(line: line, eol: eol)
        }
    }

    private mutating func readNewline(_ buffer: inout ByteBuffer) -> HandleLine? {
        let start = scanned
        let found: Int? = buffer.withUnsafeReadableBytes { raw -> Int? in
            guard raw.count > start, let base = raw.baseAddress else { return nil }
            guard let hit = memchr(base + start, 0x0A, raw.count - start) else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
        guard let position = found else {
            scanned = buffer.readableBytes
            return nil
        }
        scanned = 0
        let hasCR = position > 0 && buffer.getInteger(at: buffer.readerIndex + position - 1, as: UInt8.self) == 0x0D
        let lineLength = hasCR ? position - 1 : position
        let line = buffer.readSlice(length: lineLength)!
        let eol = buffer.readSlice(length: hasCR ? 2 : 1)!
        return HandleLine(line: line, eol: eol)
    }

    private mutating func readLiteral(_ buffer: inout ByteBuffer, eol: [UInt8]) -> HandleLine? {
        if eol.isEmpty {
            return HandleLine(line: buffer.getSlice(at: buffer.readerIndex, length: 0)!,
                              eol: buffer.getSlice(at: buffer.readerIndex, length: 0)!)
        }
        let start = max(0, scanned - (eol.count - 1))
        let found: Int? = buffer.withUnsafeReadableBytes { raw -> Int? in
            guard raw.count - start >= eol.count else { return nil }
            let first = eol[0]
            var index = start
            let last = raw.count - eol.count
            while index <= last {
                if raw[index] == first {
                    var matched = true
                    for offset in 1..<eol.count where raw[index + offset] != eol[offset] {
                        matched = false
                        break
                    }
                    if matched { return index }
                }
                index += 1
            }
            return nil
        }
        guard let position = found else {
            scanned = buffer.readableBytes
            return nil
        }
        scanned = 0
        let line = buffer.readSlice(length: position)!
        let marker = buffer.readSlice(length: eol.count)!
        return HandleLine(line: line, eol: marker)
    }
}

extension HandleReader where Self == LineReader {
    /// A line ending in `\r?\n`. Perl: `line`.
    public static func line() -> LineReader { LineReader() }
    /// A line ending in the literal string `eol`. Perl: `line => $eol`.
    public static func line(eol: String) -> LineReader { LineReader(eol: eol) }
    /// A line ending in the literal bytes `eol`. Perl: `line => $eol`.
    public static func line(eolBytes eol: [UInt8]) -> LineReader { LineReader(eol: eol) }
    /// A line ending in a match of `eol`. Perl: `line => qr/$eol/`.
    public static func line(eol: HandleRegex) -> LineReader { LineReader(eol: eol) }
}
