import AEMP
import AEMPCodecs
import Distributed
import Logging
import NIOCore
import Synchronization

/// A `DistributedActorSystem` on an AEMP ``AEMP/Node``: every distributed actor is a port, every
/// remote call an ordinary AEMP message, so Swift actors, Swift ports and Perl ports call each
/// other.
///
/// ```swift
/// distributed actor Greeter {
///     typealias ActorSystem = NodeActorSystem
///     distributed func greet(name: String) -> String { "Hello, \(name)!" }
/// }
///
/// let system = NodeActorSystem(node: node)
/// let greeter = Greeter(actorSystem: system)       // greeter.id: a port ID, "server#Kx1…"
/// // elsewhere, with the ID:
/// let remote = try Greeter.resolve(id: id, using: otherSystem)
/// try await remote.greet(name: "Ann")              // "Hello, Ann!"
/// ```
///
/// ## Wire shape
/// - An actor's ID is its port's ID (`node#name`); `mon`, `kil` and `snd` work on it as on any port.
/// - A call is Perl's `cal` shape: `(method, arguments..., reply_port)` sent to the actor's port.
///   `method` is the Swift selector (`"greet(name:)"`), or the bare name (`"greet"`) when only one
///   method of the type has it; each argument is encoded as ``AEMP/Node/send(_:encoding:)``
///   documents (a struct is a map with text keys, …). A generic method's call names its generic
///   arguments: `method` is then an array `[selector, mangled type names...]`.
/// - The reply, sent to `reply_port`, starts with a status: `(1, result)` (`(1)` for a `Void`
///   method), or `(0, message, type, mangled_type, error)` when the method threw: `message` is the
///   error's description, `type` its Swift type name, `mangled_type` the name the caller's process
///   uses to decode `error`, the error encoded when it is `Codable` (else `undef`). A caller that
///   knows the type gets the error itself; otherwise a ``RemoteCallError`` with the message.
///
/// From Perl:
/// ```perl
/// cal $greeter, "greet", "Ann", sub {
///    my ($ok, $result) = @_ or die "no reply: the actor died or the call timed out";
///    print $ok ? "$result\n" : "failed: $result\n";
/// };
/// ```
///
/// ## Calls and failures
/// A remote call waits at most ``callTimeout`` (or the time set with ``withCallTimeout(_:_:)``),
/// monitors the actor's port meanwhile, and throws ``AEMP/CallError``: ``AEMP/CallError/timeout(_:)``,
/// ``AEMP/CallError/portDied(_:)`` with the kill reason (`no_such_port` for an actor that is gone or
/// never was, `transport_error` when its node is lost), ``AEMP/CallError/nodeShutDown``. It never
/// hangs. An actor that is deinitialized kills its port (a normal kill): monitors fire, later calls
/// throw `no_such_port`.
///
/// Calls on the callee run as tasks on the actor (one at a time, as actor isolation demands),
/// started from the node's loop.
public final class NodeActorSystem: DistributedActorSystem, Sendable {
    /// Actor IDs are port IDs.
    public typealias ActorID = PortID
    /// Encodes call arguments.
    public typealias InvocationEncoder = NodeInvocationEncoder
    /// Decodes call arguments.
    public typealias InvocationDecoder = NodeInvocationDecoder
    /// Sends results and errors back.
    public typealias ResultHandler = NodeResultHandler
    /// Arguments, results and errors are `Codable`.
    public typealias SerializationRequirement = any Codable

    /// The node the actors live on and calls travel through.
    public let node: Node
    /// How long a remote call waits for its reply unless ``withCallTimeout(_:_:)`` says otherwise
    /// (Perl `cal`'s default is 30 seconds as well).
    public let callTimeout: Duration
    let logger: Logger
    private let actors = Mutex<[String: WeakActor]>([:])

    @TaskLocal static var callTimeoutOverride: Duration?

