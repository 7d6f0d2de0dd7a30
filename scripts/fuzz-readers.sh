#!/usr/bin/env bash
# Fuzzes the Handle read types (line, chunk, regex, netstring, packstring, json, cbor, tls_detect,
# codable) with libFuzzer: one binary, the first input byte picks the read type.
#   scripts/fuzz-readers.sh [seconds | -runs=N] [libFuzzer flags…]     (default 60 seconds)
# Builds Fuzz/HandleReadersFuzz/HandleReadersFuzz.swift together with the reader sources
# (Sources/AEMPHandle/Readers/*.swift, HandleError.swift) against AEMPCodecs compiled as an
# instrumented module, and the NIOCore objects of the dependency build (scripts/fuzz-common.sh).
# The seeds are valid encodings per read type, from Tests/Fixtures/vectors (netstring, packstring,
# json-perl, cbor-perl). Corpus and crashes: fuzz-artifacts/readers/. A crash should become a
# regression test in Tests/AEMPHandleTests/ReaderFuzzRegressionTests.swift.
source "$(dirname "$0")/fuzz-common.sh"
fuzz_init readers "$@"
fuzz_dependencies NIOCore

# Seeds: header (read type, arrival/limit flags, arrival seed; see HandleReadersFuzz.swift) + stream.
python3 - "$FUZZ_CORPUS" <<'PYTHON'
import json, os, sys

corpus = sys.argv[1]
# The indices of readerCases in HandleReadersFuzz.swift.
LINE, LINE_DASHES, LINE_REGEX, CHUNK5, CHUNK300, REGEX_REJECT, REGEX_SKIP, NETSTRING = range(8)
PACK = {letter: 8 + i for i, letter in enumerate(["C", "n", "N", "v", "V", "w", "Q>", "s<", "l!"])}
JSON, JSON_SMALL, CBOR_SMALL, CBOR, TLS_DETECT, CODABLE = range(17, 23)
# Arrival flags: whole; 1 byte at a time; up to 7 bytes with a 256-byte limit; up to 32 bytes,
# async errors, someone else consuming, no limit.
FLAGS = [0x07, 0x00, 0x83, 0x1C]
count = 0

def seed(kind, stream, flags=FLAGS):
    global count
    for flag in flags:
        count += 1
        with open(os.path.join(corpus, f"seed-{kind:02d}-{count}"), "wb") as f:
            f.write(bytes([kind, flag, count & 0xFF]) + stream[:4000])

def vectors(name):
    return json.load(open(f"Tests/Fixtures/vectors/{name}.json"))["cases"]

seed(LINE, b"one\r\ntwo\n\nthree\npartial")
seed(LINE_DASHES, b"a--bc----d---e-")
seed(LINE_REGEX, b"x;y\r\nz\n;\r\r\n")
seed(CHUNK5, bytes(range(64)))
seed(CHUNK300, bytes(range(256)) * 3)
seed(REGEX_REJECT, b"ab=12\ncd=3\nx=1\nBAD\n")
seed(REGEX_SKIP, b"GET / HTTP/1.0\r\nHost: x\r\n\r\nrest")
for case in vectors("netstring"):
    if case["kind"] == "write" and case.get("wire_is_valid_netstring"):
        seed(NETSTRING, bytes.fromhex(case["wire_hex"]) * 2, FLAGS[:2])
    elif case["kind"] == "read":
        seed(NETSTRING, b"".join(bytes.fromhex(c) for c in case["chunks_hex"]), FLAGS[:1])
for case in vectors("packstring"):
    if case["kind"] == "handle_write" and case["format"] in PACK and "wire_hex" in case and case["payload_length"] <= 300:
        seed(PACK[case["format"]], bytes.fromhex(case["wire_hex"]) * 2, FLAGS[:2])
    elif case["kind"] == "handle_read" and case["format"] in PACK:
        seed(PACK[case["format"]], b"".join(bytes.fromhex(c) for c in case["chunks_hex"]), FLAGS[:1])
for case in vectors("json-perl"):
    if case["kind"] == "encode" and "json" in case:
        text = bytes.fromhex(case["json_hex"]) if "json_hex" in case else case["json"].encode()
        seed(JSON if len(text) % 2 else JSON_SMALL, text + b" " + text, FLAGS[:2])
    elif case["kind"] == "incr":
        fed = b"".join(bytes.fromhex(c["fed_hex"]) if "fed_hex" in c else c["fed"].encode() for c in case["calls"])
        seed(JSON, fed, FLAGS[:1])
for case in vectors("cbor-perl"):
    if case["kind"] in ("encode", "decode") and "hex" in case:
        item = bytes.fromhex(case["hex"])
        seed(CBOR if len(item) % 2 else CBOR_SMALL, item * 2, FLAGS[:2])
    elif case["kind"] == "incr":
        seed(CBOR, b"".join(bytes.fromhex(c["fed_hex"]) for c in case["calls"] if "fed_hex" in c), FLAGS[:1])
seed(TLS_DETECT, bytes([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]))
seed(TLS_DETECT, bytes([0x80, 0x2E, 0x01, 0x03, 0x01, 0x00]))
# codable: BER length + CBOR map {"port": "p", "args": [1, 2]} (and with "reply").
for item in (bytes.fromhex("a264706f72746161706461726773820102"),
             bytes.fromhex("a364706f72746161706461726773820102657265706c796172")):
    seed(CODABLE, (bytes([len(item)]) + item) * 2)
PYTHON

fuzz_module AEMPCodecs $(find Sources/AEMPCodecs -name '*.swift' | sort)
fuzz_build AEMPHandleReadersFuzz Sources/AEMPHandle/Readers/*.swift Sources/AEMPHandle/HandleError.swift \
    Fuzz/HandleReadersFuzz/HandleReadersFuzz.swift
# Swift's Regex keeps memory that LeakSanitizer reports, once per Regex value (see the file).
export LSAN_OPTIONS="suppressions=$FUZZ_ROOT/Fuzz/HandleReadersFuzz/lsan-suppressions.txt${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fuzz_run -max_len=4096
