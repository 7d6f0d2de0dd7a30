#!/usr/bin/env bash
# DataConn benchmark (issue #16): bulk throughput between two node processes on loopback, plain and
# TLS, each round next to an iperf3 single stream of the same byte count measured just before it;
# node-message RTT p50/p99 while the bulk transfer runs vs idle; and the CPU time both ends spent
# per byte, for DataConn and for iperf3, also as cycles per byte at the CPU's clock.
#
#   Benchmarks/dataconn-bench.sh [plain-MiB=4096] [tls-MiB=2048] [rounds=5]     (from anywhere)
#
# Goals of #16 (printed at the end): plain >= 90% of iperf3 in >= 4 of 5 rounds; TLS >= 1 GB/s or
# >= 35% of `openssl speed -evp aes-128-gcm` on one core (16 KiB blocks, measured here first); RTT
# p99 under bulk <= 2 x idle in >= 4 of 5 rounds, plain and TLS.
#
# Cycles per byte are CPU time (user + system, both processes, from getrusage and iperf3's own
# figures) times the clock from /proc/cpuinfo: an estimate, for machines without hardware counters.
# The TLS cipher: both ends are BoringSSL (swift-nio-ssl) speaking TLS 1.3, whose suite order is
# fixed by BoringSSL: AES-128-GCM first on CPUs with AES instructions, the cipher openssl speed
# measures here.
# env: PLACEMENT=free|split (default free): free lets the scheduler place the processes' threads;
# split pins the receiving process (iperf3 server, serve node) to CPU 0 and the sending one to CPU 1,
# for iperf3 and DataConn alike. Unlike node-bench.sh, the default is free: a node's data loop and its
# message loop are two threads, and pinning a node to one CPU makes them share it (measured on a
# 2-vCPU VM: split gave 58-109% of iperf3 and RTT p99 spikes of 12 ms, Benchmarks/RESULTS.md).
# DATACONN_BENCH_DATA_PRIORITY (see DataConnBenchmarks/main.swift) picks the data threads' priority.
# Needs: iperf3, openssl, python3 (Debian: apt-get install iperf3 openssl python3).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE/.."
PLAIN_MIB=${1:-4096}
TLS_MIB=${2:-2048}
ROUNDS=${3:-5}
for tool in iperf3 openssl python3; do
    command -v "$tool" > /dev/null || { echo "dataconn-bench: $tool not found (Debian: apt-get install $tool)" >&2; exit 1; }
done

swift build -c release --package-path Benchmarks --product DataConnBenchmarks >/dev/null
BIN="$(swift build -c release --package-path Benchmarks --show-bin-path)/DataConnBenchmarks"

WORK=$(mktemp -d)
SERVE_PID=
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# One CA and one node certificate (both nodes present it) in $WORK/cert.pem.
# shellcheck source=bench-certificate.sh
source "$HERE/bench-certificate.sh"
make_node_certificate "$WORK" dataconn-bench

PORT=$((20000 + $$ % 20000))
PLACEMENT=${PLACEMENT:-free}
case $PLACEMENT in
split) ON_RECEIVER=(taskset -c 0); ON_SENDER=(taskset -c 1) ;;
free) ON_RECEIVER=(); ON_SENDER=() ;;
*) echo "dataconn-bench: PLACEMENT must be split or free" >&2; exit 1 ;;
esac
MHZ=$(awk -F: '/^cpu MHz/ { print $2 + 0; exit }' /proc/cpuinfo)

# iperf <MiB>: one single-stream iperf3 transfer of that many MiB; prints "rate cpu_us".
iperf() {
    "${ON_RECEIVER[@]}" iperf3 -s -1 -B 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
    local server=$!
    sleep 0.3
    timeout 60 "${ON_SENDER[@]}" iperf3 -c 127.0.0.1 -p "$PORT" -n "${1}M" -J >"$WORK/iperf.json"
    wait "$server" || true
    python3 -c '
import json, sys
end = json.load(open(sys.argv[1]))["end"]
received, cpu = end["sum_received"], end["cpu_utilization_percent"]
print("%.0f %.0f" % (received["bits_per_second"] / 8, (cpu["host_total"] + cpu["remote_total"]) / 100 * received["seconds"] * 1e6))
' "$WORK/iperf.json"
}

