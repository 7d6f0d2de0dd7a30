import NIOCore
import NIOPosix

/// What a reply must match to answer a query: id, question, and (for UDP) the source address.
struct DNSQueryKey: Sendable {
    var id: UInt16
    var name: String
    var type: DNSRecordType
    var server: DNSResolver.Nameserver

    /// Decodes `bytes` and checks that they answer this query.
    ///
    /// - Throws: `EPROTO` for a malformed message or one that answers a different query.
    func accept(_ bytes: [UInt8]) throws(SocketError) -> DNSMessage {
        let message = try DNSMessage.decode(bytes)
        guard message.id == id else {
            throw SocketError(.protocolError, "reply from \(server) has id \(message.id), expected \(id)")
        }
        guard message.isResponse, message.opcode == 0 else {
            throw SocketError(.protocolError, "message from \(server) is not a query response")
        }
        guard message.questions.count == 1, message.questions[0].name == name,
            message.questions[0].type == type, message.questions[0].recordClass == DNSMessage.classIN
        else {
            throw SocketError(.protocolError, "reply from \(server) does not repeat the question \(name) \(type)")
        }
        return message
    }
}

/// Loop-confined state of one query sent to one server: completes the promise exactly once,
/// with the first matching reply, the timeout, or a socket error.
final class DNSReplyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let key: DNSQueryKey
    private let promise: EventLoopPromise<DNSMessage>
    private let timeout: TimeAmount
    private let transport: String
    private var timer: Scheduled<Void>?
    /// Why the last reply was rejected; reported if no valid reply arrives in time.
    private var rejection: SocketError?

    init(key: DNSQueryKey, promise: EventLoopPromise<DNSMessage>, timeout: TimeAmount, transport: String) {
        self.key = key
        self.promise = promise
        self.timeout = timeout
        self.transport = transport
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            if let rejection {
                promise.fail(SocketError(.protocolError, "no valid DNS reply: \(rejection.message)"))
            } else {
                promise.fail(
                    SocketError(.timedOut, "nameserver \(key.server) did not answer \(key.name) \(key.type) over \(transport)")
                )
            }
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        promise.fail(SocketError(.cancelled, "DNS query for \(key.name) abandoned"))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        offer(unwrapInboundIn(data), context: context)
    }

    func offer(_ buffer: ByteBuffer, context: ChannelHandlerContext) {
        do throws(SocketError) {
            let message = try key.accept(Array(buffer.readableBytesView))
            timer?.cancel()
            promise.succeed(message)
        } catch {
            // Over UDP anyone may send us junk, so keep waiting for the real reply; over TCP the
            // server's one reply was bad and nothing else will come.
            rejection = error
            if transport == "TCP" {
                timer?.cancel()
                promise.fail(error)
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        timer?.cancel()
        promise.fail(socketError(error, server: key.server, transport: transport))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        promise.fail(SocketError(.protocolError, "nameserver \(key.server) closed the \(transport) connection without a reply"))
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension DNSReplyHandler: Sendable {}

/// Unwraps datagrams from the connected UDP socket (the kernel already filters by peer; the
/// source address is checked again here) and passes their bytes on.
final class DNSDatagramUnwrapper: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias InboundOut = ByteBuffer

    private let expectedSource: SocketAddress

    init(expectedSource: SocketAddress) { self.expectedSource = expectedSource }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.remoteAddress == expectedSource else { return }
        context.fireChannelRead(wrapInboundOut(envelope.data))
    }
}

@available(*, unavailable)
extension DNSDatagramUnwrapper: Sendable {}

/// Splits a DNS-over-TCP stream into messages (each preceded by a 16-bit length, RFC 1035 4.2.2).
struct DNSTCPFrameDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(length)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        return buffer.readSlice(length: Int(length))
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}

extension DNSResolver {
    /// Sends one query to one server over UDP or TCP and waits (bounded by the configured
    /// timeout) for the matching reply.
    func exchange(
        query: [UInt8],
        key: DNSQueryKey,
        overTCP: Bool
    ) async throws(SocketError) -> DNSMessage {
        let remote: SocketAddress
        do {
            remote = try SocketAddress(packedIPAddress: ByteBuffer(bytes: key.server.address.bytes), port: key.server.port)
        } catch {
            throw SocketError(.invalidArgument, "nameserver \(key.server) is not a usable address", underlying: error)
        }
        let eventLoop = group.next()
        let promise = eventLoop.makePromise(of: DNSMessage.self)
        let timeout = configuration.timeoutAmount
        let transport = overTCP ? "TCP" : "UDP"

        let channelFuture: EventLoopFuture<any Channel>
        if overTCP {
            channelFuture = ClientBootstrap(group: eventLoop)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(DNSTCPFrameDecoder(), maximumBufferSize: 70_000),
                            DNSReplyHandler(key: key, promise: promise, timeout: timeout, transport: transport)
                        )
                    }
                }
                .connect(to: remote)
        } else {
            channelFuture = DatagramBootstrap(group: eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            DNSDatagramUnwrapper(expectedSource: remote),
                            DNSReplyHandler(key: key, promise: promise, timeout: timeout, transport: transport)
                        )
                    }
                }
                .connect(to: remote)
        }
        var payload = ByteBufferAllocator().buffer(capacity: query.count + 2)
        if overTCP { payload.writeInteger(UInt16(query.count)) }
        payload.writeBytes(query)

        let result: Result<DNSMessage, any Error> = await withTaskCancellationHandler {
            do {
                let channel = try await channelFuture.get()
                channel.writeAndFlush(payload).whenFailure { error in
                    promise.fail(SocketError(.protocolError, "cannot send to nameserver \(key.server): \(error)", underlying: error))
                }
                defer { channel.close(promise: nil) }
                return .success(try await promise.futureResult.get())
            } catch {
                promise.fail(error)
                return .failure(error)
            }
        } onCancel: {
            promise.fail(SocketError(.cancelled, "DNS query for \(key.name) cancelled"))
            channelFuture.whenSuccess { $0.close(promise: nil) }
        }
        switch result {
        case .success(let message):
            return message
        case .failure(let error):
            throw socketError(error, server: key.server, transport: transport)
        }
    }
}

/// Maps a socket-level failure talking to a nameserver onto a ``SocketError``: errno-carrying
/// errors keep their errno (`ECONNREFUSED` when the ICMP port-unreachable came back,
/// `ENETUNREACH`...), a connect timeout becomes `ETIMEDOUT`, anything else `EPROTO`.
func socketError(_ error: any Error, server: DNSResolver.Nameserver, transport: String) -> SocketError {
    if let error = error as? SocketError { return error }
    let code: SocketError.Code
    if let ioError = error as? IOError {
        code = SocketError.Code(errno: ioError.errnoCode)
    } else if case ChannelError.connectTimeout = error {
        code = .timedOut
    } else {
        code = .protocolError
    }
    return SocketError(code, "cannot talk to nameserver \(server) over \(transport): \(error)", underlying: error)
}
