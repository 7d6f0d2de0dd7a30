#!/usr/bin/env bash
# Fuzzes the CBOR decoders with libFuzzer.
#   scripts/fuzz-cbor.sh [seconds | -runs=N] [libFuzzer flags…]     (default 60 seconds)
# Builds Fuzz/CBORFuzz/CBORFuzz.swift together with the AEMPCodecs sources (Value*.swift,
# CBOR/*.swift), instrumented, against the NIOCore objects of the debug build (scripts/fuzz-common.sh).
# Corpus and crashes: fuzz-artifacts/cbor/. A crash should become a regression test in
# Tests/AEMPCodecsTests.
source "$(dirname "$0")/fuzz-common.sh"
fuzz_init cbor "$@"
fuzz_dependencies NIOCore

# Seed corpus: a few AEMP-like messages and RFC examples.
fuzz_seed seed-aemp '\x83\x40\x46g_find\x44echo'
fuzz_seed seed-indefinite '\x9f\x01\x82\x02\x03\x9f\x04\x05\xff\xff'
fuzz_seed seed-map '\xbf\x63Fun\xf5\x63Amt\x21\xff'
fuzz_seed seed-bignum '\xc3\x49\x01\x00\x00\x00\x00\x00\x00\x00\x00'
fuzz_seed seed-text '\x7f\x65strea\x64ming\xff\xf9\x7e\x01'

fuzz_build AEMPCodecsFuzz Sources/AEMPCodecs/Value*.swift Sources/AEMPCodecs/CBOR/*.swift Fuzz/CBORFuzz/CBORFuzz.swift
fuzz_run -max_len=4096