# run <MiB> [cert]: one serve process, one drive process; prints the RESULT line with the receiver's
# CPU time appended (sink_cpu_us=).
run() {
    local mib=$1 cert=${2:-} result
    timeout 300 "${ON_RECEIVER[@]}" "$BIN" serve "$PORT" $cert >"$WORK/serve.out" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 100); do grep -q READY "$WORK/serve.out" && break; sleep 0.1; done
    result=$(timeout 300 "${ON_SENDER[@]}" "$BIN" drive "$PORT" "$mib" $cert | grep '^RESULT')
    sleep 0.2
    echo "$result sink_cpu_us=$(sed -n 's/^SINKCPU cpu_us=\([0-9]*\).*/\1/p' "$WORK/serve.out")"
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

SPEED=$(openssl speed -evp aes-128-gcm -seconds 2 2>/dev/null | awk '/^AES-128-GCM/ { v = $NF; sub(/k$/, "", v); print v * 1000 }')
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), ${MHZ} MHz; $(date -u '+%Y-%m-%d %H:%M UTC'); placement $PLACEMENT"
echo "openssl speed -evp aes-128-gcm, 16 KiB blocks, one core: $(awk -v s="$SPEED" 'BEGIN { printf "%.0f MB/s (35%%: %.0f MB/s)", s / 1e6, 0.35 * s / 1e6 }')"
echo "load before: $(uptime | sed 's/.*load/load/')"
SUMMARY="$WORK/summary"
: > "$SUMMARY"
for round in $(seq "$ROUNDS"); do
    read -r IPERF IPERF_CPU <<< "$(iperf "$PLAIN_MIB")"
    PLAIN=$(run "$PLAIN_MIB")
    read -r IPERF_TLS IPERF_TLS_CPU <<< "$(iperf "$TLS_MIB")"
    TLS=$(run "$TLS_MIB" "$WORK/cert.pem")
    echo "round $round ($(uptime | sed 's/.*load/load/'))"
    awk -v r="$IPERF" -v c="$IPERF_CPU" -v b="$((PLAIN_MIB << 20))" -v mhz="$MHZ" 'BEGIN {
        printf "  iperf3 single stream: %.0f MB/s, CPU %.2f ns/byte = %.2f cycles/byte\n", r / 1e6, c * 1000 / b, c * mhz / b }'
    for kind in plain tls; do
        if [ "$kind" = plain ]; then line=$PLAIN; ref=$IPERF; else line=$TLS; ref=$IPERF_TLS; fi
        awk -v kind="$kind" -v r="$(echo "$line" | field rate)" -v i="$ref" -v b="$(echo "$line" | field bytes)" \
            -v ip50="$(echo "$line" | field idle_p50_us)" -v ip99="$(echo "$line" | field idle_p99_us)" \
            -v bp50="$(echo "$line" | field bulk_p50_us)" -v bp99="$(echo "$line" | field bulk_p99_us)" \
            -v n="$(echo "$line" | field bulk_samples)" -v c1="$(echo "$line" | field cpu_us)" \
            -v c2="$(echo "$line" | field sink_cpu_us)" -v mhz="$MHZ" -v speed="$SPEED" -v round="$round" 'BEGIN {
                cpu = c1 + c2
                printf "  DataConn %-5s: %.0f MB/s (%.0f MiB) = %.0f%% of iperf3 (%.0f MB/s)%s; CPU %.2f ns/byte = %.2f cycles/byte; RTT idle p50 %.0f us p99 %.0f us, under bulk p50 %.0f us p99 %.0f us (%d samples) = p99 %.2fx idle\n",
                    kind, r / 1e6, b / 1048576, 100 * r / i, i / 1e6, (kind == "tls" ? sprintf(", %.0f%% of openssl speed", 100 * r / speed) : ""),
                    cpu * 1000 / b, cpu * mhz / b, ip50, ip99, bp50, bp99, n, bp99 / ip99
                printf "%s %d %.4f %.4f %.4f %.4f\n", kind, round, r / i, r / speed, bp99 / ip99, r >> "/dev/stderr" }' 2>> "$SUMMARY"
    done
done
echo "load after: $(uptime | sed 's/.*load/load/')"
awk -v rounds="$ROUNDS" '
    $1 == "plain" { n++; if ($3 >= 0.9) tp++; if ($5 <= 2) lp++ }
    $1 == "tls" { m++; if ($6 >= 1e9 || $4 >= 0.35) tt++; if ($5 <= 2) lt++ }
    END {
        printf "GOALS plain >= 90%% of iperf3: %d of %d rounds (goal >= 4 of 5); TLS >= 1 GB/s or >= 35%% of openssl speed: %d of %d;", tp, n, tt, m
        printf " RTT p99 under bulk <= 2x idle: plain %d of %d, TLS %d of %d\n", lp, n, lt, m
    }' "$SUMMARY"
