import NIOCore

extension Value: Equatable {
    /// Structural equality.
    ///
    /// Maps compare as unordered collections of key/value pairs (CBOR and JSON maps have no
    /// meaningful order). Floats compare by value, with every NaN equal to every other NaN and
    /// `-0.0 == 0.0`. An integer never equals a float, a text string never equals a byte string.
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null), (.undefined, .undefined): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int(let a), .int(let b)): a == b
        case (.uint(let a), .uint(let b)): a == b
        case (.bignum(let n1, let m1), .bignum(let n2, let m2)): n1 == n2 && m1 == m2
        case (.float(let a), .float(let b)): a == b || (a.isNaN && b.isNaN)
        case (.text(let a), .text(let b)): a == b
        case (.bytes(let a), .bytes(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.map(let a), .map(let b)): mapsEqual(a, b)
        case (.tagged(let t1, let v1), .tagged(let t2, let v2)): t1 == t2 && v1 == v2
        case (.simple(let a), .simple(let b)): a == b
        default: false
        }
    }

    private static func mapsEqual(_ a: [(key: Value, value: Value)], _ b: [(key: Value, value: Value)]) -> Bool {
        guard a.count == b.count else { return false }
        // Fast path: same order.
        if zip(a, b).allSatisfy({ $0.key == $1.key && $0.value == $1.value }) { return true }
        var unmatched = b
        for pair in a {
            guard let index = unmatched.firstIndex(where: { $0.key == pair.key && $0.value == pair.value }) else {
                return false
            }
            unmatched.remove(at: index)
        }
        return true
    }
}

extension Value: Hashable {
    /// Hashes consistently with ``==(_:_:)``: map hashing ignores pair order.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .undefined: hasher.combine(1 as UInt8)
        case .bool(let b): hasher.combine(2 as UInt8); hasher.combine(b)
        case .int(let i): hasher.combine(3 as UInt8); hasher.combine(i)
        case .uint(let u): hasher.combine(4 as UInt8); hasher.combine(u)
        case .bignum(let negative, let magnitude):
            hasher.combine(5 as UInt8); hasher.combine(negative); hasher.combine(magnitude)
        case .float(let d):
            hasher.combine(6 as UInt8)
            if d.isNaN { hasher.combine(UInt64.max) } else { hasher.combine(d == 0 ? 0 : d.bitPattern) }
        case .text(let s): hasher.combine(7 as UInt8); hasher.combine(s)
        case .bytes(let b): hasher.combine(8 as UInt8); hasher.combine(b)
        case .array(let a): hasher.combine(9 as UInt8); hasher.combine(a)
        case .map(let pairs):
            hasher.combine(10 as UInt8)
            hasher.combine(pairs.count)
            var combined = 0
            for pair in pairs {
                var pairHasher = Hasher()
                pairHasher.combine(pair.key)
                pairHasher.combine(pair.value)
                combined ^= pairHasher.finalize()
            }
            hasher.combine(combined)
        case .tagged(let tag, let value): hasher.combine(11 as UInt8); hasher.combine(tag); hasher.combine(value)
        case .simple(let s): hasher.combine(12 as UInt8); hasher.combine(s)
        }
    }
}
