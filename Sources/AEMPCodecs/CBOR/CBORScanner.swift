/// A resumable structural scan that finds where one CBOR item ends, without building values.
///
/// The scan walks item heads, skips string contents by their declared length, and keeps a stack of
/// open containers. When the input ends inside the item it stops *at the head it could not finish*
/// and remembers its position and stack, so the next call continues there: every byte of an item is
/// examined at most once however the item arrives (amortized O(n) for an n-byte item), and a string
/// that is still arriving costs O(1) per call. The stack holds one small entry per open container
/// (at most `maxDepth`), reused across items; nothing else is allocated.
///
/// It checks well-formedness (reserved additional information, break placement, chunk types,
/// two-byte simple values) plus the depth and size limits; UTF-8 is checked when the value is built.
struct CBORScanner {
    enum Frame {
        /// A definite-length array or map (maps count keys and values), or a tag (1).
        case definite(remaining: UInt64)
        case indefiniteArray
        case indefiniteMap(expectingValue: Bool)
        case indefiniteString(major: UInt8)
    }

    let maxDepth: Int
    let maxItemSize: Int
    /// How far the current item has been scanned (the offset of the next head to read).
    private(set) var offset = 0
    private var frames: [Frame] = []

    init(maxDepth: Int, maxItemSize: Int) {
        self.maxDepth = maxDepth
        self.maxItemSize = max(0, maxItemSize)
    }

    /// Forgets the progress on the current item.
    mutating func reset() {
        offset = 0
        frames.removeAll(keepingCapacity: true)
    }

    private func tooLarge(_ at: Int) -> CBORError {
        CBORError(.itemTooLarge, offset: at, message: "item larger than the limit of \(maxItemSize) bytes")
    }

    /// Continues scanning the item that starts at `bytes[0]`.
    /// - Returns: the item's length when it is complete (the state is then reset), or `nil` when more
    ///   bytes are needed (the progress is kept; call again with the same bytes plus more).
    mutating func scan(_ bytes: UnsafeRawBufferPointer) throws(CBORError) -> Int? {
        var position = offset
        while true {
            guard let head = try CBORHead.read(bytes, at: position) else {
                offset = position
                if position > maxItemSize { throw tooLarge(position) }
                return nil
            }
            let start = position
            var completed = true
            if case .indefiniteString(let major) = frames.last, bytes[start] != 0xff {
                guard head.major == major, !head.isIndefinite else {
                    throw CBORError(
                        .invalidIndefiniteString, offset: start,
                        message: "a chunk of an indefinite-length string must be a definite-length string "
                            + "of the same major type")
                }
            }
            switch head.major {
            case 0, 1:
                if head.isIndefinite { throw indefiniteNotAllowed(head.major, start) }
                position += head.length
            case 2, 3:
                if head.isIndefinite {
                    frames.append(.indefiniteString(major: head.major))
                    position += 1
                    completed = false
                } else {
                    // Overflow-free: start <= maxItemSize here, and head.length <= 9.
                    let room = maxItemSize - start - head.length
                    guard room >= 0, head.argument <= UInt64(room) else { throw tooLarge(start) }
                    let end = start + head.length + Int(head.argument)
                    guard end <= bytes.count else {
                        offset = start
                        return nil
                    }
                    position = end
                }
            case 4, 5, 6:
                if head.major == 6 && head.isIndefinite { throw indefiniteNotAllowed(6, start) }
                // Every array, map and tag is a level of nesting, empty ones included (as when building).
                guard frames.count < maxDepth else {
                    throw CBORError(.nestingTooDeep, offset: start, message: "nesting deeper than \(maxDepth)")
                }
                if !head.isIndefinite && head.argument == 0 && head.major != 6 {
                    position += head.length  // an empty container, possibly with a non-preferred head
                    break
                }
                if head.isIndefinite {
                    frames.append(head.major == 4 ? .indefiniteArray : .indefiniteMap(expectingValue: false))
                } else if head.major == 6 {
                    frames.append(.definite(remaining: 1))
                } else {
                    // Every element takes at least one byte.
                    guard head.argument <= UInt64(maxItemSize) else { throw tooLarge(start) }
                    frames.append(.definite(remaining: head.major == 5 ? head.argument * 2 : head.argument))
                }
                position += head.length
                completed = false
            default:
                if head.info == 31 {
                    switch frames.last {
                    case .indefiniteArray?, .indefiniteString?, .indefiniteMap(expectingValue: false)?:
                        frames.removeLast()
                    case .indefiniteMap(expectingValue: true)?:
                        throw CBORError(
                            .unexpectedBreak, offset: start, message: "break after a map key without its value")
                    default:
                        throw CBORError(
                            .unexpectedBreak, offset: start, message: "break outside an indefinite-length item")
                    }
                } else if head.info == 24 && head.argument < 32 {
                    throw CBORError(
                        .invalidSimpleValue, offset: start,
                        message: "simple value \(head.argument) must use the one-byte form")
                }
                position += head.length
            }
            if position > maxItemSize { throw tooLarge(start) }
            guard completed else { continue }
            // One item finished: count it in the enclosing containers, closing those that are full.
            while true {
                guard let top = frames.last else {
                    reset()
                    return position
                }
                switch top {
                case .definite(let remaining):
                    if remaining == 1 {
                        frames.removeLast()
                        continue
                    }
                    frames[frames.count - 1] = .definite(remaining: remaining - 1)
                case .indefiniteMap(let expectingValue):
                    frames[frames.count - 1] = .indefiniteMap(expectingValue: !expectingValue)
                case .indefiniteArray, .indefiniteString:
                    break
                }
                break
            }
        }
    }

    private func indefiniteNotAllowed(_ major: UInt8, _ offset: Int) -> CBORError {
        CBORError(
            .reservedAdditionalInfo, offset: offset, message: "indefinite length is not allowed for major type \(major)"
        )
    }
}