    /// Creates an actor system on a running node.
    ///
    /// - Parameters:
    ///   - node: the node.
    ///   - callTimeout: how long remote calls wait for a reply by default.
    ///   - logger: where malformed calls are logged.
    public init(node: Node, callTimeout: Duration = .seconds(30), logger: Logger = Logger(label: "aemp.distributed")) {
        self.node = node
        self.callTimeout = callTimeout
        self.logger = logger
        self.loopExecutor = node.eventLoop.executor.asUnownedSerialExecutor()
        self.loopTaskExecutor = LoopTaskExecutor(loop: node.eventLoop)
    }

    /// A value encoder that carries the system, so that distributed actor references in arguments
    /// and results encode (made per use: kept in the system it would keep the system alive).
    var encoder: ValueEncoder {
        var encoder = ValueEncoder()
        encoder.userInfo[.actorSystemKey] = self
        return encoder
    }

    /// A value decoder that carries the system, so that distributed actor references decode.
    var decoder: ValueDecoder {
        var decoder = ValueDecoder()
        decoder.userInfo[.actorSystemKey] = self
        return decoder
    }

    /// The serial executor of the node's event loop. A distributed actor that returns it as its
    /// executor runs on the node's loop, like port callbacks: calls reach it and replies leave it
    /// without a thread hop (the lowest latency), at the price that a long-running method holds up
    /// the node's messages meanwhile, as a slow port callback would.
    ///
    /// ```swift
    /// distributed actor Greeter {
    ///     typealias ActorSystem = NodeActorSystem
    ///     nonisolated var unownedExecutor: UnownedSerialExecutor { actorSystem.loopExecutor }
    /// }
    /// ```
    public let loopExecutor: UnownedSerialExecutor

    /// Runs the tasks of calls to actors on ``loopExecutor`` on the node's loop as well.
    let loopTaskExecutor: LoopTaskExecutor

    /// Runs `body` with remote calls made in it (in this task and its child tasks) waiting at most
    /// `timeout`.
    ///
    /// - Parameters:
    ///   - timeout: the call timeout.
    ///   - body: the calls.
    /// - Returns: what `body` returns.
    public static func withCallTimeout<R>(
        _ timeout: Duration, _ body: () async throws -> R, isolation: isolated (any Actor)? = #isolation
    ) async rethrows -> R {
        try await $callTimeoutOverride.withValue(timeout, operation: body, isolation: isolation)
    }

    // MARK: DistributedActorSystem

    /// Returns the local actor with `id`, or `nil` (a remote reference) for an ID on another node or a
    /// local ID without a live actor (calls through it then throw `no_such_port`).
    ///
    /// - Throws: ``RemoteCallError/Code/wrongType`` when the local actor with that ID has another type.
    public func resolve<Act>(id: PortID, as actorType: Act.Type) throws -> Act?
    where Act: DistributedActor, Act.ID == PortID {
        guard id.node == node.nodeID, let actor = actors.withLock({ $0[id.name]?.actor }) else { return nil }
        guard let typed = actor as? Act else {
            throw RemoteCallError(.wrongType, "\(id) is a \(type(of: actor)), not a \(Act.self)")
        }
        return typed
    }

    /// Creates the actor's port; its name is the actor ID's name.
    public func assignID<Act>(_ actorType: Act.Type) -> PortID where Act: DistributedActor, Act.ID == PortID {
        node.port { [weak self] context, message in
            self?.receive(message, on: context.port)
        }
    }

    /// Makes the actor reachable through its port.
    public func actorReady<Act>(_ actor: Act) where Act: DistributedActor, Act.ID == PortID {
        actors.withLock { $0[actor.id.name] = WeakActor(actor: actor) }
    }

    /// Kills the port of a deinitialized actor (a normal kill: monitors fire).
    public func resignID(_ id: PortID) {
        actors.withLock { _ = $0.removeValue(forKey: id.name) }
        node.kill(id)
    }

    /// A fresh encoder for a call's arguments.
    public func makeInvocationEncoder() -> NodeInvocationEncoder {
        NodeInvocationEncoder(system: self)
    }

