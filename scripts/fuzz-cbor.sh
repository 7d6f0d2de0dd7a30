#!/usr/bin/env bash
# Fuzzes the CBOR decoders with libFuzzer for a bounded time.
#   scripts/fuzz-cbor.sh [seconds]      (default 60)
# Builds Fuzz/CBORFuzz/CBORFuzz.swift together with the AEMPCodecs sources (instrumented with
# -sanitize=fuzzer,address) against the NIOCore objects of the debug build, which it runs first.
# The corpus lives in .build/fuzz-cbor/corpus; crashes are written to .build/fuzz-cbor/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build/fuzz-cbor
mkdir -p "$out/corpus"

swift build --target AEMPCodecs >/dev/null
bin="$(swift build --show-bin-path)"

objects=()
modulemaps=()
for target in NIOCore NIOConcurrencyHelpers _NIODataStructures _NIOBase64 Atomics _AtomicsShims \
    CNIOAtomics CNIOLinux CNIODarwin CNIOWindows CNIOWASI CNIOOpenBSD CNIOFreeBSD \
    DequeModule InternalCollectionsUtilities ContainersPreview; do
    dir="$bin/$target.build"
    [ -d "$dir" ] || continue
    while IFS= read -r o; do objects+=("$o"); done < <(find "$dir" -name '*.o')
    [ -f "$dir/module.modulemap" ] && modulemaps+=(-Xcc "-fmodule-map-file=$dir/module.modulemap")
done
# C modules shipped as source module maps (include/module.modulemap) in the checkouts.
while IFS= read -r map; do modulemaps+=(-Xcc "-fmodule-map-file=$map"); done < <(
    find .build/checkouts/swift-nio/Sources .build/checkouts/swift-atomics/Sources -name module.modulemap 2>/dev/null)

# Seed corpus: a few AEMP-like messages and RFC examples.
printf '\x83\x40\x46g_find\x44echo' > "$out/corpus/seed-aemp"
printf '\x9f\x01\x82\x02\x03\x9f\x04\x05\xff\xff' > "$out/corpus/seed-indefinite"
printf '\xbf\x63Fun\xf5\x63Amt\x21\xff' > "$out/corpus/seed-map"
printf '\xc3\x49\x01\x00\x00\x00\x00\x00\x00\x00\x00' > "$out/corpus/seed-bignum"
printf '\x7f\x65strea\x64ming\xff\xf9\x7e\x01' > "$out/corpus/seed-text"

swiftc -sanitize=fuzzer,address -parse-as-library -Onone -g \
    -module-name AEMPCodecsFuzz -I "$bin/Modules" "${modulemaps[@]}" \
    Sources/AEMPCodecs/Value*.swift Sources/AEMPCodecs/CBOR/*.swift Fuzz/CBORFuzz/CBORFuzz.swift \
    "${objects[@]}" -o "$out/cbor-fuzzer"

"$out/cbor-fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$out/" -print_final_stats=1 "$out/corpus"
