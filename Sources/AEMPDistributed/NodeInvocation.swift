import AEMP
import AEMPCodecs
import Distributed

/// Records a distributed call's arguments as AEMP values: each argument encoded on its own with
/// ``AEMPCodecs/ValueEncoder`` (the same shapes as ``AEMP/Node/send(_:encoding:)``).
public struct NodeInvocationEncoder: DistributedTargetInvocationEncoder {
    /// Arguments, results and errors are `Codable`.
    public typealias SerializationRequirement = any Codable

    /// The encoded arguments, in order.
    var arguments: [Value] = []
    /// Mangled names of the generic substitutions of a generic method, in order.
    var genericSubstitutions: [String] = []
    let encoder: ValueEncoder

    init(system: NodeActorSystem) {
        var encoder = ValueEncoder()
        encoder.userInfo[.actorSystemKey] = system
        self.encoder = encoder
    }

    /// Records a generic substitution by its mangled type name.
    ///
    /// - Throws: ``RemoteCallError/Code/malformed`` for a type without a mangled name.
    public mutating func recordGenericSubstitution<T>(_ type: T.Type) throws {
        guard let name = _mangledTypeName(type) else {
            throw RemoteCallError(.malformed, "the generic argument \(T.self) has no mangled name")
        }
        genericSubstitutions.append(name)
    }

    /// Encodes the next argument.
    ///
    /// - Throws: the `EncodingError` of the argument.
    public mutating func recordArgument<Argument: Codable>(_ argument: RemoteCallArgument<Argument>) throws {
        arguments.append(try encoder.encode(argument.value))
    }

    /// Not sent: the callee knows its method's error type.
    public mutating func recordErrorType<E: Error>(_ type: E.Type) throws {}

    /// Not sent: the callee knows its method's return type.
    public mutating func recordReturnType<R: Codable>(_ type: R.Type) throws {}

    /// Nothing to finish.
    public mutating func doneRecording() throws {}
}

/// Hands a call's arguments, decoded from the message's values with ``AEMPCodecs/ValueDecoder``,
/// to the distributed method. Missing arguments fail the call; extra ones are ignored, as Perl's
/// `my ($a, $b) = @_` does.
public struct NodeInvocationDecoder: DistributedTargetInvocationDecoder {
    /// Arguments, results and errors are `Codable`.
    public typealias SerializationRequirement = any Codable

    var arguments: ArraySlice<Value>
    let genericSubstitutions: [String]
    let decoder: ValueDecoder
    private var index = 0

    init(system: NodeActorSystem, arguments: ArraySlice<Value>, genericSubstitutions: [String]) {
        var decoder = ValueDecoder()
        decoder.userInfo[.actorSystemKey] = system
        self.decoder = decoder
        self.arguments = arguments
        self.genericSubstitutions = genericSubstitutions
    }

    /// The generic substitutions the caller sent, as types.
    ///
    /// - Throws: ``RemoteCallError/Code/badArguments`` for a type name this process does not know.
    public mutating func decodeGenericSubstitutions() throws -> [any Any.Type] {
        try genericSubstitutions.map { name in
            guard let type = _typeByName(name) else {
                throw RemoteCallError(.badArguments, "unknown generic argument type \(name.debugDescription)")
            }
            return type
        }
    }

    /// Decodes the next argument.
    ///
    /// - Throws: ``RemoteCallError/Code/badArguments`` naming the argument's position and type.
    public mutating func decodeNextArgument<Argument: Codable>() throws -> Argument {
        defer { index += 1 }
        guard let value = arguments.popFirst() else {
            throw RemoteCallError(
                .badArguments, "argument \(index + 1) (\(Argument.self)) is missing: the call carried \(index)")
        }
        do {
            return try decoder.decode(Argument.self, from: value)
        } catch {
            throw RemoteCallError(.badArguments, "argument \(index + 1) is not a \(Argument.self): \(error)")
        }
    }

    /// Not sent: the callee knows its method's error type.
    public mutating func decodeErrorType() throws -> (any Any.Type)? { nil }

    /// Not sent: the callee knows its method's return type.
    public mutating func decodeReturnType() throws -> (any Any.Type)? { nil }
}

/// Sends a distributed method's outcome to the caller's reply port (see ``NodeActorSystem`` for
/// the shapes): `(1, result)`, `(1)` for `Void`, or `(0, message, type, mangledType, error)`.
public struct NodeResultHandler: DistributedTargetInvocationResultHandler, Sendable {
    /// Arguments, results and errors are `Codable`.
    public typealias SerializationRequirement = any Codable

    let system: NodeActorSystem
    let replyPort: PortID

    /// Sends `(1, value)`.
    public func onReturn<Success: Codable>(value: Success) async throws {
        let encoded: Value
        do {
            encoded = try system.encoder.encode(value)
        } catch {
            return try await onThrow(error: RemoteCallError(.remoteError, "the result does not encode: \(error)"))
        }
        system.node.send(replyPort, [.int(1), encoded])
    }

    /// Sends `(1)`.
    public func onReturnVoid() async throws {
        system.node.send(replyPort, [.int(1)])
    }

    /// Sends `(0, message, type, mangledType, error)`: the error itself when it is `Encodable`
    /// (the caller decodes it when it knows the type), else `undef` in its place.
    public func onThrow<Err: Error>(error: Err) async throws {
        system.node.send(replyPort, NodeActorSystem.errorReply(error, encoder: system.encoder))
    }
}
