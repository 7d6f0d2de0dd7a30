import NIOCore

/// An incremental decoder that finds each complete JSON text in a byte stream.
///
/// Perl: `JSON::XS->new->utf8->incr_parse` as AnyEvent::MP's `json` framing uses it, and
/// `AnyEvent::Handle::push_read (json => ...)`.
///
/// Texts may arrive split at any byte: inside a multi-byte UTF-8 sequence, an escape, a number or a
/// literal. The decoder keeps its scan state (the containers built so far, the partial token) between
/// calls, so every byte is looked at once: feeding a large text in small pieces costs time linear in
/// its size. A partial text leaves the buffer's reader index where the text starts; the decoder
/// remembers how far it has scanned, relative to the reader index. Callers must therefore only
/// append to the buffer between calls (as `ByteToMessageHandler` does) and must not skip bytes.
/// Whitespace between texts is consumed.
///
/// Differences from JSON::XS, all deliberate:
/// - Strings decode to ``Value/text(_:)`` (Perl distinguishes byte and character strings only by an
///   internal flag). UTF-8-encoded surrogates (`ed a0 80`), which Perl accepts, are an
///   ``JSONError/Code/invalidUTF8`` error because a Swift `String` cannot hold them.
/// - Integers beyond the 64-bit ranges become ``Value/bignum(negative:magnitude:)`` and
///   `-9223372036854775808` is ``Value/int(_:)``; JSON::XS turns all of these into strings.
/// - Floats are correctly rounded (Swift's `Double(String)`); JSON::XS's own decimal parser is off
///   by up to a few units in the last place and flushes `5e-324` to zero.
/// - With ``Options/allowNonFiniteNumbers`` (the default) the bare words JSON::XS writes for
///   non-finite doubles, `inf`, `-inf`, `nan` and `-nan`, decode to the float Perl meant; JSON::XS
///   itself cannot decode them. No other non-standard token is accepted.
/// - A partial literal (`tru`) waits for more data; JSON::XS raises an error.
/// - A top-level number at the end of the available bytes is not taken as complete (more digits may
///   follow); JSON::XS takes it. Call ``finish(from:)`` when the stream has ended.
/// - Texts that are complete before a syntax error are delivered first, then the error is thrown;
///   JSON::XS discards the texts it parsed in the same call.
///
/// After an error the decoder forgets its partial state; the reader index still points at the start
/// of the bad text, so the stream cannot be resumed (AnyEvent::MP closes the connection).
public struct JSONStreamDecoder: NIOSingleStepByteToMessageDecoder {
    /// One decoded JSON text.
    public typealias InboundOut = Value

    /// Decoder limits and leniencies.
    public struct Options: Sendable, Equatable {
        /// Accept top-level strings, numbers and literals, not only arrays and objects (default
        /// false, as AnyEvent::Handle's `json` read type documents).
        public var allowScalars: Bool
        /// Accept JSON::XS's bare `inf`, `-inf`, `nan`, `-nan` as float values (default true).
        public var allowNonFiniteNumbers: Bool
        /// The deepest nesting of arrays and objects (default 512, JSON::XS's `max_depth`).
        public var maxDepth: Int
        /// The largest text in bytes, leading whitespace excluded (default 64 MiB).
        public var maxTextSize: Int
        /// The longest number token in bytes (default 4096); bounds bignum conversion work.
        public var maxNumberLength: Int

        /// Creates options.
        /// - Parameters:
        ///   - allowScalars: Accept top-level scalars.
        ///   - allowNonFiniteNumbers: Accept `inf`, `-inf`, `nan`, `-nan`.
        ///   - maxDepth: The deepest nesting of arrays and objects.
        ///   - maxTextSize: The largest text in bytes.
        ///   - maxNumberLength: The longest number token in bytes.
        public init(
            allowScalars: Bool = false, allowNonFiniteNumbers: Bool = true, maxDepth: Int = 512,
            maxTextSize: Int = 64 << 20, maxNumberLength: Int = 4096
        ) {
            self.allowScalars = allowScalars
            self.allowNonFiniteNumbers = allowNonFiniteNumbers
            self.maxDepth = maxDepth
            self.maxTextSize = maxTextSize
            self.maxNumberLength = maxNumberLength
        }
    }

    /// The decoder's options.
    public var options: Options
    private var state = ScanState()