    /// Sends the call to the actor's port and decodes the reply.
    ///
    /// - Throws: ``AEMP/CallError`` when no reply comes (timeout, the port died, shutdown); the
    ///   remote error when the method threw one this process can decode; else ``RemoteCallError``.
    public func remoteCall<Act, Err, Res>(
        on actor: Act, target: RemoteCallTarget, invocation: inout NodeInvocationEncoder, throwing: Err.Type,
        returning: Res.Type
    ) async throws -> Res where Act: DistributedActor, Act.ID == PortID, Err: Error, Res: Codable {
        let reply = try await call(actor.id, target: target, actorType: Act.self, invocation: invocation)
        guard reply.count >= 2 else {
            throw RemoteCallError(.malformed, "the reply of \(actor.id) has no result: \(reply)")
        }
        do {
            return try decoder.decode(Res.self, from: reply[1])
        } catch {
            throw RemoteCallError(.malformed, "the result of \(actor.id) is not a \(Res.self): \(error)")
        }
    }

    /// Sends the call to the actor's port and waits for its acknowledgement.
    ///
    /// - Throws: as ``remoteCall(on:target:invocation:throwing:returning:)``.
    public func remoteCallVoid<Act, Err>(
        on actor: Act, target: RemoteCallTarget, invocation: inout NodeInvocationEncoder, throwing: Err.Type
    ) async throws where Act: DistributedActor, Act.ID == PortID, Err: Error {
        _ = try await call(actor.id, target: target, actorType: Act.self, invocation: invocation)
    }

    // MARK: Calling

    /// Sends a call and returns a successful reply (status 1), throwing a failed one.
    private func call(
        _ id: PortID, target: RemoteCallTarget, actorType: Any.Type, invocation: NodeInvocationEncoder
    ) async throws -> [Value] {
        let selector = DistributedTargets.cachedSelector(of: target, on: actorType)
        var message: [Value] = []
        message.reserveCapacity(invocation.arguments.count + 2)
        if invocation.genericSubstitutions.isEmpty {
            message.append(.text(selector))
        } else {
            message.append(.array([.text(selector)] + invocation.genericSubstitutions.map { .text($0) }))
        }
        message.append(contentsOf: invocation.arguments)
        let reply = try await node.call(id, message, timeout: Self.callTimeoutOverride ?? callTimeout)
        switch reply.first {
        case .some(let status) where Self.isSuccess(status):
            return reply
        case .some:
            throw decodeError(reply)
        case nil:
            throw RemoteCallError(.malformed, "\(id) replied with an empty message")
        }
    }

    /// Perl truth of a reply's status: `1`, a true boolean, a string other than `""` and `"0"`.
    static func isSuccess(_ status: Value) -> Bool {
        switch status {
        case .int(let number): number != 0
        case .uint(let number): number != 0
        case .bool(let flag): flag
        case .float(let number): number != 0
        case .text, .bytes: status.stringValue.map { $0 != "" && $0 != "0" } ?? false
        default: false
        }
    }

    /// The error a failed reply carries: the thrown error itself when its type is known here and it
    /// decodes, else a ``RemoteCallError``.
    private func decodeError(_ reply: [Value]) -> any Error {
        let message = reply.count > 1 ? reply[1].stringValue ?? "\(reply[1])" : "the remote call failed"
        let typeName = reply.count > 2 ? reply[2].stringValue : nil
        if reply.count > 4, let mangled = reply[3].stringValue, reply[4] != .null,
            let type = _typeByName(mangled) as? any (Error & Decodable).Type
        {
            if let error = try? decodeError(type, from: reply[4]) { return error }
        }
        return RemoteCallError(.remoteError, message, errorType: typeName)
    }

    private func decodeError<E: Error & Decodable>(_ type: E.Type, from value: Value) throws -> E {
        try decoder.decode(E.self, from: value)
    }

