import AEMPHandle

extension TLSContext {
    /// The TLS context of a node, built from its `cert` setting: one PEM text holding the private
    /// key, the node's certificate and the CA certificate(s).
    ///
    /// Perl: the `AnyEvent::TLS` context `AnyEvent::MP::Transport` makes from the `cert` config
    /// value, which is used as own certificate *and* as the trusted CA; the peer must present a
    /// certificate and it is verified (no host name check), SSLv2/SSLv3 are off (here TLS 1.2 is
    /// the minimum, SwiftNIO SSL's default).
    ///
    /// ```swift
    /// let tls = try TLSContext.aempNode(certificatePEM: configuration.certificate!)
    /// ```
    ///
    /// - Parameter certificatePEM: key + certificate + CA in PEM format.
    /// - Returns: a context for both TLS roles.
    /// - Throws: ``AEMPHandle/HandleError`` (`EPROTO`) when the text has no key or certificate, or
    ///   the key does not match the certificate.
    static func aempNode(certificatePEM: String) throws(HandleError) -> TLSContext {
        try TLSContext(
            .init(
                cert: certificatePEM, key: certificatePEM, verify: true, verifyRequireClientCert: true,
                caCert: certificatePEM))
    }
}