    /// Creates a decoder.
    /// - Parameter options: Limits and leniencies.
    public init(options: Options = Options()) {
        self.options = options
    }

    /// Decodes the next complete JSON text from `buffer`, or returns nil when more bytes are needed.
    ///
    /// On success the reader index moves past the text. On nil it stays at the start of the partial
    /// text (only whitespace before it is consumed).
    /// - Parameter buffer: The accumulated input; only append to it between calls.
    /// - Returns: The decoded text, or nil.
    /// - Throws: ``JSONError`` on malformed input or exceeded limits.
    public mutating func next(from buffer: inout ByteBuffer) throws(JSONError) -> Value? {
        try step(&buffer, endOfInput: false)
    }

    /// Like ``next(from:)``, for a stream that has ended: a top-level number at the very end is
    /// complete, and a partial text is an error. Call it until it returns nil.
    /// - Parameter buffer: The remaining input.
    /// - Returns: The decoded text, or nil when only whitespace is left.
    /// - Throws: ``JSONError`` (``JSONError/Code/truncated`` for a partial text).
    public mutating func finish(from buffer: inout ByteBuffer) throws(JSONError) -> Value? {
        try step(&buffer, endOfInput: true)
    }

    /// `NIOSingleStepByteToMessageDecoder`: ``next(from:)``.
    public mutating func decode(buffer: inout ByteBuffer) throws -> Value? {
        try next(from: &buffer)
    }

    /// `NIOSingleStepByteToMessageDecoder`: ``finish(from:)`` after EOF, else ``next(from:)``.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> Value? {
        seenEOF ? try finish(from: &buffer) : try next(from: &buffer)
    }

    /// The fast path of whole messages: a complete array, all in `bytes`, of strings without escapes,
    /// short integers, `true`, `false` and `null` — what AEMP messages mostly are — decoded in one
    /// pass, as its value and the offset after it. `nil` for anything else (partial input, nesting,
    /// escapes, floats, errors, limits), which the streaming scanner then decodes from the start:
    /// the fast path never changes a result, only how fast a common one is reached.
    static func flatArray(_ bytes: UnsafeRawBufferPointer, options: Options) -> (Value, Int)? {
        let count = bytes.count
        var i = 0
        @inline(__always) func skipWhitespace() {
            while i < count, isJSONWhitespace(bytes[i]) { i += 1 }
        }
        skipWhitespace()
        let start = i
        guard options.maxDepth >= 1, i < count, bytes[i] == UInt8(ascii: "[") else { return nil }
        i += 1
        var elements: [Value] = []
        elements.reserveCapacity(4)
        skipWhitespace()
        if i < count, bytes[i] == UInt8(ascii: "]") {
            i += 1
        } else {
            while true {
                guard i < count else { return nil }
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    let j = jsonPlainRunEnd(bytes, from: i + 1)
                    guard j < count, bytes[j] == UInt8(ascii: "\""),
                        let text = validatedUTF8String(UnsafeRawBufferPointer(rebasing: bytes[(i + 1)..<j]))
                    else { return nil }
                    elements.append(.text(text))
                    i = j + 1
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    guard let (value, end) = ScanState.shortInteger(bytes, at: i, maxLength: options.maxNumberLength) else { return nil }
                    elements.append(value)
                    i = end
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
                    // true, false, null (the scanner's table; `nan` is not for this path).
                    guard let entry = literalWords.first(where: { !$0.nonFinite && bytes[i...].starts(with: $0.word) })
                    else { return nil }
                    elements.append(entry.value)
                    i += entry.word.count
                default:
                    return nil
                }
                skipWhitespace()
                guard i < count else { return nil }
                if bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    break
                }
                guard bytes[i] == UInt8(ascii: ",") else { return nil }
                i += 1
                skipWhitespace()
            }
        }
        guard i - start <= options.maxTextSize else { return nil }
        return (.array(elements), i)
    }

    private mutating func step(_ buffer: inout ByteBuffer, endOfInput: Bool) throws(JSONError) -> Value? {
        if state.position > buffer.readableBytes {
            // The caller did not keep the bytes we scanned; start over.
            state = ScanState()
        }
        let options = self.options
        if state.position == 0, state.textStart == nil,
            let (value, end) = buffer.withUnsafeReadableBytes({ Self.flatArray($0, options: options) })
        {
            buffer.moveReaderIndex(forwardBy: end)
            return value
        }
        let outcome = buffer.withUnsafeReadableBytes { bytes in
            state.scan(bytes, options: options, endOfInput: endOfInput)
        }
        switch outcome {
        case .value(let value, let end):
            buffer.moveReaderIndex(forwardBy: end)
            state.reset()
            return value
        case .needMore:
            // Consume the whitespace before the (partial) text; scan offsets are relative to it.
            let skip = state.textStart ?? state.position
            if skip > 0 {
                buffer.moveReaderIndex(forwardBy: skip)
                state.position -= skip
                if state.textStart != nil { state.textStart = 0 }
            }
            return nil
        case .failure(let error):
            state.reset()
            throw error
        }
    }
}

