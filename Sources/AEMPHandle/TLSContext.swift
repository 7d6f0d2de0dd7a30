import NIOCore
import NIOSSL

/// Which side of the TLS handshake a handle plays. Perl: the `tls` argument, `"accept"` or
/// `"connect"`.
public enum TLSMode: Sendable, Hashable {
    /// The server side (Perl: `"accept"`).
    case accept
    /// The client side (Perl: `"connect"`).
    case connect
}

/// A TLS protocol version, for ``TLSContext/Options/minimumVersion`` (Perl: the `method`, `sslv3`,
/// `tlsv1`, `tlsv1_1`, `tlsv1_2` and `tlsv1_3` switches of `AnyEvent::TLS`).
public enum TLSProtocolVersion: Sendable, Hashable, CaseIterable {
    /// TLS 1.0.
    case tls1_0
    /// TLS 1.1.
    case tls1_1
    /// TLS 1.2.
    case tls1_2
    /// TLS 1.3.
    case tls1_3

    var nio: TLSVersion {
        switch self {
        case .tls1_0: return .tlsv1
        case .tls1_1: return .tlsv11
        case .tls1_2: return .tlsv12
        case .tls1_3: return .tlsv13
        }
    }
}

/// Certificates, keys and verification settings shared by TLS connections. Perl: `AnyEvent::TLS`
/// (the `tls_ctx` argument).
///
/// Certificate and key files are loaded once, when the context is created; a context can serve
/// any number of handles, as client (``TLSMode/connect``) or server (``TLSMode/accept``).
///
/// ```swift
/// let server = try TLSContext(.init(certFile: "server.pem", keyFile: "server.key"))
/// let client = try TLSContext(.init(caFile: "ca.pem", verify: true, verifyPeername: "https"))
/// ```
public final class TLSContext: Sendable {
    /// The settings of a ``TLSContext``. Perl: the keys of `AnyEvent::TLS->new`.
    public struct Options: Sendable {
        /// A PEM file with the certificate (followed by its intermediates) presented to the peer.
        /// Perl: `cert_file`. May also hold the private key.
        public var certFile: String?
        /// The certificate chain as PEM text (Perl: `cert`).
        public var cert: String?
        /// A PEM file with the private key (Perl: `key_file`); defaults to ``certFile``.
        public var keyFile: String?
        /// The private key as PEM text (Perl: `key`).
        public var key: String?
        /// A PEM file of trusted CA certificates (Perl: `ca_file`).
        public var caFile: String?
        /// A directory of trusted CA certificates in PEM format (Perl: `ca_path`).
        public var caPath: String?
        /// Verify the peer's certificate (Perl: `verify`, default off). A server then asks the
        /// client for a certificate and verifies it when one is presented.
        public var verify: Bool
        /// As a server with ``verify``: fail when the client presents no certificate
        /// (Perl: `verify_require_client_cert`).
        public var verifyRequireClientCert: Bool
        /// As a client with ``verify``: check the server certificate's names against the handle's
        /// ``HandleOptions/peername`` (or, without one, the peer's IP address). Perl:
        /// `verify_peername`, whose value names a scheme (`"http"`, `"smtp"`, ...); every scheme is
        /// checked with the RFC 6125 rules here.
        public var verifyPeername: String?
        /// The lowest protocol version accepted (Perl: `method`/`sslv3`/`tlsv1` switches); TLS 1.2
        /// by default, as SwiftNIO SSL.
        public var minimumVersion: TLSProtocolVersion?
        /// Trusted CA certificates as PEM text (Perl: `ca_cert`); added to ``caFile``/``caPath``
        /// when those are given, otherwise the only trust roots.
        public var caCert: String?

        /// Creates options; everything off or absent by default, like `AnyEvent::TLS->new`.
        public init(
            certFile: String? = nil,
            cert: String? = nil,
            keyFile: String? = nil,
            key: String? = nil,
            caFile: String? = nil,
            caPath: String? = nil,
            verify: Bool = false,
            verifyRequireClientCert: Bool = false,
            verifyPeername: String? = nil,
            minimumVersion: TLSProtocolVersion? = nil,
            caCert: String? = nil
        ) {
            self.certFile = certFile
            self.cert = cert
            self.keyFile = keyFile
            self.key = key
            self.caFile = caFile
            self.caPath = caPath
            self.verify = verify
            self.verifyRequireClientCert = verifyRequireClientCert
            self.verifyPeername = verifyPeername
            self.minimumVersion = minimumVersion
            self.caCert = caCert
        }
    }

    /// The settings this context was made from.
    public let options: Options
    let clientContext: NIOSSLContext
    let serverContext: NIOSSLContext

    /// Loads the certificates and keys named in `options`.
    ///
    /// Perl: `AnyEvent::TLS->new (...)`, which croaks where this throws.
    /// - Throws: ``HandleError`` with code `EPROTO` when a file cannot be read or parsed, or the
    ///   key does not match the certificate.
    public init(_ options: Options = Options()) throws(HandleError) {
        self.options = options
        do {
            var base = TLSConfiguration.makeClientConfiguration()
            if let file = options.certFile {
                base.certificateChain = try NIOSSLCertificate.fromPEMFile(file).map { .certificate($0) }
            } else if let pem = options.cert {
                base.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8)).map { .certificate($0) }
            }
            if (options.certFile != nil || options.cert != nil), base.certificateChain.isEmpty {
                throw HandleError(.protocolError, message: "TLS context: no certificate found", fatal: true)
            }
            if let file = options.keyFile ?? (options.key == nil ? options.certFile : nil) {
                base.privateKey = .privateKey(try NIOSSLPrivateKey(file: file, format: .pem))
            } else if let pem = options.key {
                base.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(pem.utf8), format: .pem))
            }
            if let file = options.caFile {
                base.trustRoots = .file(file)
                if let path = options.caPath { base.additionalTrustRoots = [.file(path)] }
            } else if let path = options.caPath {
                base.trustRoots = .file(path)
            }
            if let pem = options.caCert {
                let roots = try NIOSSLCertificate.fromPEMBytes(Array(pem.utf8))
                if roots.isEmpty {
                    throw HandleError(.protocolError, message: "TLS context: no CA certificate found", fatal: true)
                }
                if options.caFile == nil, options.caPath == nil {
                    base.trustRoots = .certificates(roots)
                } else {
                    base.additionalTrustRoots.append(.certificates(roots))
                }
            }
            if let version = options.minimumVersion { base.minimumTLSVersion = version.nio }

            var client = base
            if !options.verify {
                client.certificateVerification = .none
            } else if options.verifyPeername != nil {
                client.certificateVerification = .fullVerification
            } else {
                client.certificateVerification = .noHostnameVerification
            }
            var server = base
            if !options.verify {
                server.certificateVerification = .none
            } else if options.verifyRequireClientCert {
                server.certificateVerification = .noHostnameVerification
            } else {
                server.certificateVerification = .optionalVerification
            }
            clientContext = try NIOSSLContext(configuration: client)
            serverContext = try NIOSSLContext(configuration: server)
        } catch let error as HandleError {
            throw error
        } catch {
            throw HandleError(.protocolError, message: "TLS context: \(TLSErrorText.text(for: error))", fatal: true)
        }
    }

    /// The context used when none is given (Perl: `AnyEvent::Handle::TLS_CTX`): no certificate, no
    /// verification. `nil` only if the TLS library cannot create a context at all.
    public static let `default`: TLSContext? = try? TLSContext()
}