    /// The reply of a thrown error: `(0, message, type, mangled_type, encoded error or undef)`.
    static func errorReply(_ error: some Error, encoder: ValueEncoder) -> [Value] {
        let type = type(of: error as any Error)
        var encoded = Value.null
        var mangled = Value.null
        if let encodable = error as? any Encodable, let name = _mangledTypeName(type),
            let value = try? encoder.encode(encodable)
        {
            encoded = value
            mangled = .text(name)
        }
        let message = (error as? RemoteCallError)?.message ?? String(describing: error)
        return [.int(0), .text(message), .text(String(reflecting: type)), mangled, encoded]
    }

    // MARK: Serving

    /// A message arrived on an actor's port: run the call it carries on the actor.
    private func receive(_ message: [Value], on port: PortID) {
        guard message.count >= 2, let replyText = message.last?.stringValue, let replyPort = PortID(replyText) else {
            logger.warning(
                "a message to actor \(port) is not a call (method, arguments..., reply port): dropped",
                metadata: ["aemp.elements": "\(message.count)"])
            return
        }
        let failure = { (error: RemoteCallError) in
            self.node.send(replyPort, Self.errorReply(error, encoder: self.encoder))
        }
        guard let (name, generics) = Self.method(message[0]) else {
            return failure(RemoteCallError(.malformed, "the first element names no method: \(message[0])"))
        }
        guard let actor = actors.withLock({ $0[port.name]?.actor }) else {
            return failure(RemoteCallError(.noSuchActor, "no live actor has the ID \(port)"))
        }
        let identifier: String
        switch DistributedTargets.thunk(name, on: type(of: actor)) {
        case .success(let found): identifier = found
        case .failure(let error): return failure(error)
        }
        let arguments = message[1..<(message.count - 1)]
        let handler = NodeResultHandler(system: self, replyPort: replyPort)
        let target = RemoteCallTarget(identifier)
        if runsOnLoop(actor) {
            // Everything on the node's loop: decoding, the method, the reply. Started in place, so a
            // call costs no thread hop at all.
            let executor = loopTaskExecutor
            if #available(macOS 26, *) {
                Task.immediate(executorPreference: executor) {
                    await self.execute(target, on: actor, arguments: arguments, generics: generics, handler: handler)
                }
            } else {
                Task(executorPreference: executor) {
                    await self.execute(target, on: actor, arguments: arguments, generics: generics, handler: handler)
                }
            }
        } else {
            Task {
                await self.execute(target, on: actor, arguments: arguments, generics: generics, handler: handler)
            }
        }
    }
}

extension NodeActorSystem {
    /// Decodes the arguments, runs the method, replies.
    private func execute(
        _ target: RemoteCallTarget, on actor: any DistributedActor, arguments: ArraySlice<Value>, generics: [String],
        handler: NodeResultHandler
    ) async {
        var decoder = NodeInvocationDecoder(system: self, arguments: arguments, genericSubstitutions: generics)
        do {
            try await executeDistributedTarget(on: actor, target: target, invocationDecoder: &decoder, handler: handler)
        } catch {
            try? await handler.onThrow(error: error)
        }
    }

    /// Whether the actor runs on the node's loop (its executor is ``loopExecutor``).
    private func runsOnLoop(_ actor: any DistributedActor) -> Bool {
        let own = actor.unownedExecutor
        let loop = loopExecutor
        return withUnsafeBytes(of: own) { ownBytes in
            withUnsafeBytes(of: loop) { loopBytes in ownBytes.elementsEqual(loopBytes) }
        }
    }

    /// The method element of a call: a name, or `[name, generic argument types...]`.
    static func method(_ element: Value) -> (name: String, generics: [String])? {
        if case .array(let parts) = element {
            guard let name = parts.first?.stringValue else { return nil }
            return (name, parts.dropFirst().compactMap(\.stringValue))
        }
        return element.stringValue.map { ($0, []) }
    }
}

/// A task executor on a node's event loop: the nonisolated parts of a call to an actor that runs on
/// the loop (decoding, replying) stay on the loop too.
final class LoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A registered actor, held weakly so that it can deinitialize.
private struct WeakActor: Sendable {
    weak var actor: (any DistributedActor)?
}