// MARK: - Scanner

private struct Container {
    var isObject: Bool
    var elements: [Value] = []
    var pairs: [(key: Value, value: Value)] = []
    var pendingKey: Value? = nil
}

private enum Mode {
    /// Expecting a value; `allowClose` right after `[`.
    case value(allowClose: Bool)
    /// Expecting a key string; `allowClose` right after `{`.
    case key(allowClose: Bool)
    case colon
    case commaOrClose
    case string(isKey: Bool)
    case number(NumberState)
    case literal(negative: Bool)
}

private enum NumberState {
    case sign, zero, integer, dot, fraction, exponent, exponentSign, exponentDigits

    var isTerminal: Bool {
        switch self {
        case .zero, .integer, .fraction, .exponentDigits: true
        default: false
        }
    }
}

private enum Escape {
    case none
    case backslash
    /// Reading `count` hex digits of a `\u` escape; `high` is a preceding high surrogate.
    case unicode(count: Int, value: UInt32, high: UInt32?)
    /// After a high surrogate escape: expecting `\`.
    case lowBackslash(high: UInt32)
    /// After a high surrogate escape and `\`: expecting `u`.
    case lowU(high: UInt32)
}

private enum Outcome {
    case value(Value, end: Int)
    case needMore
    case failure(JSONError)
}

/// Whether `byte` is JSON whitespace (space, tab, line feed, carriage return).
@inline(__always)
private func isJSONWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
}

/// The offset of the first byte from `start` on that ends a string's plain run — `"`, `\\` or a
/// control character — or the end of `bytes`. Eight bytes at a time (``jsonWordNeedsEscape(_:)``).
@inline(__always)
private func jsonPlainRunEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
    var j = start
    while j + 8 <= bytes.count, !jsonWordNeedsEscape(bytes.loadUnaligned(fromByteOffset: j, as: UInt64.self)) { j += 8 }
    while j < bytes.count {
        let c = bytes[j]
        if c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c < 0x20 { break }
        j += 1
    }
    return j
}

private let literalWords: [(word: [UInt8], value: Value, nonFinite: Bool)] = [
    (Array("true".utf8), .bool(true), false),
    (Array("false".utf8), .bool(false), false),
    (Array("null".utf8), .null, false),
    (Array("inf".utf8), .float(.infinity), true),
    (Array("nan".utf8), .float(.nan), true),
]

private struct ScanState {
    /// Offset (from the reader index) of the next byte to scan.
    var position = 0
    /// Offset where the current text started, nil between texts.
    var textStart: Int? = nil
    var stack: [Container] = []
    var mode: Mode = .value(allowClose: false)
    var escape: Escape = .none
    var integral = true
    var scratch: [UInt8] = []
    var maxTextSize = Int.max

    /// The fast path of numbers: an integer of at most 18 digits whose end is inside `bytes` (the
    /// byte after it cannot continue a number), as its value and end offset; `nil` for anything else,
    /// which the general path (errors included) handles.
    @inline(__always)
    static func shortInteger(_ bytes: UnsafeRawBufferPointer, at start: Int, maxLength: Int) -> (Value, Int)? {
        var j = start
        let negative = bytes[j] == UInt8(ascii: "-")
        if negative { j += 1 }
        let first = j
        var magnitude: Int64 = 0
        while j < bytes.count, bytes[j] &- UInt8(ascii: "0") < 10 {
            magnitude = magnitude &* 10 &+ Int64(bytes[j] &- UInt8(ascii: "0"))
            j += 1
        }
        let digits = j - first
        guard digits > 0, digits <= 18, j - start <= maxLength, j < bytes.count else { return nil }
        if digits > 1, bytes[first] == UInt8(ascii: "0") { return nil }  // a leading zero: an error
        let next = bytes[j]
        if next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") { return nil }
        return (.int(negative ? -magnitude : magnitude), j)
    }

