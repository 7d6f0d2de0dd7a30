#!/usr/bin/env bash
# Fuzzes the JSON stream decoder and the netstring/packstring decoders with libFuzzer.
#   scripts/fuzz-json.sh [seconds | -runs=N] [libFuzzer flags…]     (default 60 seconds)
# Builds Fuzz/JSONFuzz/Sources/JSONFuzz/JSONFuzz.swift against AEMPCodecs compiled as an
# instrumented module, and the NIOCore objects of the debug build (scripts/fuzz-common.sh).
# Corpus and crashes: fuzz-artifacts/json/. Any crash found should become a regression test in
# Tests/AEMPCodecsTests (JSON*Tests.swift, NetstringTests.swift, PackstringTests.swift).
source "$(dirname "$0")/fuzz-common.sh"
fuzz_init json "$@"
fuzz_dependencies NIOCore

# Seed corpus: AEMP-style texts and frames (first byte = target selector + chunk size).
fuzz_seed json1 '\x00["portname","tag",1,2.5,{"a":"b"},[1,"two",null]]["kil","node#port","die"]'
fuzz_seed json2 '\x05[1.5e-3,-0,"\\u20ac\\ud83d\\ude00",true,false,null,inf,-nan]{"x":[{}]}'
fuzz_seed json3 '\x09 1 2 "a" true null [3] 12'
fuzz_seed net1 '\x0a5:hello,0:,3:abc,'
fuzz_seed pack1 '\x0b\x10\x03abc\x81\x00'
fuzz_seed pack2 '\x0f\x0a\x00\x03abc\x00\x00'

fuzz_module AEMPCodecs $(find Sources/AEMPCodecs -name '*.swift' | sort)
fuzz_build JSONFuzz Fuzz/JSONFuzz/Sources/JSONFuzz/JSONFuzz.swift
fuzz_run -max_len=4096
