import Foundation
import NIOCore
import NIOSSL
import Testing

@testable import AEMPHandle

/// TLS error messages: short, stable, and free of the build machine's file paths.
@Suite("TLS error texts", .timeLimit(.minutes(2)))
struct TLSErrorTextTests {
    /// The description SwiftNIO SSL gives a BoringSSL error, with a build path as on a real machine.
    static func boringSSL(_ hex: String, _ reason: String, file: String = "ssl/s3_both.cc", line: Int = 434) -> String {
        let code = UInt32(hex, radix: 16)!
        return "Error: \(code) error:\(hex):SSL routines:OPENSSL_internal:\(reason) at "
            + "/home/builder/src/app/.build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/\(file):\(line)"
    }

    /// A message reaches users as is: it names no file, path or line.
    static func expectPathFree(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!text.contains("/"), "\(text)", sourceLocation: sourceLocation)
        #expect(!text.contains("\\"), "\(text)", sourceLocation: sourceLocation)
        #expect(!text.contains(".cc"), "\(text)", sourceLocation: sourceLocation)
        #expect(!text.contains(".c:"), "\(text)", sourceLocation: sourceLocation)
    }

    // MARK: The formatter

    @Test("the example of issue #11: EXCESSIVE_MESSAGE_SIZE with a build path")
    func issueExample() {
        let description =
            "Error: 268435606 error:10000096:SSL routines:OPENSSL_internal:EXCESSIVE_MESSAGE_SIZE at "
            + "/<build path>/.build/checkouts/swift-nio-ssl/Sources/CNIOBoringSSL/ssl/s3_both.cc:434"
        let text = TLSErrorText.text(forDescription: description)
        #expect(text == "excessive message size (error:10000096)")
        Self.expectPathFree(text)
        let message = "TLS handshake failed: " + TLSErrorText.text(forDescriptions: [description], otherwise: "")
        #expect(message == "TLS handshake failed: excessive message size (error:10000096)")
    }

    @Test(
        "BoringSSL reasons in words, with their code",
        arguments: [
            ("10000096", "EXCESSIVE_MESSAGE_SIZE", "excessive message size (error:10000096)"),
            ("10000418", "TLSV1_ALERT_UNKNOWN_CA", "peer sent alert unknown CA (error:10000418)"),
            ("10000410", "SSLV3_ALERT_HANDSHAKE_FAILURE", "peer sent alert handshake failure (error:10000410)"),
            ("1000045c", "TLSV13_ALERT_CERTIFICATE_REQUIRED", "peer sent alert certificate required (error:1000045c)"),
            ("1000007d", "CERTIFICATE_VERIFY_FAILED", "certificate verification failed (error:1000007d)"),
            ("1000009c", "HTTP_REQUEST", "got an HTTP request, not TLS (error:1000009c)"),
            ("100000f7", "WRONG_VERSION_NUMBER", "wrong version number (not TLS?) (error:100000f7)"),
            ("100000b8", "NO_SHARED_CIPHER", "no shared cipher (error:100000b8)"),
            ("1000006b", "KEY_VALUES_MISMATCH", "key values mismatch (error:1000006b)"),
            ("10000c8", "reason(200)", "unknown reason (error:10000c8)"),
        ])
    func reasons(hex: String, reason: String, expected: String) {
        let text = TLSErrorText.text(forDescription: Self.boringSSL(hex, reason))
        #expect(text == expected)
        Self.expectPathFree(text)
    }

    @Test("stacked errors are joined with \"; \"")
    func stacked() {
        let text = TLSErrorText.text(
            forDescriptions: [
                Self.boringSSL("1000007d", "CERTIFICATE_VERIFY_FAILED", file: "ssl/handshake_client.cc", line: 1847),
                Self.boringSSL("10000418", "TLSV1_ALERT_UNKNOWN_CA", file: "ssl/tls_record.cc", line: 592),
            ], otherwise: "unknown error")
        #expect(text == "certificate verification failed (error:1000007d); peer sent alert unknown CA (error:10000418)")
        #expect(TLSErrorText.text(forDescriptions: [], otherwise: "unknown error") == "unknown error")
    }

    @Test(
        "descriptions of another form keep their words, never a path",
        arguments: [
            ("Error:  EOF during handshake", "EOF during handshake"),
            ("Error: 42 something odd at /src/ssl/x.cc:3", "something odd"),
            ("Error: 42 error:zz:SSL routines:f:BAD at /src/ssl/x.cc:3", "error:zz:SSL routines:f:BAD"),
            (
                "Error: 7 error:10000096:SSL routines:OPENSSL_internal at /a/b.cc:1",
                "error:10000096:SSL routines:OPENSSL_internal"
            ),
            ("failed at C:\\build\\ssl\\s3_both.cc:434", "failed"),
            ("/only/a/path.cc:12", "unknown error"),
            ("", "unknown error"),
        ])
    func fallback(description: String, expected: String) {
        let text = TLSErrorText.text(forDescription: description)
        #expect(text == expected)
        Self.expectPathFree(text)
    }

    struct PathError: Error, CustomStringConvertible {
        var description: String { "broken at /var/tmp/build/Sources/thing.swift:12 today" }
    }

    @Test("every SwiftNIO SSL error has a short message")
    func messages() {
        let cases: [(any Error, String)] = [
            (
                NIOSSLError.handshakeFailed(.sslError([.eofDuringHandshake])),
                "TLS handshake failed: EOF during handshake"
            ),
            (NIOSSLError.handshakeFailed(.sslError([])), "TLS handshake failed: unknown error"),
            (NIOSSLError.handshakeFailed(.syscallError), "TLS handshake failed: system call failed"),
            (NIOSSLError.handshakeFailed(.zeroReturn), "TLS handshake failed: connection closed by close notify"),
            (NIOSSLError.shutdownFailed(.syscallError), "TLS shutdown failed: system call failed"),
            (NIOSSLError.uncleanShutdown, "TLS error: connection closed without close notify"),
            (NIOSSLError.writeDuringTLSShutdown, "TLS error: write during TLS shutdown"),
            (NIOSSLError.noCertificateToValidate, "TLS error: peer sent no certificate"),
            (NIOSSLError.readInInvalidTLSState, "TLS error: read in invalid TLS state"),
            (NIOSSLError.failedToLoadCertificate, "TLS error: cannot load certificate"),
            (BoringSSLError.zeroReturn, "TLS error: connection closed by close notify"),
            (BoringSSLError.wantRead, "TLS error: wants to read"),
            (BoringSSLError.unknownError([]), "TLS error: unknown error"),
            (BoringSSLError.invalidSNIName([]), "TLS error: invalid server name (SNI)"),
            (NIOSSLExtraError.failedToValidateHostname, "TLS error: certificate does not match the peer name"),
            (NIOSSLExtraError.cannotUseIPAddressInSNI, "TLS error: an IP address cannot be a server name (SNI)"),
            (NIOSSLExtraError.invalidSNIHostname, "TLS error: invalid server name (SNI)"),
            (NIOTLSUnwrappingError.alreadyClosed, "TLS error: TLS already closed"),
            (NIOTLSUnwrappingError.closeRequestedDuringUnwrap, "TLS error: connection closed while stopping TLS"),
            (PathError(), "TLS error: broken today"),
        ]
        for (error, expected) in cases {
            let message = TLSErrorText.message(for: error)
            #expect(message == expected)
            #expect(HandleCore.tlsMessage(error) == expected)
            Self.expectPathFree(message)
        }
    }

    // MARK: Real handshakes

    /// Records `onStartTLS` failures as `"<side>:failed:<message>"` and fatal errors as
    /// `"<side>:error:<code>:<message>"`.
    static func recording(
        _ side: String, _ events: Collector, startTLS: Bool
    ) -> @Sendable (inout HandleOptions, Collector) -> Void {
        { options, _ in
            options.onError = { _, error in events.add("\(side):error:\(error.code):\(error.message)") }
            if startTLS {
                options.onStartTLS = { _, ok, message in if !ok { events.add("\(side):failed:\(message)") } }
            }
        }
    }

    static func waitForPrefix(_ events: Collector, _ prefix: String, seconds: Double = 5) -> String? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let hit = events.all.first(where: { $0.hasPrefix(prefix) }) { return hit }
            usleep(1000)
        }
        return nil
    }

    @Test("a client that does not trust the server's CA: both sides get a short message")
    func untrustedCA() throws {
        let certs = try tlsCertificates()
        let serverTLS = try TLSTests.serverContext(certs, cert: "rogue")
        let clientTLS = try TLSTests.clientContext(certs)
        let events = Collector()
        let pair = try TLSPair(
            accepting: serverTLS, connecting: clientTLS,
            server: Self.recording("S", events, startTLS: true),
            client: { options, collector in
                options.peername = "localhost"
                Self.recording("C", events, startTLS: true)(&options, collector)
            })
        defer { pair.shutdown() }
        let client = Self.waitForPrefix(events, "C:failed:")
        let server = Self.waitForPrefix(events, "S:failed:")
        #expect(client == "C:failed:TLS handshake failed: certificate verification failed (error:1000007d)")
        #expect(server == "S:failed:TLS handshake failed: peer sent alert unknown CA (error:10000418)")
        for message in [client, server].compactMap({ $0 }) { Self.expectPathFree(message) }
    }

    @Test("a certificate for another name: the client's message says so")
    func wrongName() throws {
        let certs = try tlsCertificates()
        let serverTLS = try TLSTests.serverContext(certs, cert: "wrong")
        let clientTLS = try TLSTests.clientContext(certs)
        let events = Collector()
        let pair = try TLSPair(
            accepting: serverTLS, connecting: clientTLS,
            client: { options, collector in
                options.peername = "localhost"
                Self.recording("C", events, startTLS: true)(&options, collector)
            })
        defer { pair.shutdown() }
        let client = Self.waitForPrefix(events, "C:failed:")
        #expect(client == "C:failed:TLS handshake failed: certificate does not match the peer name")
    }

    /// A TLS server handle whose peer is a plain handle that writes `bytes`; returns the server's
    /// fatal error as `"S:error:<code>:<message>"`.
    static func serverError(whenPeerWrites bytes: [UInt8]) throws -> String? {
        let certs = try tlsCertificates()
        let serverTLS = try TLSTests.serverContext(certs)
        let events = Collector()
        let pair = try TLSPair(
            server: { _ in
                var options = HandleOptions()
                options.tls = .accept
                options.tlsContext = serverTLS
                Self.recording("S", events, startTLS: false)(&options, events)
                return options
            },
            client: { _ in HandleOptions() })
        defer { pair.shutdown() }
        pair.onLoop { _, client in client.pushWrite(bytes: bytes) }
        return Self.waitForPrefix(events, "S:error:")
    }

    @Test("plain text to a TLS server: a short EPROTO message")
    func plainText() throws {
        let error = try Self.serverError(whenPeerWrites: Array("GET / HTTP/1.0\r\n\r\n".utf8))
        #expect(error == "S:error:EPROTO:TLS handshake failed: got an HTTP request, not TLS (error:1000009c)")
    }

    @Test("a client hello announcing 16 MiB: issue #11's EXCESSIVE_MESSAGE_SIZE, without the build path")
    func excessiveMessageSize() throws {
        // One handshake record (type 22, TLS 1.0, 4 bytes) holding a client hello header of length 0xffffff.
        let error = try Self.serverError(whenPeerWrites: [0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0xff, 0xff, 0xff])
        #expect(error == "S:error:EPROTO:TLS handshake failed: excessive message size (error:10000096)")
    }

    @Test("TLS context errors are short too")
    func contextErrors() throws {
        let certs = try tlsCertificates()
        let mismatch = #expect(throws: HandleError.self) {
            try TLSContext(.init(certFile: certs.path("server.pem"), keyFile: certs.path("rogue.key")))
        }
        #expect(mismatch?.message == "TLS context: cannot load private key")
        let missing = #expect(throws: HandleError.self) {
            try TLSContext(.init(certFile: certs.path("missing.pem")))
        }
        #expect(missing?.message == "TLS context: cannot load certificate")
    }
}