    /// Empties `scratch`, keeping its storage. (Most calls find it empty already; `removeAll` would
    /// still cost a generic `replaceSubrange`.)
    @inline(__always)
    mutating func clearScratch() {
        if !scratch.isEmpty { scratch.removeAll(keepingCapacity: true) }
    }

    mutating func reset() {
        position = 0
        textStart = nil
        stack.removeAll(keepingCapacity: true)
        mode = .value(allowClose: false)
        escape = .none
        // Keep a small scratch buffer between texts, but do not hold on to a huge one.
        scratch.removeAll(keepingCapacity: scratch.capacity <= 1 << 16)
    }

    mutating func scan(_ bytes: UnsafeRawBufferPointer, options: JSONStreamDecoder.Options, endOfInput: Bool) -> Outcome {
        let count = bytes.count
        var i = position
        maxTextSize = options.maxTextSize
        func fail(_ code: JSONError.Code, _ message: String) -> Outcome {
            .failure(JSONError(code, offset: i, message))
        }
        while i < count {
            let byte = bytes[i]
            switch mode {
            case .string(let isKey):
                if case .none = escape {
                    let j = jsonPlainRunEnd(bytes, from: i)
                    if j < count && bytes[j] == UInt8(ascii: "\"") && scratch.isEmpty {
                        // Fast path: the whole string is in this chunk without escapes.
                        guard let s = validatedUTF8String(UnsafeRawBufferPointer(rebasing: bytes[i..<j])) else {
                            i = j
                            return fail(.invalidUTF8, "malformed UTF-8 in JSON string")
                        }
                        i = j + 1
                        if let done = finishString(s, isKey: isKey, end: i, options: options) { return done }
                        continue
                    }
                    if j > i { scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<j])) }
                    i = j
                    if i == count { continue }  // Ends the loop: wait for the rest of the string.
                    let c = bytes[i]
                    if c == UInt8(ascii: "\"") {
                        guard let s = scratch.withUnsafeBytes({ validatedUTF8String($0) }) else {
                            return fail(.invalidUTF8, "malformed UTF-8 in JSON string")
                        }
                        clearScratch()
                        i += 1
                        if let done = finishString(s, isKey: isKey, end: i, options: options) { return done }
                    } else if c == UInt8(ascii: "\\") {
                        escape = .backslash
                        i += 1
                    } else {
                        return fail(.controlCharacter, "raw control character 0x\(String(c, radix: 16)) in JSON string")
                    }
                    continue
                }
                switch escape {
                case .none:
                    break
                case .backslash:
                    let mapped: UInt8
                    switch byte {
                    case UInt8(ascii: "\""): mapped = UInt8(ascii: "\"")
                    case UInt8(ascii: "\\"): mapped = UInt8(ascii: "\\")
                    case UInt8(ascii: "/"): mapped = UInt8(ascii: "/")
                    case UInt8(ascii: "b"): mapped = 0x08
                    case UInt8(ascii: "f"): mapped = 0x0C
                    case UInt8(ascii: "n"): mapped = 0x0A
                    case UInt8(ascii: "r"): mapped = 0x0D
                    case UInt8(ascii: "t"): mapped = 0x09
                    case UInt8(ascii: "u"):
                        escape = .unicode(count: 0, value: 0, high: nil)
                        i += 1
                        continue
                    default:
                        return fail(.invalidEscape, "invalid escape \\\(printable(byte)) in JSON string")
                    }
                    scratch.append(mapped)
                    escape = .none
                case .unicode(let digits, let value, let high):
                    guard let nibble = hexValue(byte) else {
                        return fail(.invalidEscape, "invalid hex digit \(printable(byte)) in \\u escape")
                    }
                    let v = value << 4 | nibble
                    if digits < 3 {
                        escape = .unicode(count: digits + 1, value: v, high: high)
                    } else if let high {
                        guard (0xDC00...0xDFFF).contains(v) else {
                            return fail(.unpairedSurrogate, "missing low surrogate after \\u\(String(high, radix: 16))")
                        }
                        appendUTF8(0x10000 + ((high - 0xD800) << 10) + (v - 0xDC00))
                        escape = .none
                    } else if (0xD800...0xDBFF).contains(v) {
                        escape = .lowBackslash(high: v)
                    } else if (0xDC00...0xDFFF).contains(v) {
                        return fail(.unpairedSurrogate, "low surrogate \\u\(String(v, radix: 16)) without a high surrogate")
                    } else {
                        appendUTF8(v)
                        escape = .none
                    }
                case .lowBackslash(let high):
                    guard byte == UInt8(ascii: "\\") else {
                        return fail(.unpairedSurrogate, "missing low surrogate after \\u\(String(high, radix: 16))")
                    }
                    escape = .lowU(high: high)
                case .lowU(let high):
                    guard byte == UInt8(ascii: "u") else {
                        return fail(.unpairedSurrogate, "missing low surrogate after \\u\(String(high, radix: 16))")
                    }
                    escape = .unicode(count: 0, value: 0, high: high)
                }
                i += 1

