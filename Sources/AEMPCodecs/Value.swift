import NIOCore

/// A value of the CBOR data model (RFC 8949), the currency of AEMP messages.
///
/// A message is an array of values, as in Perl. JSON framing carries the JSON subset of this model.
///
/// Integers are kept canonical: every integer in `Int64`'s range is ``int(_:)``; ``uint(_:)`` holds
/// only values above `Int64.max`; everything beyond 64 bits (and negative values below `Int64.min`)
/// is a ``bignum(negative:magnitude:)``.
public enum Value: Sendable {
    /// CBOR `null` (Perl `undef`).
    case null
    /// CBOR `undefined` (Perl `Types::Serialiser::error`).
    case undefined
    /// `true` or `false`.
    case bool(Bool)
    /// An integer in `Int64.min ... Int64.max`.
    case int(Int64)
    /// An integer above `Int64.max` (up to `UInt64.max`).
    case uint(UInt64)
    /// An integer outside the 64-bit ranges (CBOR tags 2 and 3, RFC 8949 §3.4.3).
    ///
    /// `magnitude` is big-endian without leading zeros. The value is `magnitude` when `negative` is
    /// false, and `-1 - magnitude` when it is true, exactly as RFC 8949 defines tag 3.
    case bignum(negative: Bool, magnitude: [UInt8])
    /// A floating-point number, whatever width it had on the wire (half, single or double).
    case float(Double)
    /// A UTF-8 text string (CBOR major type 3).
    case text(String)
    /// A byte string (CBOR major type 2). Perl sends most strings this way.
    case bytes(ByteBuffer)
    /// An array.
    case array([Value])
    /// A map with keys of any type, in wire order.
    case map([(key: Value, value: Value)])
    /// A tagged value (tags the decoder does not interpret itself are preserved).
    indirect case tagged(UInt64, Value)
    /// A CBOR simple value other than false, true, null and undefined.
    case simple(UInt8)
}
