import NIOCore
import NIOEmbedded

@testable import AEMPHandle

/// Records every write that reaches the channel; can hold the write promises back, so that a write
/// stays outstanding until ``release()``.
final class WriteRecorder: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The bytes of each channel write, in order.
    private(set) var writes: [[UInt8]] = []
    /// Hold the promises of writes (the handle sees them outstanding).
    var hold = false
    private var held: [EventLoopPromise<Void>] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        writes.append(Array(unwrapOutboundIn(data).readableBytesView))
        if hold, let promise {
            held.append(promise)
            context.write(data, promise: nil)
        } else {
            context.write(data, promise: promise)
        }
    }

    /// Completes the held writes (in order).
    func release() {
        let promises = held
        held.removeAll()
        for promise in promises { promise.succeed() }
    }

    /// All bytes written, concatenated.
    var bytes: [UInt8] { writes.flatMap { $0 } }
}

/// A handle on an `EmbeddedChannel` (one thread, the test's): input with ``feed(_:)``, output in
/// ``recorder``, loop ticks with ``tick()``.
final class EmbeddedFixture {
    let channel: EmbeddedChannel
    let recorder = WriteRecorder()
    let handle: Handle
    /// Callback events, in order.
    var events: [String] = []

    /// - Parameters:
    ///   - recordDrain: log `drain` on each `onDrain` call.
    ///   - configure: further options; without `onError`, errors are logged as `error <code> fatal=<bool>`.
    init(recordDrain: Bool = false, _ configure: (inout HandleOptions) -> Void = { _ in }) throws {
        channel = EmbeddedChannel(handler: recorder)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var options = HandleOptions()
        configure(&options)
        let box = EventBox()
        if options.onError == nil {
            options.onError = { _, error in box.add("error \(error.code) fatal=\(error.isFatal)") }
        }
        if recordDrain {
            options.onDrain = { _ in box.add("drain") }
        }
        handle = Handle(channel: channel, options: options)
        self.box = box
        tick()
    }

    private let box: EventBox

    /// Events so far (callbacks, plus those added with ``note(_:)``).
    var log: [String] { box.items }

    func note(_ event: String) { box.add(event) }

    /// Runs the tasks due on the loop (the autocork flush, stash reads).
    func tick() {
        channel.embeddedEventLoop.run()
    }

    /// One socket read's worth of bytes arriving, then the loop runs.
    func feed(_ bytes: some Collection<UInt8>) {
        _ = try? channel.writeInbound(channel.allocator.buffer(bytes: bytes))
        tick()
    }

    /// The peer's end of file arriving.
    func feedEOF() {
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        tick()
    }

    func finish() {
        handle.destroy()
        tick()
        _ = try? channel.finish()
    }
}

/// Events recorded by callbacks of an ``EmbeddedFixture`` (single thread).
final class EventBox: @unchecked Sendable {
    private(set) var items: [String] = []
    func add(_ item: String) { items.append(item) }
}
