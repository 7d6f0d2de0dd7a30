import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Handle {
    // MARK: Callbacks (loop only)

    /// Replaces the error callback. Perl: `on_error`.
    public func onError(_ callback: ((Handle, HandleError) -> Void)?) {
        guard !core.destroyed else { return }
        core.onError = callback
    }

    /// Replaces the read callback and serves buffered data at once. Perl: `on_read`.
    public func onRead(_ callback: ((Handle) -> Void)?) {
        core.setOnRead(callback)
    }

    /// Replaces the end-of-file callback. Perl: `on_eof`.
    public func onEof(_ callback: ((Handle) -> Void)?) {
        guard !core.destroyed else { return }
        core.onEof = callback
    }

    /// Replaces the drain callback; it runs at once when the write buffer is at or below the low water
    /// mark. Perl: `on_drain`.
    ///
    /// A callback that writes again (a refill) gets its next call once the kernel has taken those
    /// bytes. Unlike Perl, that call does not run from inside the callback's `pushWrite` when the
    /// bytes went out at once: Perl nests one level deeper per refill (depths 1, 2, 3, ... without
    /// limit), here the calls of a refill chain run one after the other at depth 2 at most, with the
    /// same bytes in the same order. See the "Deviations from Perl" in <doc:ReadQueue>.
    public func onDrain(_ callback: ((Handle) -> Void)?) {
        core.setOnDrain(callback.map { .user($0) })
    }

    /// Replaces a timeout callback. Perl: `on_timeout`, `on_rtimeout`, `on_wtimeout`.
    public func onTimeout(_ kind: HandleTimeoutKind = .any, _ callback: ((Handle) -> Void)?) {
        guard !core.destroyed else { return }
        core.onTimeout[kind.rawValue] = callback
    }

    // MARK: Timeouts

    /// Sets an inactivity timeout in seconds (`0` disables) and checks it at once, which may call
    /// the timeout callback or `onError` before returning. Perl: `timeout`, `rtimeout`, `wtimeout`.
    public func setTimeout(_ seconds: Double, kind: HandleTimeoutKind = .any) {
        perform { $0.setTimeout(kind, seconds) }
    }

    /// Restarts an inactivity timer as if there had been activity. Perl: `timeout_reset`,
    /// `rtimeout_reset`, `wtimeout_reset`.
    public func resetTimeout(_ kind: HandleTimeoutKind = .any) {
        perform { $0.resetTimeout(kind) }
    }

    // MARK: Settings (loop only)

    /// Bytes asked for by the next read. Perl: `read_size`.
    public var readSize: Int {
        get { core.readSize }
        set { core.setReadSize(newValue) }
    }

    /// The largest read size. Perl: `max_read_size`.
    public var maxReadSize: Int {
        get { core.maxReadSize }
        set { core.maxReadSize = max(1, newValue) }
    }

    /// The read buffer limit (`nil`: none); checked on the next arrival. Perl: `rbuf_max`.
    public var readBufferMax: Int? {
        get { core.readBufferMax }
        set { core.readBufferMax = newValue }
    }

    /// The write buffer limit (`nil`: none). Perl: `wbuf_max`.
    public var writeBufferMax: Int? {
        get { core.writeBufferMax }
        set { core.writeBufferMax = newValue }
    }

    /// `onDrain` runs while the write buffer holds at most this many bytes. Perl: `low_water_mark`.
    public var lowWaterMark: Int {
        get { core.lowWaterMark }
        set { core.setLowWaterMark(newValue) }
    }

    /// Write on the next loop iteration, coalescing writes. Perl: `autocork`.
    public var autocork: Bool {
        get { core.autocork }
        set { core.autocork = newValue }
    }

    /// Seconds pending writes keep going out after destruction. Perl: `linger`.
    public var linger: Double {
        get { core.linger }
        set { core.linger = newValue }
    }

    /// The peer's host name, for TLS verification. Perl: `peername`.
    public var peername: String? {
        get { core.peername }
        set { core.peername = newValue }
    }

    /// Enables or disables Nagle's algorithm (TCP only). Perl: `no_delay`.
    public func setNoDelay(_ on: Bool) {
        perform { $0.setSocketFlag(Int32(IPPROTO_TCP), Int32(TCP_NODELAY), on) }
    }

    /// Enables or disables TCP keepalive. Perl: `keepalive`.
    public func setKeepalive(_ on: Bool) {
        perform { $0.setSocketFlag(SOL_SOCKET, SO_KEEPALIVE, on) }
    }

    /// Enables or disables inline out-of-band data. Perl: `oobinline`.
    public func setOOBInline(_ on: Bool) {
        perform { $0.setSocketFlag(SOL_SOCKET, SO_OOBINLINE, on) }
    }
}
