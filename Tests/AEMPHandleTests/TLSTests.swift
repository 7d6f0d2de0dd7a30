import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import AEMPHandle

/// Two handles on the ends of one loopback TCP connection, on one event loop.
final class TLSPair: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let events = Collector()
    let server: Handle
    let client: Handle

    init(
        server serverOptions: @escaping @Sendable (Collector) -> HandleOptions,
        client clientOptions: @escaping @Sendable (Collector) -> HandleOptions
    ) throws {
        let pair = try Bench.makePair(tcp: true)
        let events = self.events
        server = try Handle.make(socket: pair.handle, group: group) { serverOptions(events) }.wait()
        client = try Handle.make(socket: pair.peer, group: group) { clientOptions(events) }.wait()
    }

    /// A TLS server (`tls: accept` with `serverTLS`) and client (`tls: connect` with `clientTLS`),
    /// both recording errors and end of file (``recordingOptions(_:_:)``); `server` and `client` set
    /// further options.
    convenience init(
        accepting serverTLS: TLSContext?, connecting clientTLS: TLSContext?,
        server configureServer: @escaping @Sendable (inout HandleOptions, Collector) -> Void = { _, _ in },
        client configureClient: @escaping @Sendable (inout HandleOptions, Collector) -> Void = { _, _ in }
    ) throws {
        func side(
            _ name: String, _ mode: TLSMode, _ context: TLSContext?,
            _ configure: @escaping @Sendable (inout HandleOptions, Collector) -> Void
        ) -> @Sendable (Collector) -> HandleOptions {
            { events in
                var options = recordingOptions(name, events)
                options.tls = mode
                options.tlsContext = context
                configure(&options, events)
                return options
            }
        }
        try self.init(
            server: side("S", .accept, serverTLS, configureServer), client: side("C", .connect, clientTLS, configureClient))
    }

    /// Runs `body` on the loop with both handles and waits for it.
    func onLoop(_ body: @escaping @Sendable (_ server: Handle, _ client: Handle) -> Void) {
        let server = self.server
        let client = self.client
        try? group.next().submit { body(server, client) }.wait()
    }

    /// Reads a value on the loop.
    func value<T: Sendable>(_ body: @escaping @Sendable (_ server: Handle, _ client: Handle) -> T) throws -> T {
        let server = self.server
        let client = self.client
        return try group.next().submit { body(server, client) }.wait()
    }

    /// Waits (bounded) until an event equal to `item` was recorded.
    @discardableResult
    func wait(for item: String, seconds: Double = 5) -> [String] {
        let deadline = Date().addingTimeInterval(seconds)
        while !events.all.contains(item), Date() < deadline { usleep(1000) }
        return events.all
    }

    func shutdown() {
        onLoop { server, client in
            server.destroy()
            client.destroy()
        }
        try? group.syncShutdownGracefully()
    }
}

/// Options that record errors, EOF and TLS callbacks as `"<side>:<event>"`.
func recordingOptions(_ side: String, _ events: Collector) -> HandleOptions {
    var options = HandleOptions()
    options.onError = { _, error in events.add("\(side):error:\(error.code):\(error.isFatal)") }
    options.onEof = { _ in events.add("\(side):eof") }
    return options
}

func tlsCertificates() throws -> TestCertificates {
    try TestCertificates.shared.get()
}

@Suite("TLS")
struct TLSTests {
    static func serverContext(_ certs: TestCertificates, cert: String = "server") throws -> TLSContext {
        try TLSContext(.init(certFile: certs.path("\(cert).pem"), keyFile: certs.path("\(cert).key")))
    }

    static func clientContext(_ certs: TestCertificates) throws -> TLSContext {
        try TLSContext(.init(caFile: certs.caFile, verify: true, verifyPeername: "https"))
    }

    /// A TLS pair from creation; the client verifies the server against `peername`.
    static func makePair(
        serverCert: String = "server", peername: String = "localhost", handshakeCallbacks: Bool = true
    ) throws -> TLSPair {
        let certs = try tlsCertificates()
        let serverTLS = try serverContext(certs, cert: serverCert)
        let clientTLS = try clientContext(certs)
        return try TLSPair(
            server: { events in
                var options = recordingOptions("S", events)
                options.tls = .accept
                options.tlsContext = serverTLS
                if handshakeCallbacks {
                    options.onStartTLS = { _, ok, _ in events.add("S:start:\(ok)") }
                }
                return options
            },
            client: { events in
                var options = recordingOptions("C", events)
                options.tls = .connect
                options.tlsContext = clientTLS
                options.peername = peername
                if handshakeCallbacks {
                    options.onStartTLS = { _, ok, message in
                        events.add("C:start:\(ok)")
                        if !ok { events.add("C:message:\(message)") }
                    }
                }
                return options
            })
    }

