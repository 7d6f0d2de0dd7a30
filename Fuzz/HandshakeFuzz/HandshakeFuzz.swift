// libFuzzer entry point for the AEMP handshake: HandshakeStateMachine with its line reader, greeting
// parser and auth tokens, fed arbitrary peer bytes in arbitrary chunks. Built by
// scripts/fuzz-handshake.sh together with those sources (Sources/AEMP/Transport/Handshake*.swift,
// Greeting.swift, Framing.swift, Identity/NodeID.swift, Configuration/NodeConfiguration.swift), so
// they are instrumented; the seeds are the captured Perl connections.
//
// Input layout:
//   byte 0   flags: bit 0 this node has TLS (and "establishes" it at once when asked),
//            bit 1 the peer's node counts as already connected, bit 2 the handshake timeout fires
//            after the last byte; bits 3-7 seed the chunk sizes
//   byte 1   bits 0-2 the largest chunk: 1, 2, 5, 17, 64, 300, 4097 bytes or everything; bits 3-7 seed
//   then     this side's greeting line 1 LF and nonce line LF: the machine sends exactly these
//            (its node ID, accepted auth methods and framings come from that greeting, as a Perl
//            node's would); inputs where they do not parse are skipped
//   then     the peer's bytes.
// The secret is the captures' (`aemp-ref-secret`), so captured peer streams authenticate.
//
// Invariants, besides "no crash" (a failed precondition is a finding):
// - the first directive sends exactly this side's two greeting lines; nothing follows the end;
// - the machine consumes whole lines only (what it consumed ends with LF), at most three of them;
// - while the handshake runs, at most 4096 bytes stay unconsumed (HandshakeLineReader's limit), the
//   buffer holds no complete line, and `lineTooLong` comes only for a line or a remainder above 4096;
// - `.peerGreeted` carries the peer's first line, reformatted byte for byte;
// - `.startTLS` only when both sides want TLS, with the role the nonce lines decide;
// - this side's auth line carries a correct token for a method the peer accepts, over the lines as
//   sent and received;
// - `.authenticated` only for a third line whose token is valid, recomputed here independently
//   (HMAC-SHA3-512 over the peer's and this side's lines, the secret in hex for `cleartext`, and
//   inside TLS SHA3-512 or the empty `tls_anon` token), with the method one this side accepts; the
//   result matches the lines, and everything after the third line is left for the data phase;
// - `selfConnection` only for the byte-identical node ID; after the end, input is left untouched.
import Crypto
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

private let secret = Array("aemp-ref-secret".utf8)
private let lineFeed: UInt8 = 0x0A
private let maxChunks = [1, 2, 5, 17, 64, 300, 4097, Int.max]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard size > 2 else { return 0 }
    let flags = input[0]
    // This side's two lines.
    guard let end1 = input[2...].firstIndex(of: lineFeed),
        let end2 = input[(end1 + 1)...].firstIndex(of: lineFeed)
    else { return 0 }
    let ownLine = Array(input[2..<end1])
    let nonceLine = Array(input[(end1 + 1)..<end2])
    guard let greeting = try? Greeting(parsing: ownLine), let nonce = String(validating: nonceLine, as: UTF8.self)
    else { return 0 }
    var run = HandshakeRun(
        greeting: greeting, nonce: nonce, tlsAvailable: flags & 1 != 0, alreadyConnected: flags & 2 != 0,
        peer: Array(input[(end2 + 1)...]))
    precondition(Array(run.machine.localGreetingLine.utf8) == ownLine, "own greeting does not reformat byte for byte")
    var chunks = ChunkPlan(seed: UInt64(flags >> 3) << 8 | UInt64(input[1]), maxChunk: maxChunks[Int(input[1] & 7)])
    run.start()
    // After the end the machine takes no more input (checked once in finish()).
    while run.fed < run.peer.count && !run.finished {
        run.feed(chunks.next(remaining: run.peer.count - run.fed))
    }
    run.finish(timeout: flags & 4 != 0)
    return 0
}

/// Chunk sizes from a small deterministic generator (SplitMix64).
struct ChunkPlan {
    var state: UInt64
    let maxChunk: Int

