import NIOCore

/// Settings and callbacks given to a ``Handle`` when it is created (Perl: the arguments of
/// `AnyEvent::Handle->new`).
///
/// Every setting can also be changed later through the ``Handle`` method of the same name.
/// Callbacks run on the handle's event loop and receive the handle.
public struct HandleOptions {
    /// Bytes asked for by each read (Perl: `read_size`, default 2048). After a read that fills
    /// it, it doubles up to ``maxReadSize``.
    public var readSize: Int = 2048
    /// The largest read size (Perl: `max_read_size`, default 131072).
    public var maxReadSize: Int = 131_072
    /// Raise a fatal `ENOSPC` when the read buffer holds more bytes than this after the read queue
    /// was served (Perl: `rbuf_max`); `nil` disables.
    public var readBufferMax: Int?
    /// Raise a fatal `ENOSPC` when the write buffer holds more bytes than this (Perl: `wbuf_max`);
    /// `nil` disables.
    public var writeBufferMax: Int?
    /// `onDrain` runs whenever the write buffer holds at most this many bytes (Perl:
    /// `low_water_mark`, default 0).
    public var lowWaterMark: Int = 0
    /// Write on the next loop iteration instead of at once, coalescing small writes
    /// (Perl: `autocork`).
    public var autocork: Bool = false
    /// Disable Nagle's algorithm on TCP sockets (Perl: `no_delay`).
    public var noDelay: Bool = false
    /// Enable TCP keepalive (Perl: `keepalive`).
    public var keepalive: Bool = false
    /// Receive out-of-band data inline (Perl: `oobinline`, default on).
    public var oobInline: Bool = true
    /// Seconds that pending writes keep going out after the handle is destroyed or dropped
    /// (Perl: `linger`, default 3600); `0` drops pending data at once.
    public var linger: Double = 3600
    /// The peer's host name, for TLS verification (Perl: `peername`).
    public var peername: String?
    /// Inactivity timeout in seconds for reads and writes (Perl: `timeout`); `0` disables.
    public var timeout: Double = 0
    /// Read inactivity timeout in seconds (Perl: `rtimeout`); `0` disables.
    public var readTimeout: Double = 0
    /// Write inactivity timeout in seconds (Perl: `wtimeout`); `0` disables.
    public var writeTimeout: Double = 0

    /// Start TLS as soon as the handle has its channel (Perl: `tls => "accept" | "connect"`).
    public var tls: TLSMode?
    /// The TLS context for ``tls`` and ``Handle/startTLS(_:context:)`` (Perl: `tls_ctx`); `nil`
    /// uses ``TLSContext/default``.
    public var tlsContext: TLSContext?
    /// Perl: `on_starttls ($handle, $success, $message)`: the TLS handshake finished. While set, a
    /// failed handshake is reported here instead of through `onError`. A failure's message is short
    /// and the same on every machine (see <doc:TLS>), for example
    /// `TLS handshake failed: certificate verification failed (error:1000007d)`.
    public var onStartTLS: ((Handle, Bool, String) -> Void)?
    /// Perl: `on_stoptls ($handle)`: TLS was shut down (close notify) and the connection is plain
    /// again. Without it, the peer's close notify is an end of file.
    public var onStopTLS: ((Handle) -> Void)?

    /// Perl: `on_error ($handle, $fatal, $message)`; the error also carries the errno-style code.
    ///
    /// Without it, a fatal error stops the process with the error's message (Perl croaks), unless
    /// an `async` read or write is waiting (it throws the error instead) or the handle was
    /// destroyed or released already (nothing is reported then).
    public var onError: ((Handle, HandleError) -> Void)?
    /// Perl: `on_read ($handle)`: called when data arrived and the read queue is empty.
    public var onRead: ((Handle) -> Void)?
    /// Perl: `on_eof ($handle)`.
    public var onEof: ((Handle) -> Void)?
    /// Perl: `on_drain ($handle)`: runs at once when given and the write buffer is empty.
    public var onDrain: ((Handle) -> Void)?
    /// Perl: `on_timeout ($handle)`.
    public var onTimeout: ((Handle) -> Void)?
    /// Perl: `on_rtimeout ($handle)`.
    public var onReadTimeout: ((Handle) -> Void)?
    /// Perl: `on_wtimeout ($handle)`.
    public var onWriteTimeout: ((Handle) -> Void)?

    /// Default settings, no callbacks.
    public init() {}
}

/// Which of the three inactivity timers (Perl: `timeout`, `rtimeout`, `wtimeout`).
public enum HandleTimeoutKind: Int, Sendable, CaseIterable {
    /// Any activity (Perl: `timeout`).
    case any = 0
    /// Read activity (Perl: `rtimeout`).
    case read = 1
    /// Write activity (Perl: `wtimeout`).
    case write = 2
}
