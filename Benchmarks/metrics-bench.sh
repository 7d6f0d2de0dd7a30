#!/usr/bin/env bash
# What the node's metrics cost (issue #14): the NodeBenchmarks workload (one-way throughput of small
# messages, then ping-pong round trips, two node processes on 127.0.0.1) in three variants per
# round, interleaved so that load from other processes hits them alike:
#   base      the node before metrics existed (a build of BASE_REF), the reference;
#   nometrics this tree, no metrics backend bootstrapped (goal: no measurable change from base);
#   metrics   this tree, both nodes reporting to swift-prometheus (goal: within 10% of nometrics).
# Besides the wall-clock figures it records CPU time (user + system, from the kernel's accounting):
# of the driving (sending) process for its whole run, and of the serving (receiving) process while
# the driver ran, each divided by the number of one-way messages (the round trips, few, are
# included). valgrind cannot run these binaries (3.19 crashes on them) and this machine's perf has
# no hardware counters, so CPU time is the cost measure here.
#
#   Benchmarks/metrics-bench.sh [rounds=5] [messages=2000000] [round-trips=2000]
#   env: BASE_REF=<git ref> (default: the commit before the metrics landed), BASE_BIN=<path> (a
#        NodeBenchmarks binary to use as the base instead of building BASE_REF),
#        METRICS_BENCH_NO_BUILD=1 (skip the release build of this tree), METRICS_BENCH_PORT=47600.
# Every step runs under `timeout`; every process started here is stopped on exit.
set -uo pipefail

ROUNDS=${1:-5}
MESSAGES=${2:-2000000}
ROUND_TRIPS=${3:-2000}
PORT=${METRICS_BENCH_PORT:-47600}
BASE_REF=${BASE_REF:-89d7c11}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WORK=$(mktemp -d /tmp/metrics-bench.XXXXXX)
PIDS=()

# cleanup on exit, wait_ready FILE PID.
# shellcheck source=node-bench-common.sh
source "$HERE/node-bench-common.sh"
die() { echo "metrics-bench: $*" >&2; exit 1; }

if [ "${METRICS_BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "building NodeBenchmarks (release)..." >&2
    timeout 3600 swift build -c release --package-path "$HERE" --product NodeBenchmarks >&2 || die "release build failed"
fi
BIN="$(swift build -c release --package-path "$HERE" --show-bin-path)/NodeBenchmarks"
[ -x "$BIN" ] || die "$BIN missing"

if [ -z "${BASE_BIN:-}" ]; then
    # The base: BASE_REF checked out next to this tree (kept in .build-metrics-base for later runs).
    BASE_TREE="$ROOT/.build-metrics-base/tree"
    if [ ! -d "$BASE_TREE" ]; then
        git -C "$ROOT" worktree add --detach "$BASE_TREE" "$BASE_REF" >&2 || die "cannot check out $BASE_REF"
    fi
    echo "building the base ($BASE_REF, release)..." >&2
    timeout 3600 swift build -c release --package-path "$BASE_TREE/Benchmarks" --product NodeBenchmarks >&2 \
        || die "base build failed"
    BASE_BIN="$(swift build -c release --package-path "$BASE_TREE/Benchmarks" --show-bin-path)/NodeBenchmarks"
fi
[ -x "$BASE_BIN" ] || die "$BASE_BIN missing"


# ticks PID: user + system clock ticks the process used so far.
ticks() {
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# run VARIANT BINARY FRAMING ROUND: one serve/drive pair; RESULT lines tagged with the variant,
# plus the driver's CPU seconds.
run() {
    local variant=$1 bin=$2 framing=$3 round=$4 out="$WORK/$1-$4" pid
    PORT=$((PORT + 1))
    timeout 600 "$bin" serve "$PORT" "$framing" 590 > "$out.server" 2>&1 &
    pid=$!; PIDS+=($pid)
    if wait_ready "$out.server" "$pid"; then
        local before after cpu server_cpu server
        server=$(pgrep -P "$pid" | head -1)
        before=$(ticks "$server")
        timeout 300 /usr/bin/time -f 'CPU %U %S' "$bin" drive "$PORT" "$framing" "$MESSAGES" "$ROUND_TRIPS" > "$out" 2> "$out.time"
        after=$(ticks "$server")
        cpu=$(awk '/^CPU/ { print $2 + $3 }' "$out.time")
        server_cpu=$(awk -v a="$before" -v b="$after" -v hz="$(getconf CLK_TCK)" 'BEGIN { print (b - a) / hz }')
        grep '^RESULT' "$out" | sed "s/^/variant=$variant round=$round cpu_s=$cpu server_cpu_s=$server_cpu /" >> "$WORK/results"
        grep '^RESULT' "$out" | sed "s/^/  [$variant] /" >&2
    else
        echo "  [$variant] FAILED" >&2
        tail -5 "$out.server" >&2
    fi
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(date -u +%F)" >&2
echo "rounds=$ROUNDS messages=$MESSAGES round-trips=$ROUND_TRIPS base=$BASE_REF" >&2
: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
    echo "round $round (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    run base "$BASE_BIN" cbor "$round"
    run nometrics "$BIN" cbor "$round"
    run metrics "$BIN" cbor+metrics "$round"
done

echo
echo "# metrics-bench: rounds=$ROUNDS messages=$MESSAGES round-trips=$ROUND_TRIPS base=$BASE_REF; $(nproc) CPUs"
awk '
function field(key,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return substr($i, length(key) + 2) }
    return ""
}
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return 0
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    v = field("variant"); r = field("round"); m = field("metric")
    if (m == "throughput") {
        t[v] = t[v] " " field("msgs_per_s"); n = field("n")
        cpu[v] = cpu[v] " " sprintf("%.0f", field("cpu_s") * 1e9 / n)
        scpu[v] = scpu[v] " " sprintf("%.0f", field("server_cpu_s") * 1e9 / n)
    }
    if (m == "rtt") p50[v] = p50[v] " " field("p50_us")
}
END {
    printf "variant     msg/s (median)  rtt p50 us  sender CPU ns/msg  receiver CPU ns/msg   per round: msg/s | sender ns | receiver ns\n"
    split("base nometrics metrics", vs, " ")
    for (k = 1; k <= 3; k++) {
        v = vs[k]
        printf "%-10s  %14.0f  %10.1f  %17.0f  %19.0f   %s |%s |%s\n", v, median(t[v]), median(p50[v]), median(cpu[v]), median(scpu[v]), t[v], cpu[v], scpu[v]
    }
    if (median(t["base"]) > 0 && median(t["nometrics"]) > 0)
        printf "\nnometrics/base: throughput %.3f, sender CPU %.3f, receiver CPU %.3f\nmetrics/nometrics: throughput %.3f, sender CPU %.3f, receiver CPU %.3f, rtt p50 %.3f\n",
            median(t["nometrics"]) / median(t["base"]), median(cpu["nometrics"]) / median(cpu["base"]), median(scpu["nometrics"]) / median(scpu["base"]),
            median(t["metrics"]) / median(t["nometrics"]), median(cpu["metrics"]) / median(cpu["nometrics"]), median(scpu["metrics"]) / median(scpu["nometrics"]),
            median(p50["metrics"]) / median(p50["nometrics"])
}' "$WORK/results"