    init(seed: UInt64, maxChunk: Int) {
        self.state = seed
        self.maxChunk = maxChunk
    }

    mutating func next(remaining: Int) -> Int {
        guard maxChunk < remaining else { return remaining }
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return 1 + Int(z % UInt64(maxChunk))
    }
}

/// One handshake: the machine, the peer's stream, and what has been seen so far.
struct HandshakeRun {
    var machine: HandshakeStateMachine
    let configuration: HandshakeConfiguration
    let alreadyConnected: Bool
    let peer: [UInt8]
    /// The peer's first three lines (without CR LF / LF) and where each ends in `peer` (after its LF).
    let peerLines: [(line: [UInt8], end: Int)]
    let ownGreeting: [UInt8]
    let ownNonce: [UInt8]
    /// The peer's first line parsed, if it parses.
    let peerGreeting: Greeting?

    var buffer = ByteBuffer()
    var fed = 0
    var consumed = 0
    var sends = 0
    var greeted = false
    var tlsStarted = false
    var finished = false

    init(greeting: Greeting, nonce: String, tlsAvailable: Bool, alreadyConnected: Bool, peer: [UInt8]) {
        configuration = HandshakeConfiguration(
            nodeID: greeting.nodeID, secret: String(decoding: secret, as: UTF8.self), tlsAvailable: tlsAvailable,
            authAccept: greeting.authMethods, framings: greeting.framings)
        machine = HandshakeStateMachine(configuration: configuration, greeting: greeting, nonce: nonce)
        self.alreadyConnected = alreadyConnected
        self.peer = peer
        ownGreeting = Array(machine.localGreetingLine.utf8)
        ownNonce = Array(machine.localNonce.utf8)
        var lines: [(line: [UInt8], end: Int)] = []
        var start = 0
        while lines.count < 3, let newline = peer[start...].firstIndex(of: lineFeed) {
            var line = Array(peer[start..<newline])
            if line.last == 0x0D { line.removeLast() }
            lines.append((line, newline + 1))
            start = newline + 1
        }
        peerLines = lines
        peerGreeting = lines.isEmpty ? nil : try? Greeting(parsing: lines[0].line)
    }

    mutating func start() {
        let directives = machine.start()
        precondition(directives == [.send(machine.localGreetingLine + "\n" + machine.localNonce + "\n")], "start: \(directives)")
        sends = 1
        precondition(machine.start().isEmpty, "second start sent again")
    }

    /// One arrival of `count` bytes, handled as the transport does (TLS comes up at once).
    mutating func feed(_ count: Int) {
        buffer.writeBytes(peer[fed..<(fed + count)])
        fed += count
        receive()
    }

    mutating func receive() {
        while true {
            let before = buffer.readableBytes
            let connected = alreadyConnected
            let directives = machine.receive(&buffer, isAlreadyConnected: { _ in connected })
            consumed += before - buffer.readableBytes
            check(directives)
            let startsTLS: Bool
            if case .startTLS? = directives.last { startsTLS = true } else { startsTLS = false }
            checkBuffer(awaitingTLS: startsTLS)
            guard startsTLS else { return }
            tlsStarted = true
            let afterTLS = machine.tlsEstablished()
            check(afterTLS)
            precondition(sends == 2 || finished, "no auth line after TLS came up: \(afterTLS)")
        }
    }

    mutating func finish(timeout: Bool) {
        if finished {
            // Input after the end stays where it is.
            buffer.writeBytes([0x0A, 0x61, 0x0A])
            let before = buffer.readableBytes
            precondition(machine.receive(&buffer).isEmpty && buffer.readableBytes == before, "input handled after the end")
            precondition(machine.tlsEstablished().isEmpty && machine.timedOut().isEmpty, "events handled after the end")
        } else if timeout {
            let directives = machine.timedOut()
            precondition(directives == [.fail(HandshakeError(.timeout, ""))], "timeout: \(directives)")
            precondition(machine.isFinished, "not finished after the timeout")
        }
    }

    // MARK: Checks