            case .number(let numberState):
                var s = numberState
                var j = i
                var ended = false
                numberLoop: while j < count {
                    let c = bytes[j]
                    let isDigit = c &- UInt8(ascii: "0") < 10
                    switch s {
                    case .sign:
                        if c == UInt8(ascii: "0") { s = .zero }
                        else if isDigit { s = .integer }
                        else if options.allowNonFiniteNumbers && (c == UInt8(ascii: "i") || c == UInt8(ascii: "n")) {
                            break numberLoop
                        } else { i = j; return fail(.invalidNumber, "no digits after minus sign") }
                    case .zero:
                        if isDigit { i = j; return fail(.invalidNumber, "leading zero followed by another digit") }
                        if c == UInt8(ascii: ".") { s = .dot; integral = false }
                        else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { s = .exponent; integral = false }
                        else { ended = true; break numberLoop }
                    case .integer:
                        if isDigit { break }
                        if c == UInt8(ascii: ".") { s = .dot; integral = false }
                        else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { s = .exponent; integral = false }
                        else { ended = true; break numberLoop }
                    case .dot:
                        if isDigit { s = .fraction } else { i = j; return fail(.invalidNumber, "no digits after decimal point") }
                    case .fraction:
                        if isDigit { break }
                        if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") { s = .exponent }
                        else { ended = true; break numberLoop }
                    case .exponent:
                        if isDigit { s = .exponentDigits }
                        else if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { s = .exponentSign }
                        else { i = j; return fail(.invalidNumber, "no digits in exponent") }
                    case .exponentSign:
                        if isDigit { s = .exponentDigits } else { i = j; return fail(.invalidNumber, "no digits in exponent") }
                    case .exponentDigits:
                        if isDigit { break }
                        ended = true
                        break numberLoop
                    }
                    j += 1
                }
                if j > i { scratch.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<j])) }
                if scratch.count > options.maxNumberLength {
                    i = j
                    return fail(.textTooLarge, "number longer than \(options.maxNumberLength) bytes")
                }
                i = j
                if case .sign = s, j < count {
                    // `-inf` / `-nan`.
                    clearScratch()
                    mode = .literal(negative: true)
                    continue
                }
                mode = .number(s)
                if ended {
                    if let done = finishNumber(end: i, options: options) { return done }
                }

            case .literal(let negative):
                scratch.append(byte)
                var prefixOK = false
                for entry in literalWords where (!negative || entry.nonFinite) && (!entry.nonFinite || options.allowNonFiniteNumbers) {
                    if entry.word.starts(with: scratch) {
                        prefixOK = true
                        if entry.word.count == scratch.count {
                            var value = entry.value
                            if negative, case .float(let d) = value { value = .float(-d) }
                            clearScratch()
                            i += 1
                            if let done = emit(value, end: i) { return done }
                            break
                        }
                    }
                }
                if case .literal = mode {
                    guard prefixOK else {
                        return fail(.unexpectedCharacter, "invalid literal \(String(decoding: scratch, as: UTF8.self).debugDescription)")
                    }
                    i += 1
                }

            case .value(let allowClose):
                if isJSONWhitespace(byte) {
                    i += 1
                    if textStart == nil { position = i }
                    continue
                }
                if byte == UInt8(ascii: "]") && allowClose {
                    i += 1
                    if let done = closeContainer(end: i) { return done }
                    continue
                }
                let topLevel = stack.isEmpty
                if topLevel {
                    textStart = i
                    if !options.allowScalars && byte != UInt8(ascii: "[") && byte != UInt8(ascii: "{") {
                        return fail(.unexpectedCharacter,
                                    "expected '[' or '{' to start a JSON text, found \(printable(byte)) (top-level scalars are not enabled)")
                    }
                }
                switch byte {
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    guard stack.count < options.maxDepth else {
                        return fail(.nestingTooDeep, "arrays and objects nested deeper than \(options.maxDepth)")
                    }
                    let isObject = byte == UInt8(ascii: "{")
                    var container = Container(isObject: isObject)
                    // Room for a typical message's elements at once, instead of growing from one.
                    if !isObject { container.elements.reserveCapacity(4) }
                    stack.append(container)
                    mode = isObject ? .key(allowClose: true) : .value(allowClose: true)
                case UInt8(ascii: "\""):
                    clearScratch()
                    escape = .none
                    mode = .string(isKey: false)
                case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    if let (value, end) = Self.shortInteger(bytes, at: i, maxLength: options.maxNumberLength) {
                        i = end
                        if let done = emit(value, end: i) { return done }
                        continue
                    }
                    clearScratch()
                    integral = true
                    mode = .number(.sign)
                    // Re-scan this byte in number mode (a leading digit moves on from `.sign`).
                    if byte != UInt8(ascii: "-") { continue }
                    scratch.append(byte)
                case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "i"):
                    if byte == UInt8(ascii: "i") && !options.allowNonFiniteNumbers {
                        return fail(.unexpectedCharacter, "unexpected \(printable(byte)) where a JSON value was expected")
                    }
                    clearScratch()
                    mode = .literal(negative: false)
                    continue
                default:
                    return fail(.unexpectedCharacter, "unexpected \(printable(byte)) where a JSON value was expected")
                }
                i += 1

            case .key(let allowClose):
                if isJSONWhitespace(byte) { i += 1; continue }
                if byte == UInt8(ascii: "\"") {
                    clearScratch()
                    escape = .none
                    mode = .string(isKey: true)
                    i += 1
                } else if byte == UInt8(ascii: "}") && allowClose {
                    i += 1
                    if let done = closeContainer(end: i) { return done }
                } else {
                    return fail(.unexpectedCharacter, "expected '\"' to start an object key, found \(printable(byte))")
                }

            case .colon:
                if isJSONWhitespace(byte) { i += 1; continue }
                guard byte == UInt8(ascii: ":") else {
                    return fail(.unexpectedCharacter, "expected ':' after an object key, found \(printable(byte))")
                }
                mode = .value(allowClose: false)
                i += 1

            case .commaOrClose:
                if isJSONWhitespace(byte) { i += 1; continue }
                let isObject = stack[stack.count - 1].isObject
                if byte == UInt8(ascii: ",") {
                    mode = isObject ? .key(allowClose: false) : .value(allowClose: false)
                    i += 1
                } else if byte == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    i += 1
                    if let done = closeContainer(end: i) { return done }
                } else {
                    return fail(.unexpectedCharacter,
                                "expected ',' or '\(isObject ? "}" : "]")' in \(isObject ? "object" : "array"), found \(printable(byte))")
                }
            }
        }
        position = i
        // End of the available bytes.
        if let start = textStart, i - start > options.maxTextSize {
            return fail(.textTooLarge, "JSON text longer than \(options.maxTextSize) bytes")
        }
        if endOfInput {
            if case .number(let s) = mode, stack.isEmpty, s.isTerminal {
                if let done = finishNumber(end: i, options: options) { return done }
            }
            if textStart != nil {
                return fail(.truncated, "the input ended inside a JSON text")
            }
        }
        return .needMore
    }


    private func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    private func printable(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Delivers a finished value to its container; returns the outcome when it completes the text.
    private mutating func emit(_ value: Value, end: Int) -> Outcome? {
        guard !stack.isEmpty else {
            if let start = textStart, end - start > maxTextSize {
                return .failure(JSONError(.textTooLarge, offset: end, "JSON text longer than \(maxTextSize) bytes"))
            }
            return .value(value, end: end)
        }
        let top = stack.count - 1
        if stack[top].isObject {
            let key = stack[top].pendingKey ?? .null
            stack[top].pairs.append((key: key, value: value))
            stack[top].pendingKey = nil
        } else {
            stack[top].elements.append(value)
        }
        mode = .commaOrClose
        return nil
    }

    private mutating func finishString(_ s: String, isKey: Bool, end: Int, options: JSONStreamDecoder.Options) -> Outcome? {
        if isKey {
            stack[stack.count - 1].pendingKey = .text(s)
            mode = .colon
            return nil
        }
        return emit(.text(s), end: end)
    }

    private mutating func closeContainer(end: Int) -> Outcome? {
        let container = stack.removeLast()
        let value: Value = container.isObject ? .map(container.pairs) : .array(container.elements)
        return emit(value, end: end)
    }

    private mutating func finishNumber(end: Int, options: JSONStreamDecoder.Options) -> Outcome? {
        let value = integral ? JSONNumbers.integer(scratch) : JSONNumbers.float(scratch)
        clearScratch()
        return emit(value, end: end)
    }
}

