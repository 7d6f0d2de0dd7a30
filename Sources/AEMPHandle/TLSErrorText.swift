import NIOSSL

/// Short texts for TLS errors, the same on every machine: what ``HandleError/message`` and
/// `onStartTLS` report for a failed handshake or TLS session.
///
/// SwiftNIO SSL describes a BoringSSL error as
/// `Error: <decimal code> error:<hex code>:<library>:<function>:<REASON> at <source path>:<line>`,
/// naming a file of the build machine. Here each error becomes a few words and its code, e.g.
/// `excessive message size (error:10000096)` or `peer sent alert unknown CA (error:10000418)`;
/// several stacked errors are joined with "; ". No text contains a file path or line number.
enum TLSErrorText {
    /// The message for an error of the TLS layer: `TLS handshake failed: ...` for a failed handshake
    /// (also for any error while `duringHandshake`, such as a certificate for another name),
    /// `TLS shutdown failed: ...` for a failed close notify exchange, `TLS error: ...` otherwise.
    static func message(for error: any Error, duringHandshake: Bool = false) -> String {
        if let error = error as? NIOSSLError {
            switch error {
            case .handshakeFailed(let inner): return "TLS handshake failed: \(text(for: inner))"
            case .shutdownFailed(let inner): return "TLS shutdown failed: \(text(for: inner))"
            default: break
            }
        }
        return (duringHandshake ? "TLS handshake failed: " : "TLS error: ") + text(for: error)
    }

    /// A few words for any error of SwiftNIO SSL; other errors by their description without paths.
    static func text(for error: any Error) -> String {
        switch error {
        case let error as NIOSSLError: return text(for: error)
        case let error as BoringSSLError: return text(for: error)
        case let error as NIOSSLExtraError: return text(for: error)
        case let error as NIOTLSUnwrappingError: return text(for: error)
        case is NIOSSLCloseTimedOutError: return "no close notify from the peer in time"
        default: return withoutPaths(String(describing: error))
        }
    }

    static func text(for error: NIOSSLError) -> String {
        switch error {
        case .handshakeFailed(let inner): return "handshake failed: \(text(for: inner))"
        case .shutdownFailed(let inner): return "shutdown failed: \(text(for: inner))"
        case .writeDuringTLSShutdown: return "write during TLS shutdown"
        case .noSuchFilesystemObject: return "no such file"
        case .failedToLoadCertificate: return "cannot load certificate"
        case .failedToLoadPrivateKey: return "cannot load private key"
        case .cannotMatchULabel: return "peer name cannot be matched (not ASCII)"
        case .noCertificateToValidate: return "peer sent no certificate"
        case .unableToValidateCertificate: return "cannot validate certificate"
        case .cannotFindPeerIP: return "peer address unknown"
        case .readInInvalidTLSState: return "read in invalid TLS state"
        case .uncleanShutdown: return "connection closed without close notify"
        default: return withoutPaths(String(describing: error))
        }
    }

    static func text(for error: BoringSSLError) -> String {
        switch error {
        case .noError: return "no error"
        case .zeroReturn: return "connection closed by close notify"
        case .wantRead: return "wants to read"
        case .wantWrite: return "wants to write"
        case .wantConnect: return "wants to connect"
        case .wantAccept: return "wants to accept"
        case .wantX509Lookup: return "wants certificate lookup"
        case .wantCertificateVerify: return "wants certificate verification"
        case .syscallError: return "system call failed"
        case .sslError(let stack): return text(for: stack, otherwise: "unknown error")
        case .unknownError(let stack): return text(for: stack, otherwise: "unknown error")
        case .invalidSNIName(let stack): return "invalid server name (SNI)" + details(stack)
        case .failedToSetALPN(let stack): return "cannot set ALPN protocols" + details(stack)
        }
    }

    static func text(for error: NIOSSLExtraError) -> String {
        switch error {
        case .failedToValidateHostname: return "certificate does not match the peer name"
        case .serverHostnameImpossibleToMatch: return "peer name cannot match a certificate (not a DNS name)"
        case .cannotUseIPAddressInSNI: return "an IP address cannot be a server name (SNI)"
        case .invalidSNIHostname: return "invalid server name (SNI)"
        case .unknownPrivateKeyFileType: return "unknown private key file type"
        default: return withoutPaths(String(describing: error))
        }
    }

    static func text(for error: NIOTLSUnwrappingError) -> String {
        switch error {
        case .alreadyClosed: return "TLS already closed"
        case .invalidInternalState: return "TLS cannot be stopped in this state"
        case .closeRequestedDuringUnwrap: return "connection closed while stopping TLS"
        case .unflushedWriteOnUnwrap: return "write dropped while stopping TLS"
        }
    }