    @Test("verified handshake and a line exchange", arguments: ["localhost", "127.0.0.1"])
    func verifiedExchange(peername: String) throws {
        let pair = try Self.makePair(peername: peername)
        defer { pair.shutdown() }
        let events = pair.events
        pair.onLoop { server, client in
            server.pushRead(.line()) { handle, line in
                events.add("S:line:\(line.string)")
                handle.pushWrite("world\n")
            }
            client.pushWrite("hello\n")
            client.pushRead(.line()) { _, line in events.add("C:line:\(line.string)") }
        }
        let seen = pair.wait(for: "C:line:world")
        #expect(seen.contains("S:start:true"))
        #expect(seen.contains("C:start:true"))
        #expect(seen.contains("S:line:hello"))
        #expect(seen.contains("C:line:world"))
        #expect(try pair.value { server, client in server.isTLS && client.isTLS })
    }

    @Test("a certificate for another name fails with EPROTO", arguments: [("wrong", "localhost"), ("wrong", "127.0.0.1")])
    func wrongPeername(serverCert: String, peername: String) throws {
        let pair = try Self.makePair(serverCert: serverCert, peername: peername, handshakeCallbacks: false)
        defer { pair.shutdown() }
        let seen = pair.wait(for: "C:error:EPROTO:true")
        #expect(seen.contains("C:error:EPROTO:true"))
        #expect(try pair.value { _, client in client.isDestroyed })
    }

    @Test("a certificate from an untrusted CA fails with EPROTO")
    func untrustedCA() throws {
        let pair = try Self.makePair(serverCert: "rogue", handshakeCallbacks: false)
        defer { pair.shutdown() }
        let seen = pair.wait(for: "C:error:EPROTO:true")
        #expect(seen.contains("C:error:EPROTO:true"))
    }

    @Test("with onStartTLS a failed handshake is reported there, not through onError")
    func failedHandshakeCallback() throws {
        let pair = try Self.makePair(serverCert: "rogue")
        defer { pair.shutdown() }
        let seen = pair.wait(for: "C:start:false")
        #expect(seen.contains("C:start:false"))
        #expect(seen.contains { $0.hasPrefix("C:message:TLS handshake failed") })
        #expect(!seen.contains { $0.hasPrefix("C:error:EPROTO") })
    }

    @Test("without verification any certificate is accepted (Perl's default context)")
    func noVerification() throws {
        let certs = try tlsCertificates()
        let serverTLS = try Self.serverContext(certs, cert: "rogue")
        let pair = try TLSPair(
            accepting: serverTLS,
            connecting: nil,
            client: { options, events in
                options.peername = "wrong.example"
                options.onStartTLS = { _, ok, _ in events.add("C:start:\(ok)") }
            })
        defer { pair.shutdown() }
        #expect(pair.wait(for: "C:start:true").contains("C:start:true"))
    }

    @Test("plain text where a TLS handshake is expected is a fatal EPROTO")
    func plainTextToTLSServer() throws {
        let certs = try tlsCertificates()
        let serverTLS = try Self.serverContext(certs)
        let pair = try TLSPair(
            server: { events in
                var options = recordingOptions("S", events)
                options.tls = .accept
                options.tlsContext = serverTLS
                return options
            },
            client: { events in recordingOptions("C", events) })
        defer { pair.shutdown() }
        pair.onLoop { _, client in client.pushWrite("GET / HTTP/1.0\r\n\r\n") }
        let seen = pair.wait(for: "S:error:EPROTO:true")
        #expect(seen.contains("S:error:EPROTO:true"))
    }

    @Test("a server without a certificate fails the handshake on both sides")
    func serverWithoutCertificate() throws {
        let pair = try TLSPair(accepting: nil, connecting: nil)
        defer { pair.shutdown() }
        let seen = pair.wait(for: "C:error:EPROTO:true")
        #expect(seen.contains("C:error:EPROTO:true"))
        #expect(pair.wait(for: "S:error:EPROTO:true").contains("S:error:EPROTO:true"))
    }