    /// While TLS starts, the unconsumed bytes belong to TLS, not to the handshake.
    func checkBuffer(awaitingTLS: Bool) {
        precondition(consumed == fed - buffer.readableBytes, "bytes went missing")
        precondition(consumed == 0 || peer[consumed - 1] == lineFeed, "consumed part of a line (\(consumed) bytes)")
        let linesConsumed = peerLines.firstIndex(where: { $0.end == consumed }).map { $0 + 1 } ?? 0
        precondition(consumed == 0 || linesConsumed > 0, "consumed more than three lines")
        precondition(finished == machine.isFinished, "isFinished disagrees with the directives")
        if !finished && !awaitingTLS {
            precondition(buffer.readableBytes <= HandshakeLineReader.maximumBufferedBytes, "buffered \(buffer.readableBytes) bytes")
            // memchr: an instrumented byte loop here would cost more than the machine itself.
            let hasLine = buffer.withUnsafeReadableBytes { raw in
                raw.baseAddress.map { memchr($0, Int32(lineFeed), raw.count) != nil } ?? false
            }
            precondition(!hasLine, "a complete line was left unhandled")
        }
    }

    mutating func check(_ directives: [HandshakeStateMachine.Directive]) {
        for directive in directives {
            precondition(!finished, "directive after the end: \(directive)")
            switch directive {
            case .send(let text):
                sends += 1
                precondition(sends == 2, "third send: \(text)")
                checkOwnAuthLine(Array(text.utf8))
            case .peerGreeted(let greeting):
                precondition(!greeted, "greeted twice")
                greeted = true
                precondition(consumed >= peerLines[0].end, "greeted before line 1 was consumed")
                precondition(Array(greeting.line.utf8) == peerLines[0].line, "peer greeting does not reformat byte for byte")
                checkFields(greeting, peerLines[0].line)
            case .startTLS(let role):
                precondition(configuration.tlsAvailable && peerGreeting?.wantsTLS == true, "TLS without both sides wanting it")
                precondition(role == TLSRole.decide(ownNonce: ownNonce, peerNonce: peerLines[1].line), "wrong TLS role")
            case .authenticated(let result):
                finished = true
                checkAuthenticated(result)
            case .fail(let error):
                finished = true
                checkFailure(error)
            }
        }
    }


    /// The greeting's fields are the line split at the bytes `;` (lists at `,`, items at the first
    /// `=`), as Perl's `split` sees them.
    func checkFields(_ greeting: Greeting, _ line: [UInt8]) {
        func split(_ bytes: ArraySlice<UInt8>, _ separator: Character) -> [[UInt8]] {
            bytes.split(separator: separator.asciiValue!, omittingEmptySubsequences: false).map { Array($0) }
        }
        func list(_ bytes: [UInt8]) -> [[UInt8]] { bytes.isEmpty ? [] : split(bytes[...], ",") }
        let fields = split(line[...], ";")
        precondition(fields.count == 5 + greeting.items.count, "greeting has \(fields.count) fields, parsed \(5 + greeting.items.count)")
        precondition(
            fields[0] == Array(greeting.protocolName.utf8) && fields[1] == Array(greeting.version.utf8)
                && fields[2] == Array(greeting.nodeID.rawValue.utf8), "greeting fields 1-3 differ from the bytes")
        precondition(list(fields[3]) == greeting.authMethods.map { Array($0.rawValue.utf8) }, "auth list differs from the bytes")
        precondition(list(fields[4]) == greeting.framings.map { Array($0.rawValue.utf8) }, "framing list differs from the bytes")
        for (field, item) in zip(fields.dropFirst(5), greeting.items) {
            let parts = field.split(separator: 0x3D, maxSplits: 1, omittingEmptySubsequences: false).map { Array($0) }
            precondition(
                parts[0] == Array(item.key.utf8) && parts.dropFirst().first == item.value.map { Array($0.utf8) },
                "greeting item differs from the bytes")
        }
    }

    /// The lines a token covers, the sender's first: `a1 LF a2 LF b1 LF b2 LF`.
    func transcript(senderFirst: Bool) -> [UInt8] {
        let peerPart = peerLines[0].line + [lineFeed] + peerLines[1].line + [lineFeed]
        let ownPart = ownGreeting + [lineFeed] + ownNonce + [lineFeed]
        return senderFirst ? ownPart + peerPart : peerPart + ownPart
    }