/// Conversions of validated JSON number tokens.
enum JSONNumbers {
    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// An integer token (`-?digits`) as a canonical ``Value``.
    static func integer(_ token: [UInt8]) -> Value {
        let negative = token.first == UInt8(ascii: "-")
        let digits = token.dropFirst(negative ? 1 : 0)
        var magnitude: UInt64 = 0
        var overflow = false
        for d in digits {
            let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
            let (m2, o2) = m1.addingReportingOverflow(UInt64(d - UInt8(ascii: "0")))
            if o1 || o2 { overflow = true; break }
            magnitude = m2
        }
        if !overflow {
            if !negative {
                return magnitude <= UInt64(Int64.max) ? .int(Int64(magnitude)) : .uint(magnitude)
            }
            if magnitude <= UInt64(Int64.max) { return .int(-Int64(magnitude)) }
            if magnitude == UInt64(Int64.max) + 1 { return .int(.min) }
        }
        var limbs: [UInt32] = []
        for d in digits { JSONBigDecimal.multiplyAdd(&limbs, 10, UInt32(d - UInt8(ascii: "0"))) }
        JSONBigDecimal.trim(&limbs)
        if negative { JSONBigDecimal.decrement(&limbs) }
        return .bignum(negative: negative, magnitude: JSONBigDecimal.bigEndianBytes(limbs))
    }