    @Test("the peer closing during the handshake is a fatal EPROTO")
    func eofDuringHandshake() throws {
        let pair = try TLSPair(
            server: { events in recordingOptions("S", events) },
            client: { events in
                var options = recordingOptions("C", events)
                options.tls = .connect
                return options
            })
        defer { pair.shutdown() }
        // The plain server reads the client hello, then goes away.
        pair.onLoop { server, _ in
            server.pushRead(.chunk(1)) { handle, _ in handle.destroy() }
        }
        let seen = pair.wait(for: "C:error:EPROTO:true")
        #expect(seen.contains("C:error:EPROTO:true"))
    }

    @Test(
        "a server with verify_require_client_cert checks the client's certificate",
        arguments: [("wrong", true), ("rogue", false), ("", false)])
    func clientCertificates(clientCert: String, accepted: Bool) throws {
        let certs = try tlsCertificates()
        let serverTLS = try TLSContext(
            .init(
                certFile: certs.path("server.pem"), keyFile: certs.path("server.key"), caFile: certs.caFile,
                verify: true, verifyRequireClientCert: true))
        let clientTLS = try TLSContext(
            .init(
                certFile: clientCert.isEmpty ? nil : certs.path("\(clientCert).pem"),
                keyFile: clientCert.isEmpty ? nil : certs.path("\(clientCert).key"), caFile: certs.caFile,
                verify: true))
        let pair = try TLSPair(
            accepting: serverTLS,
            connecting: clientTLS,
            server: { options, events in
                options.onStartTLS = { _, ok, _ in events.add("S:start:\(ok)") }
            })
        defer { pair.shutdown() }
        // TLS 1.3 clients finish before the server has checked them: the server decides.
        let seen = pair.wait(for: "S:start:\(accepted)")
        #expect(seen.contains("S:start:\(accepted)"))
    }

    @Test("minimum protocol versions: TLS 1.3 on both sides works")
    func minimumVersion() throws {
        let certs = try tlsCertificates()
        let serverTLS = try TLSContext(
            .init(certFile: certs.path("server.pem"), keyFile: certs.path("server.key"), minimumVersion: .tls1_3))
        let clientTLS = try TLSContext(.init(caFile: certs.caFile, verify: true, minimumVersion: .tls1_3))
        let pair = try TLSPair(
            accepting: serverTLS,
            connecting: clientTLS,
            server: { options, events in
                options.onStartTLS = { _, ok, _ in events.add("S:start:\(ok)") }
            },
            client: { options, events in
                options.onStartTLS = { _, ok, _ in events.add("C:start:\(ok)") }
            })
        defer { pair.shutdown() }
        #expect(pair.wait(for: "C:start:true").contains("C:start:true"))
        #expect(pair.wait(for: "S:start:true").contains("S:start:true"))
    }