    /// The token `method` needs from the side whose lines come first in `message`, or nil.
    func expectedToken(_ method: String, message: [UInt8]) -> [UInt8]? {
        switch method {
        case "hmac_sha3_512":
            return hex(HMAC<SHA3_512>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        case "cleartext":
            return hex(secret)
        case "tls_sha3_512":
            return tlsStarted ? hex(SHA3_512.hash(data: message)) : nil
        case "tls_anon":
            return tlsStarted ? [] : nil
        default:
            return nil
        }
    }

    func checkOwnAuthLine(_ line: [UInt8]) {
        // (`consumed` counts the whole receive call, which may go on to the peer's auth line.)
        precondition(peerLines.count >= 2 && consumed >= peerLines[1].end, "auth line sent before the nonce line")
        precondition(line.last == lineFeed, "auth line without LF")
        let fields = line.dropLast().split(separator: 0x3B, omittingEmptySubsequences: false).map { Array($0) }
        precondition(fields.count == 3, "auth line fields: \(fields.count)")
        let method = String(decoding: fields[0], as: UTF8.self)
        guard let peer = peerGreeting else { preconditionFailure("auth line without a peer greeting") }
        precondition(peer.authMethods.contains(AuthMethod(rawValue: method)), "sent \(method), which the peer does not accept")
        precondition(configuration.authOffer.contains(AuthMethod(rawValue: method)), "sent \(method), which is not offered")
        precondition(tlsStarted || method == "hmac_sha3_512", "sent \(method) without TLS")
        precondition(
            fields[1] == expectedToken(method, message: transcript(senderFirst: true)), "wrong own \(method) token")
        let framing = peer.framings.first(where: { $0.isSupported && configuration.framings.contains($0) })
        precondition(fields[2] == Array((framing?.rawValue ?? "").utf8), "sent framing \(fields[2])")
    }

    func checkAuthenticated(_ result: HandshakeResult) {
        precondition(peerLines.count == 3 && consumed == peerLines[2].end, "authenticated without exactly three lines")
        precondition(sends == 2 && greeted, "authenticated before the handshake was done")
        let fields = peerLines[2].line.split(separator: 0x3B, maxSplits: 3, omittingEmptySubsequences: false)
        let method = String(decoding: fields[0], as: UTF8.self)
        let token = fields.count > 1 ? Array(fields[1]) : []
        let framing = fields.count > 2 ? String(decoding: fields[2], as: UTF8.self) : ""
        precondition(configuration.authAccept.contains(AuthMethod(rawValue: method)), "accepted \(method), which is not accepted")
        guard let expected = expectedToken(method, message: transcript(senderFirst: false)), token == expected else {
            preconditionFailure("authenticated with an invalid \(method) token")
        }
        guard let peer = peerGreeting else { preconditionFailure("authenticated without a peer greeting") }
        precondition(result.peerNodeID == peer.nodeID && result.peerGreeting == peer, "wrong peer in the result")
        precondition(result.receiveAuth.rawValue == method && result.trusted == (method != "tls_anon"), "wrong auth in the result")
        precondition(result.receiveFraming.rawValue == framing && result.receiveFraming.isSupported, "wrong framing in the result")
        precondition(result.tls == tlsStarted, "wrong TLS flag in the result")
    }

    func checkFailure(_ error: HandshakeError) {
        switch error.code {
        case .lineTooLong:
            // The reader fails without consuming: the buffer starts at the offending line.
            let view = buffer.readableBytesView
            let length = view.firstIndex(of: lineFeed).map { $0 - view.startIndex }
            precondition(
                (length ?? view.count) > HandshakeLineReader.maximumBufferedBytes,
                "lineTooLong for a \(length.map { "\($0)-byte line" } ?? "\(view.count)-byte remainder")")
        case .selfConnection:
            guard let peer = peerGreeting else { preconditionFailure("selfConnection without a greeting") }
            precondition(
                Array(peer.nodeID.rawValue.utf8) == Array(configuration.nodeID.rawValue.utf8),
                "selfConnection for a different node ID")
        case .timeout:
            preconditionFailure("timeout while input is fed")
        default:
            break
        }
    }
}

private func hex(_ bytes: some Sequence<UInt8>) -> [UInt8] {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 15)])
    }
    return out
}
