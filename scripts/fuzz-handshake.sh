#!/usr/bin/env bash
# Fuzzes the AEMP handshake (HandshakeStateMachine, its line reader, greeting parser and auth tokens)
# with libFuzzer: this side's greeting and arbitrary peer bytes in arbitrary chunks.
#   scripts/fuzz-handshake.sh [seconds | -runs=N] [libFuzzer flags…]     (default 60 seconds)
# Builds Fuzz/HandshakeFuzz/HandshakeFuzz.swift together with the handshake sources of the AEMP
# target, instrumented, against the NIOCore and swift-crypto objects of the debug build
# (scripts/fuzz-common.sh). The seeds are both sides of every captured Perl connection
# (Tests/Fixtures/captures/aemp-session.streams.json), plus TLS, cleartext, CR LF and 4 KiB-limit
# variants made from them. Corpus and crashes: fuzz-artifacts/handshake/. A crash should become a
# regression test in Tests/AEMPTests/HandshakeRobustnessTests.swift.
source "$(dirname "$0")/fuzz-common.sh"
fuzz_init handshake "$@"
fuzz_dependencies NIOCore Crypto

# Seeds: header (flags, chunking; see HandshakeFuzz.swift), this side's two lines, the peer's bytes.
python3 - "$FUZZ_CORPUS" <<'PYTHON'
import hashlib, hmac, json, os, sys

corpus = sys.argv[1]
secret = b"aemp-ref-secret"
captures = json.load(open("Tests/Fixtures/captures/aemp-session.streams.json"))

def write(name, header, own, peer):
    with open(os.path.join(corpus, "seed-" + name), "wb") as f:
        f.write(bytes(header) + own[0] + b"\n" + own[1] + b"\n" + peer[:5000])

def lines(data, count):
    parts = data.split(b"\n")
    return parts[:count] if len(parts) > count else None

for connection in captures:
    streams = {direction: b"".join(bytes.fromhex(s["hex"]) for s in connection["segments"] if s["dir"] == direction)
               for direction in ("c2s", "s2c")}
    for side, own_stream, peer_stream in (("client", streams["c2s"], streams["s2c"]),
                                          ("server", streams["s2c"], streams["c2s"])):
        own = lines(own_stream, 2)
        if own is None:
            continue
        name = f"conn{connection['conn']}-{side}"
        # Whole, byte by byte, and in small random chunks.
        write(name + "-whole", [0x00, 0x07], own, peer_stream)
        write(name + "-bytes", [0x08, 0x00], own, peer_stream[:1000])
        write(name + "-chunks", [0x10, 0x23], own, peer_stream[:1000])
        peer = lines(peer_stream, 3)
        if peer is None or connection["conn"] not in (2, 8):
            continue
        rest = peer_stream.split(b"\n", 3)[3] if peer_stream.count(b"\n") >= 3 else b""
        # CR LF line endings; the timeout after a truncated greeting.
        write(name + "-crlf", [0x00, 0x04], own, b"\r\n".join(peer) + b"\r\n" + rest)
        write(name + "-timeout", [0x04, 0x07], own, peer[0][:40])
        # cleartext: the secret in hex.
        auth = b"cleartext;" + secret.hex().encode() + b";json"
        write(name + "-cleartext", [0x00, 0x07], own, b"\n".join(peer[:2] + [auth]) + b"\n")
        # TLS: the peer asks for it; tls_anon (untrusted) and tls_sha3_512 over the peer's lines first.
        greeting = peer[0] + b";tls=1.0"
        message = b"".join(l + b"\n" for l in (greeting, peer[1], own[0], own[1]))
        for method, token in ((b"tls_anon", b""), (b"tls_sha3_512", hashlib.sha3_512(message).hexdigest().encode())):
            write(name + "-" + method.decode(), [0x01, 0x05], own,
                  b"\n".join([greeting, peer[1], method + b";" + token + b";cbor"]) + b"\n" + rest)
        token = hmac.new(secret, message, hashlib.sha3_512).hexdigest().encode()
        write(name + "-tls-hmac", [0x01, 0x07], own, b"\n".join([greeting, peer[1], b"hmac_sha3_512;" + token + b";json"]) + b"\n")
        # The 4 KiB limit: a 4096-byte line (accepted), a 4097-byte one, a 4097-byte remainder.
        padded = peer[0] + b";x=" + b"a" * (4096 - len(peer[0]) - 3)
        write(name + "-4096", [0x00, 0x06], own, padded + b"\n" + peer[1] + b"\n")
        write(name + "-4097", [0x00, 0x06], own, padded + b"a\n" + peer[1] + b"\n")
        write(name + "-remainder", [0x00, 0x05], own, b"\n".join(peer[:2]) + b"\n" + b"b" * 4097)
        # Node IDs compare as bytes, as in Perl: the KELVIN SIGN is canonically equivalent to K,
        # yet a different node ID (also for "already connected").
        def rename(line, node):
            fields = line.split(b";")
            return b";".join(fields[:2] + [node] + fields[3:])
        kelvin = [rename(own[0], b"Kelvin"), own[1]]
        write(name + "-kelvin", [0x00, 0x07], kelvin, rename(peer[0], "\u212aelvin".encode()) + b"\n" + peer[1] + b"\n")
        # Fields are split at the byte ';' only, as in Perl: U+037E GREEK QUESTION MARK is canonically
        # equivalent to ';', a combining mark after ';' makes one Swift Character with it.
        for extra in ("x=\u037e", ";\u0301y=1"):
            write(name + "-split-" + extra.encode().hex(), [0x00, 0x07], own,
                  peer[0] + b";" + extra.encode() + b"\n" + b"\n".join(peer[1:]) + b"\n" + rest)
        # Already connected; an echo of this side's own lines.
        write(name + "-connected", [0x02, 0x07], own, peer_stream)
        write(name + "-echo", [0x00, 0x07], own, own[0] + b"\n" + own[1] + b"\n")
PYTHON

fuzz_build AEMPHandshakeFuzz Sources/AEMP/Transport/Handshake*.swift Sources/AEMP/Transport/Greeting.swift \
    Sources/AEMP/Transport/Framing.swift Sources/AEMP/Identity/NodeID.swift \
    Sources/AEMP/Configuration/NodeConfiguration.swift Fuzz/HandshakeFuzz/HandshakeFuzz.swift
fuzz_run -max_len=10000
