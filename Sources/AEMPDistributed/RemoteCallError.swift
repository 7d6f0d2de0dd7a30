/// Why a distributed call did not return a value, when the reason is not a transport failure (those
/// throw ``AEMP/CallError``: a timeout, the actor's port dying with its kill reason, the node
/// shutting down).
///
/// It is `Codable`, so the callee sends it as a typed error; a Perl port that serves calls can
/// reply `(0, $message)` and the caller gets a ``Code/remoteError`` carrying that message.
public struct RemoteCallError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable, Codable {
        /// The remote method threw an error that is not `Codable` (or whose type this process does
        /// not know); ``RemoteCallError/message`` describes it and ``RemoteCallError/errorType``
        /// names its type.
        case remoteError = "remote_error"
        /// The actor's type has no distributed method of that name (or the name is ambiguous).
        case unknownMethod = "unknown_method"
        /// The arguments did not decode into the method's parameter types.
        case badArguments = "bad_arguments"
        /// No live actor has that ID (its port exists but the actor is gone or not ready).
        case noSuchActor = "no_such_actor"
        /// The message or the reply did not have the documented shape.
        case malformed = "malformed"
        /// The ID belongs to an actor of another type than the one asked for.
        case wrongType = "wrong_type"
    }

    /// What went wrong.
    public var code: Code
    /// A readable explanation (for ``Code/remoteError``: the remote error's description).
    public var message: String
    /// The Swift type name of the remote error (`MyModule.QueueError`), when one was thrown.
    public var errorType: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: what went wrong.
    ///   - message: the explanation.
    ///   - errorType: the remote error's type name, if any.
    public init(_ code: Code, _ message: String, errorType: String? = nil) {
        self.code = code
        self.message = message
        self.errorType = errorType
    }

    /// `remote_error: <message> (<type>)`.
    public var description: String {
        if let errorType { "\(code.rawValue): \(message) (\(errorType))" } else { "\(code.rawValue): \(message)" }
    }
}
