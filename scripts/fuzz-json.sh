#!/usr/bin/env bash
# Builds the libFuzzer entry point for the JSON, netstring and packstring decoders with
# -sanitize=fuzzer,address and runs it for a bounded time.
#   scripts/fuzz-json.sh [seconds]        (default 60)
# Corpus and crash artifacts go to fuzz-artifacts/json/ (git-ignored). Any crash found should
# become a regression test in Tests/AEMPCodecsTests (JSON*Tests.swift, NetstringTests.swift, PackstringTests.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
root="$(pwd)"
package="$root/Fuzz/JSONFuzz"
out="$root/fuzz-artifacts/json"
mkdir -p "$out/corpus" "$out/crashes"

# Seed corpus: AEMP-style texts and frames (first byte = target selector + chunk size).
seed() { printf "$2" > "$out/corpus/$1"; }
seed json1 '\x00["portname","tag",1,2.5,{"a":"b"},[1,"two",null]]["kil","node#port","die"]'
seed json2 '\x05[1.5e-3,-0,"\\u20ac\\ud83d\\ude00",true,false,null,inf,-nan]{"x":[{}]}'
seed json3 '\x09 1 2 "a" true null [3] 12'
seed net1 '\x0a5:hello,0:,3:abc,'
seed pack1 '\x0b\x10\x03abc\x81\x00'
seed pack2 '\x0f\x0a\x00\x03abc\x00\x00'

swift build --package-path "$package" --scratch-path "$root/.build-fuzz" -c debug \
    --sanitize=fuzzer --sanitize=address 2>&1 | grep -vE "ld.gold: warning: Cannot export local symbol" | grep -E "error|warning|Build complete" || true
binary="$root/.build-fuzz/debug/JSONFuzz"
[ -x "$binary" ] || { echo "fuzz-json.sh: build failed" >&2; exit 1; }

"$binary" "$out/corpus" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/crashes/" -print_final_stats=1