    @Test("bad certificate files throw EPROTO when the context is made")
    func badFiles() throws {
        let certs = try tlsCertificates()
        #expect(throws: HandleError(.protocolError, fatal: true)) {
            try TLSContext(.init(certFile: certs.path("missing.pem")))
        }
        #expect(throws: HandleError(.protocolError, fatal: true)) {
            // The key of another certificate.
            try TLSContext(.init(certFile: certs.path("server.pem"), keyFile: certs.path("rogue.key")))
        }
        #expect(throws: HandleError(.protocolError, fatal: true)) {
            try TLSContext(.init(cert: "not a certificate"))
        }
    }

    /// A plain pair that switches to TLS after a STARTTLS/OK line exchange.
    static func startTLSPair() throws -> TLSPair {
        let certs = try tlsCertificates()
        let serverTLS = try serverContext(certs)
        let clientTLS = try clientContext(certs)
        let pair = try TLSPair(
            server: { events in
                var options = recordingOptions("S", events)
                options.tlsContext = serverTLS
                options.onStartTLS = { _, ok, _ in events.add("S:start:\(ok)") }
                options.onStopTLS = { _ in events.add("S:stop") }
                return options
            },
            client: { events in
                var options = recordingOptions("C", events)
                options.peername = "localhost"
                options.onStartTLS = { _, ok, _ in events.add("C:start:\(ok)") }
                options.onStopTLS = { _ in events.add("C:stop") }
                return options
            })
        let events = pair.events
        pair.onLoop { server, client in
            server.pushRead(.line()) { handle, line in
                events.add("S:plain:\(line.string)")
                handle.pushWrite("OK\n")
                handle.startTLS(.accept)
                handle.pushRead(.line()) { handle, line in
                    events.add("S:secure:\(line.string)")
                    handle.pushWrite("secure-reply\n")
                }
            }
            client.pushWrite("STARTTLS\n")
            client.pushRead(.line()) { handle, line in
                events.add("C:plain:\(line.string)")
                handle.startTLS(.connect, context: clientTLS)
                handle.pushWrite("secret\n")
                handle.pushRead(.line()) { _, line in events.add("C:secure:\(line.string)") }
            }
        }
        return pair
    }

    @Test("starttls after a plain-text line exchange on both sides")
    func startTLSAfterPlainText() throws {
        let pair = try Self.startTLSPair()
        defer { pair.shutdown() }
        let seen = pair.wait(for: "C:secure:secure-reply")
        #expect(
            seen.filter { !$0.contains("start") } == [
                "S:plain:STARTTLS", "C:plain:OK", "S:secure:secret", "C:secure:secure-reply",
            ])
        #expect(seen.contains("S:start:true") && seen.contains("C:start:true"))
        #expect(try pair.value { server, client in server.isTLS && client.isTLS })
    }

    @Test("starttls while TLS is active is a non-fatal EPROTO")
    func startTLSTwice() throws {
        let pair = try Self.makePair()
        defer { pair.shutdown() }
        pair.wait(for: "C:start:true")
        pair.onLoop { _, client in client.startTLS(.connect) }
        let seen = pair.wait(for: "C:error:EPROTO:false")
        #expect(seen.contains("C:error:EPROTO:false"))
        #expect(try pair.value { _, client in !client.isDestroyed && client.isTLS })
    }

    @Test("stoptls goes back to plain text and the connection continues")
    func stopTLSBackToPlain() throws {
        let pair = try Self.startTLSPair()
        defer { pair.shutdown() }
        let events = pair.events
        pair.wait(for: "C:secure:secure-reply")
        pair.onLoop { server, client in
            server.pushRead(.line()) { handle, line in
                events.add("S:after:\(line.string):tls=\(handle.isTLS)")
                handle.pushWrite("plain-reply\n")
            }
            client.stopTLS()
            // Held while TLS shuts down, then sent in plain text.
            client.pushWrite("plain-again\n")
            client.pushRead(.line()) { handle, line in
                events.add("C:after:\(line.string):tls=\(handle.isTLS)")
            }
        }
        let seen = pair.wait(for: "C:after:plain-reply:tls=false")
        #expect(seen.contains("S:stop"))
        #expect(seen.contains("C:stop"))
        #expect(seen.contains("S:after:plain-again:tls=false"))
        #expect(seen.contains("C:after:plain-reply:tls=false"))
        #expect(!seen.contains { $0.contains(":error:") })
    }

    @Test("without onStopTLS the peer's close notify is an end of file")
    func stopTLSWithoutCallbackIsEOF() throws {
        let pair = try Self.makePair()
        defer { pair.shutdown() }
        pair.wait(for: "S:start:true")
        pair.onLoop { server, client in
            server.pushRead(raw: { _ in false })
            client.stopTLS()
        }
        let seen = pair.wait(for: "S:error:EPIPE:true")
        #expect(seen.contains("S:error:EPIPE:true"))
    }

    @Test("pushShutdown under TLS: the peer reads what was written, then an end of file")
    func pushShutdownUnderTLS() throws {
        let pair = try Self.makePair()
        defer { pair.shutdown() }
        let events = pair.events
        pair.onLoop { server, client in
            server.pushRead(.line()) { handle, line in
                events.add("S:line:\(line.string)")
                // Keep reading, to see the end of file.
                handle.onRead { $0.consumeAll() }
            }
            client.pushWrite("bye\n")
            client.pushShutdown()
        }
        let seen = pair.wait(for: "S:eof")
        #expect(seen.contains("S:line:bye"))
        #expect(seen.contains("S:eof"))
    }

    static func checksum(_ state: inout (count: Int, hash: UInt64), _ bytes: UnsafeRawBufferPointer) {
        for byte in bytes {
            state.hash = (state.hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        state.count += bytes.count
    }

    static func payload(_ size: Int) -> [UInt8] {
        var generator = UInt64(0x9E37_79B9_7F4A_7C15)
        return (0..<size).map { _ in
            generator = generator &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: generator >> 33)
        }
    }

    @Test("megabytes pass through TLS intact")
    func dataIntegrity() throws {
        let size = 3 * 1024 * 1024 + 4321
        let data = Self.payload(size)
        var expected: (count: Int, hash: UInt64) = (0, 0xcbf2_9ce4_8422_2325)
        data.withUnsafeBytes { Self.checksum(&expected, $0) }
        let pair = try Self.makePair()
        defer { pair.shutdown() }
        let events = pair.events
        let want = expected
        pair.onLoop { server, client in
            var state: (count: Int, hash: UInt64) = (0, 0xcbf2_9ce4_8422_2325)
            server.onRead { handle in
                handle.withReadBuffer { buffer in
                    buffer.withUnsafeReadableBytes { Self.checksum(&state, $0) }
                    buffer.moveReaderIndex(to: buffer.writerIndex)
                }
                if state.count >= want.count {
                    events.add("S:got:\(state.count):\(state.hash == want.hash)")
                }
            }
            // In pieces of different sizes, as an application would write.
            var offset = 0
            var piece = 1000
            while offset < data.count {
                let end = min(data.count, offset + piece)
                client.pushWrite(bytes: data[offset..<end])
                offset = end
                piece = piece * 3 % 200_000 + 1
            }
        }
        let seen = pair.wait(for: "S:got:\(size):true", seconds: 20)
        #expect(seen.contains("S:got:\(size):true"))
    }

    @Test("stopRead under TLS stops socket reads until reading resumes")
    func backpressure() throws {
        let size = 16 * 1024 * 1024
        let pair = try Self.makePair()
        defer { pair.shutdown() }
        let events = pair.events
        pair.wait(for: "S:start:true")
        pair.wait(for: "C:start:true")
        pair.onLoop { server, client in
            server.stopRead()
            var chunk = client.allocator.buffer(capacity: 1 << 20)
            chunk.writeRepeatingByte(0x61, count: 1 << 20)
            for _ in 0..<(size >> 20) { client.pushWrite(chunk) }
        }
        // Give the peer time to fill every buffer it can.
        var lastPending = -1
        for _ in 0..<50 {
            usleep(20_000)
            let pending = try pair.value { _, client in client.writeBufferLength }
            if pending == lastPending { break }
            lastPending = pending
        }
        let held = try pair.value { server, _ in
            server.readBuffer.readableBytes + (server.core.stash?.readableBytes ?? 0)
        }
        let pending = try pair.value { _, client in client.writeBufferLength }
        // At most a few reads' worth reached the server: the rest waits in the kernel and the client.
        #expect(held <= 512 * 1024)
        #expect(pending > 0)
        pair.onLoop { server, _ in
            var total = 0
            server.onRead { handle in
                total += handle.readBuffer.readableBytes
                handle.consumeAll()
                if total >= size { events.add("S:all:\(total)") }
            }
        }
        let seen = pair.wait(for: "S:all:\(size)", seconds: 20)
        #expect(seen.contains("S:all:\(size)"))
        #expect(try pair.value { _, client in client.writeBufferLength } == 0)
    }

    @Test("tls_autostart: a TLS client gets a TLS server, plain text stays plain")
    func autostart() throws {
        let certs = try tlsCertificates()
        let serverTLS = try Self.serverContext(certs)
        let clientTLS = try Self.clientContext(certs)
        for useTLS in [true, false] {
            let pair = try TLSPair(
                server: { events in
                    var options = recordingOptions("S", events)
                    options.onStartTLS = { _, ok, _ in events.add("S:start:\(ok)") }
                    return options
                },
                client: { events in
                    var options = recordingOptions("C", events)
                    options.peername = "localhost"
                    options.tlsContext = clientTLS
                    if useTLS { options.tls = .connect }
                    return options
                })
            defer { pair.shutdown() }
            let events = pair.events
            pair.onLoop { server, client in
                server.pushTLSAutostart(context: serverTLS)
                server.pushRead(.line()) { handle, line in
                    events.add("S:line:\(line.string):tls=\(handle.isTLS)")
                }
                client.pushWrite("hello\n")
            }
            let want = "S:line:hello:tls=\(useTLS)"
            let seen = pair.wait(for: want)
            #expect(seen.contains(want))
            #expect(seen.contains("S:start:true") == useTLS)
        }
    }
}
