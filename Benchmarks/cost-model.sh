#!/usr/bin/env bash
# The cost model of issue #16: user-space instructions (and malloc calls) per one-way message (send
# side, receive side), per round trip (next to the same ping-pong on plain SwiftNIO channels, the
# reference), and per DataConn byte (plain and TLS, both directions),
# counted with valgrind's callgrind on fixed workloads. Counts barely move with the machine's load,
# so a change can be judged without a quiet machine (timing figures come from node-bench.sh and
# dataconn-bench.sh).
#
#   Benchmarks/cost-model.sh [scale=1]        (from anywhere; scale multiplies every count)
#   env: COST_MODEL_NO_BUILD=1 (skip the release build), COST_MODEL_PORT=29600,
#        COST_MODEL_ONLY="roundtrip send" (a subset of the workloads)
#
# How: Benchmarks/CostModel runs the measured node under callgrind and its peer natively (see the
# comment at the top of CostModel/main.swift). Each workload runs twice, with a small and a large
# count; (instructions(large) - instructions(small)) / (units(large) - units(small)) is the cost of
# one unit, so start-up, handshake, warm-up and shutdown cancel out. Only user space is counted:
# the kernel's share (system calls, loopback copies) is not. The binary is run with its debug
# sections stripped (valgrind 3.19 cannot read Swift's DWARF 5) but its symbols kept, so
# `callgrind_annotate` on the kept output files names functions.
#
# Needs: valgrind (Debian valgrind), python3, openssl.
set -uo pipefail

SCALE=${1:-1}
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${COST_MODEL_PORT:-29600}  # below Linux's ephemeral range (32768-60999): no clash with sockets in TIME_WAIT
ONLY=${COST_MODEL_ONLY:-"send receive roundtrip nio-roundtrip dataconn-send dataconn-receive"}
WORK=$(mktemp -d /tmp/cost-model.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT
die() { echo "cost-model: $*" >&2; exit 1; }
for tool in valgrind callgrind_annotate python3 openssl strip timeout; do
    command -v "$tool" > /dev/null || die "$tool not found (Debian: apt-get install valgrind binutils openssl)"
done

if [ "${COST_MODEL_NO_BUILD:-0}" != 1 ]; then
    echo "building CostModel (release)..." >&2
    timeout 3600 swift build -c release --package-path "$HERE" --product CostModel >&2 || die "release build failed"
fi
BUILT="$(swift build -c release --package-path "$HERE" --show-bin-path)/CostModel"
[ -x "$BUILT" ] || die "$BUILT missing"
BIN="$WORK/CostModel"
strip --strip-debug -o "$BIN" "$BUILT" || die "strip failed"

# One CA and one node certificate (both nodes present it) in $WORK/cert.pem.
# shellcheck source=bench-certificate.sh
source "$HERE/bench-certificate.sh"
make_node_certificate "$WORK" cost-model

# start_peer NAME PORT FRAMING [CERT]: the native peer node.
start_peer() {
    timeout 3600 "$BUILT" peer "$2" "$3" ${4:-} > "$WORK/peer-$1.out" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 200); do grep -q READY "$WORK/peer-$1.out" && return 0; sleep 0.05; done
    die "peer $1 did not start: $(tail -3 "$WORK/peer-$1.out")"
}
start_peer cbor "$PORT" cbor
start_peer json $((PORT + 1)) json
start_peer tls $((PORT + 2)) cbor "$WORK/cert.pem"

# count FILE: instructions and malloc calls in a callgrind output file.
count() {
    python3 - "$1" << 'EOF'
import re, sys
names, total, mallocs, current = {}, 0, 0, None
for line in open(sys.argv[1], errors="replace"):
    if line.startswith("totals:") or line.startswith("summary:"):
        total = int(line.split()[1])
    m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
    if m:
        if m.group(2): names[m.group(1)] = m.group(2).strip()
        if line.startswith("cfn="): current = names.get(m.group(1))
        continue
    if line.startswith("calls=") and current == "malloc":
        mallocs += int(line.split("=")[1].split()[0])
print(total, mallocs)
EOF
}

# measure LABEL PORT FRAMING WORKLOAD SMALL LARGE UNITS-PER-COUNT UNIT [CERT]: one cost figure.
RESULTS="$WORK/results"
: > "$RESULTS"
measure() {
    local label=$1 port=$2 framing=$3 workload=$4 small=$5 large=$6 per=$7 unit=$8 cert=${9:-} n out
    local -a figures=()
    for n in "$small" "$large"; do
        out="$WORK/callgrind.$label.$n"
        timeout 1800 valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" measure "$port" "$framing" \
            "$workload" "$n" $cert > "$WORK/$label.$n.log" 2>&1 \
            || die "$label ($n) failed: $(grep -v '^==' "$WORK/$label.$n.log" | tail -3)"
        grep -q DONE "$WORK/$label.$n.log" || die "$label ($n) did not finish"
        figures+=($(count "$out"))
    done
    # Each run does the workload with count/10 (warm-up) and with count.
    python3 -c '
import sys
label, unit, small, large, per, i1, m1, i2, m2 = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:])
units = (large + large // 10 - small - small // 10) * per
print(f"{label:<28} {(i2 - i1) / units:>12.2f} instructions/{unit:<5} {(m2 - m1) / units:>9.4f} mallocs/{unit}")
' "$label" "$unit" "$small" "$large" "$per" "${figures[@]}" | tee -a "$RESULTS"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(valgrind --version); $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit: $(git -C "$HERE" describe --always --dirty 2>/dev/null || echo unknown)"
M=$((SCALE * 1000))
for workload in $ONLY; do
    case $workload in
    send | receive)
        for framing in cbor json; do
            p=$PORT; [ "$framing" = json ] && p=$((PORT + 1))
            measure "$workload $framing" "$p" "$framing" "$workload" $((10 * M)) $((60 * M)) 1 msg
        done ;;
    roundtrip)
        for framing in cbor json; do
            p=$PORT; [ "$framing" = json ] && p=$((PORT + 1))
            measure "roundtrip $framing" "$p" "$framing" roundtrip "$M" $((6 * M)) 1 rt
        done ;;
    nio-roundtrip)
        # The reference: the same byte counts on plain SwiftNIO channels (no node).
        measure "nio-roundtrip (reference)" "$PORT" cbor nio-roundtrip "$M" $((6 * M)) 1 rt ;;
    dataconn-send | dataconn-receive)
        # KiB counts: 16 and 96 MiB plain, 8 and 48 MiB TLS (per byte).
        measure "$workload plain" "$PORT" cbor "$workload" $((16 * M)) $((96 * M)) 1024 byte
        measure "$workload tls" $((PORT + 2)) cbor "$workload" $((8 * M)) $((48 * M)) 1024 byte "$WORK/cert.pem" ;;
    *) die "unknown workload $workload" ;;
    esac
done
echo "callgrind output files (for callgrind_annotate): $WORK"
trap - EXIT
cleanup