    /// The errors of a BoringSSL error stack joined with "; " (`otherwise` for an empty stack).
    static func text(for stack: NIOBoringSSLErrorStack, otherwise empty: String) -> String {
        text(forDescriptions: stack.map(\.description), otherwise: empty)
    }

    static func text(forDescriptions descriptions: [String], otherwise empty: String) -> String {
        let texts = descriptions.map(text(forDescription:)).filter { !$0.isEmpty }
        return texts.isEmpty ? empty : texts.joined(separator: "; ")
    }

    private static func details(_ stack: NIOBoringSSLErrorStack) -> String {
        stack.isEmpty ? "" : ": " + text(for: stack, otherwise: "")
    }

    // MARK: One BoringSSL error

    /// One error of the stack from its description
    /// (`Error: <decimal> error:<hex>:<library>:<function>:<REASON> at <path>:<line>`), as
    /// `<reason in words> (error:<hex>)`. Descriptions of another form (SwiftNIO SSL's own, such as
    /// `EOF during handshake`) lose the `Error:` prefix and any path.
    static func text(forDescription description: String) -> String {
        guard let parsed = parse(description) else {
            var words = description.split(separator: " ", omittingEmptySubsequences: true)
            if words.first == "Error:" {
                words.removeFirst()
                if let code = words.first, code.allSatisfy(\.isASCIIDigit) { words.removeFirst() }
            }
            return withoutPaths(words.joined(separator: " "))
        }
        return "\(reasonText(parsed.reason)) (error:\(parsed.code))"
    }

    /// The hex code and the reason of an `error:<hex>:<library>:<function>:<REASON>` part, or `nil`.
    static func parse(_ description: String) -> (code: String, reason: String)? {
        guard let start = description.firstRange(of: "error:") else { return nil }
        var rest = description[start.upperBound...]
        // The source location follows as " at <path>:<line>"; the path may hold colons of its own.
        if let location = rest.firstRange(of: " at ") { rest = rest[..<location.lowerBound] }
        let fields = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 4, let code = fields.first, let reason = fields.last else { return nil }
        guard (1...8).contains(code.count), code.allSatisfy({ $0.isHexDigit }) else { return nil }
        guard reason.contains(where: { $0.isLetter }),
            reason.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_()".contains($0)) })
        else { return nil }
        return (code.lowercased(), String(reason))
    }

    /// Readable words for a BoringSSL reason name such as `EXCESSIVE_MESSAGE_SIZE`.
    static func reasonText(_ reason: String) -> String {
        if let text = specialReasons[reason] { return text }
        for prefix in ["SSLV3_ALERT_", "TLSV1_ALERT_", "TLSV13_ALERT_"] where reason.hasPrefix(prefix) {
            return "peer sent alert " + words(reason.dropFirst(prefix.count))
        }
        if reason.hasPrefix("reason(") { return "unknown reason" }
        return words(Substring(reason))
    }

    /// Reasons whose words alone would read badly.
    static let specialReasons: [String: String] = [
        "CERTIFICATE_VERIFY_FAILED": "certificate verification failed",
        "HTTP_REQUEST": "got an HTTP request, not TLS",
        "HTTPS_PROXY_REQUEST": "got an HTTPS proxy request, not TLS",
        "WRONG_VERSION_NUMBER": "wrong version number (not TLS?)",
    ]

    /// Abbreviations kept in capitals.
    static let abbreviations: Set<Substring> = [
        "ALPN", "CA", "CCS", "CRL", "DH", "DTLS", "EC", "ECDH", "ECDSA", "ECH", "EMS", "HTTP", "HTTPS", "ID", "IP",
        "MAC", "NPN", "OCSP", "PSK", "QUIC", "RSA", "SCT", "SNI", "SRTP", "SSL", "SSLV3", "TLS", "TLSV1", "X509",
    ]

    private static func words(_ reason: Substring) -> String {
        reason.split(separator: "_").map { abbreviations.contains($0) ? String($0) : $0.lowercased() }
            .joined(separator: " ")
    }

    // MARK: Fallback

    /// `text` without words that look like file paths, and without the `at` before them.
    static func withoutPaths(_ text: String) -> String {
        var kept: [Substring] = []
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            if word.contains("/") || word.contains("\\") {
                if kept.last == "at" { kept.removeLast() }
                continue
            }
            kept.append(word)
        }
        let result = kept.joined(separator: " ")
        return result.isEmpty ? "unknown error" : result
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