    /// A number token with a fraction or exponent, correctly rounded.
    static func float(_ token: [UInt8]) -> Value {
        // Fast path (exact): at most 15 significant digits and a power of ten up to 1e22.
        var mantissa: UInt64 = 0
        var digitCount = 0
        var fractionDigits = 0
        var exponent = 0
        var exponentNegative = false
        var index = 0
        let negative = token.first == UInt8(ascii: "-")
        if negative { index = 1 }
        var simple = true
        var inFraction = false
        while index < token.count {
            let c = token[index]
            if c == UInt8(ascii: ".") {
                inFraction = true
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                index += 1
                if index < token.count && (token[index] == UInt8(ascii: "-") || token[index] == UInt8(ascii: "+")) {
                    exponentNegative = token[index] == UInt8(ascii: "-")
                    index += 1
                }
                while index < token.count {
                    exponent = exponent * 10 + Int(token[index] - UInt8(ascii: "0"))
                    if exponent > 100_000 { simple = false; break }
                    index += 1
                }
                break
            } else {
                if mantissa != 0 || c != UInt8(ascii: "0") { digitCount += 1 }
                if digitCount > 15 { simple = false; break }
                mantissa = mantissa * 10 + UInt64(c - UInt8(ascii: "0"))
                if inFraction { fractionDigits += 1 }
            }
            index += 1
        }
        if simple {
            let power = (exponentNegative ? -exponent : exponent) - fractionDigits
            if power.magnitude <= 22 {
                var d = Double(mantissa)
                d = power < 0 ? d / powersOfTen[-power] : d * powersOfTen[power]
                return .float(negative ? -d : d)
            }
        }
        let text = String(decoding: token, as: UTF8.self)
        return .float(Double(text) ?? .nan)
    }
}
