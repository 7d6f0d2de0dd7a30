#!/usr/bin/env bash
# Node benchmarks of issue #5, each Swift figure next to its reference from the same round:
#   - one-way small-message throughput, Swift node pair vs. an Erlang distribution pair
#     (goal of #16: Swift/Erlang >= 3);
#   - ping-pong round-trip time, Swift node pair vs. raw blocking TCP ping-pong of the same byte
#     counts with TCP_NODELAY and vs. the Erlang pair (goals of #16: Swift p50 <= 1.15 x raw and
#     below Erlang's, p99 <= 1.5 x raw); also, for diagnosis, vs. the same ping-pong on plain
#     SwiftNIO channels (the floor for anything on SwiftNIO's epoll loop).
# Every pair is two processes on 127.0.0.1. The rounds interleave Erlang, raw TCP and Swift so that
# load from other processes hits them alike.
#
#   Benchmarks/node-bench.sh [rounds=3] [messages=200000] [round-trips=10000]
#   env: FRAMINGS="cbor json cbor+autocork" (Swift variants to run, each with its own raw TCP
#        reference of the same byte counts; "+autocork" sets Perl's autocork on both nodes;
#        default cbor), NODE_BENCH_NO_BUILD=1 (skip the
#        release build), NODE_BENCH_PORT=47300 (first TCP port used), NODE_BENCH_SWIFT=0 (references
#        only, e.g. while the Swift node cannot run),
#        PLACEMENT=split|same|free (default split on a machine with two or more CPUs): where the
#        two processes of every pair run. split pins the server to CPU 0 and the client to CPU 1
#        (as two hosts would be), same pins both to CPU 0, free lets the scheduler choose. Every
#        pair (Erlang, raw TCP, SwiftNIO, Swift) gets the same placement: unpinned, the kernel puts
#        two single-threaded blocking processes on one CPU (a wake-up is then a context switch) but
#        spreads multi-threaded ones, so the references and the nodes would be timed in different
#        placements (Benchmarks/RESULTS.md, "Round trips and where the scheduler puts the threads").
# Needs: swift, erl/erlc/epmd (Debian erlang-base). Every step runs under `timeout`; every process
# started here is stopped on exit.
set -uo pipefail

ROUNDS=${1:-3}
MESSAGES=${2:-200000}
ROUND_TRIPS=${3:-10000}
FRAMINGS=${FRAMINGS:-cbor}
PORT=${NODE_BENCH_PORT:-47300}
RUN_SWIFT=${NODE_BENCH_SWIFT:-1}
PLACEMENT=${PLACEMENT:-$([ "$(nproc)" -ge 2 ] && echo split || echo free)}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WORK=$(mktemp -d /tmp/node-bench.XXXXXX)
RESULTS="$WORK/results"
PIDS=()
: > "$RESULTS"

# cleanup on exit, wait_ready FILE PID.
# shellcheck source=node-bench-common.sh
source "$HERE/node-bench-common.sh"

die() { echo "node-bench: $*" >&2; exit 1; }

for tool in erl erlc epmd timeout; do
    command -v "$tool" > /dev/null || die "$tool not found (Debian: apt-get install erlang-base)"
done

# Build (release) and locate the binary.
if [ "${NODE_BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "building NodeBenchmarks (release)..." >&2
    timeout 3600 swift build -c release --package-path "$HERE" --product NodeBenchmarks >&2 \
        || die "release build failed"
fi
BIN="$(swift build -c release --package-path "$HERE" --show-bin-path)/NodeBenchmarks"
[ -x "$BIN" ] || die "$BIN missing"
timeout 300 erlc -o "$WORK" "$HERE/erlang/bench.erl" || die "erlc failed"

# A private epmd, so that nothing else on the machine is touched.
EPMD_PORT=$((PORT + 900))
export ERL_EPMD_PORT=$EPMD_PORT
timeout 7200 epmd -port "$EPMD_PORT" > "$WORK/epmd.log" 2>&1 &
PIDS+=($!)
COOKIE="nodebench$$"

next_port() { PORT=$((PORT + 1)); }

# The server and client command prefixes of the placement.
case $PLACEMENT in
split) ON_SERVER=(taskset -c 0); ON_CLIENT=(taskset -c 1) ;;
same) ON_SERVER=(taskset -c 0); ON_CLIENT=(taskset -c 0) ;;
free) ON_SERVER=(); ON_CLIENT=() ;;
*) die "PLACEMENT must be split, same or free" ;;
esac
if [ "$PLACEMENT" != free ]; then
    command -v taskset > /dev/null || die "taskset not found (Debian: util-linux)"
fi


# stop PID: terminates a server started in the background.
stop() {
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# record ROUND LABEL OUTPUT-FILE: keeps the RESULT/SIZES lines, tagged with the round.
record() {
    if grep -q '^RESULT' "$3"; then
        grep -E '^(RESULT|SIZES)' "$3" | sed "s/^/round=$1 /" >> "$RESULTS"
        grep -E '^(RESULT|SIZES)' "$3" | sed "s/^/  [$2] /" >&2
    else
        echo "round=$1 FAILED $2" >> "$RESULTS"
        echo "  [$2] FAILED:" >&2
        tail -5 "$3" | sed 's/^/    /' >&2
    fi
}

run_erlang() {
    local round=$1 out="$WORK/erlang-$1" pid
    timeout 600 "${ON_SERVER[@]}" erl -name bench_server@127.0.0.1 -setcookie "$COOKIE" -noshell -pa "$WORK" \
        -eval 'bench:serve(590)' > "$out.server" 2>&1 &
    pid=$!; PIDS+=($pid)
    if wait_ready "$out.server" "$pid"; then
        timeout 300 "${ON_CLIENT[@]}" erl -name bench_driver@127.0.0.1 -setcookie "$COOKIE" -noshell -pa "$WORK" \
            -eval "bench:drive('bench_server@127.0.0.1', $MESSAGES, $ROUND_TRIPS)" > "$out" 2>&1
    else
        cat "$out.server" > "$out"
    fi
    stop "$pid"
    record "$round" erlang "$out"
}

# run_pingpong ROUND FRAMING KIND: the raw TCP (KIND=rawtcp) or plain SwiftNIO (KIND=nio)
# ping-pong with the byte counts of the Swift node's ping and pong in that framing.
run_pingpong() {
    local round=$1 framing=$2 kind=$3 out="$WORK/$3-$1-$2" pid sizes ping pong
    sizes=$(timeout 60 "$BIN" sizes "$framing" "$ROUND_TRIPS")
    ping=$(sed -n 's/.*ping_bytes=\([0-9]*\).*/\1/p' <<< "$sizes")
    pong=$(sed -n 's/.*pong_bytes=\([0-9]*\).*/\1/p' <<< "$sizes")
    next_port
    timeout 600 "${ON_SERVER[@]}" "$BIN" "$kind-server" "$PORT" "$ping" "$pong" 590 > "$out.server" 2>&1 &
    pid=$!; PIDS+=($pid)
    if wait_ready "$out.server" "$pid"; then
        { echo "$sizes"; timeout 300 "${ON_CLIENT[@]}" "$BIN" "$kind-client" "$PORT" "$ping" "$pong" "$ROUND_TRIPS" 2>&1; } \
            | sed "s/impl=$kind framing=-/impl=$kind framing=$framing/" > "$out"
    else
        cat "$out.server" > "$out"
    fi
    stop "$pid"
    record "$round" "$kind $framing" "$out"
}

run_swift() {
    local round=$1 framing=$2 out="$WORK/swift-$1-$2" pid
    next_port
    timeout 600 "${ON_SERVER[@]}" "$BIN" serve "$PORT" "$framing" 590 > "$out.server" 2>&1 &
    pid=$!; PIDS+=($pid)
    if wait_ready "$out.server" "$pid"; then
        timeout 300 "${ON_CLIENT[@]}" "$BIN" drive "$PORT" "$framing" "$MESSAGES" "$ROUND_TRIPS" > "$out" 2>&1
    else
        cat "$out.server" > "$out"
    fi
    stop "$pid"
    record "$round" "swift $framing" "$out"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load before: $LOAD_BEFORE" >&2
echo "rounds=$ROUNDS messages=$MESSAGES round-trips=$ROUND_TRIPS framings=$FRAMINGS placement=$PLACEMENT" >&2
for round in $(seq "$ROUNDS"); do
    echo "round $round (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    run_erlang "$round"
    for framing in $FRAMINGS; do
        run_pingpong "$round" "$framing" rawtcp
        run_pingpong "$round" "$framing" nio
        [ "$RUN_SWIFT" = 1 ] && run_swift "$round" "$framing"
    done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Summary: each Swift figure with its reference from the same round, the ratios, and medians.
echo
echo "# node-bench: rounds=$ROUNDS messages=$MESSAGES round-trips=$ROUND_TRIPS placement=$PLACEMENT; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')); $(date -u '+%Y-%m-%d %H:%M UTC'); load before $LOAD_BEFORE, after $LOAD_AFTER"
awk -v framings="$FRAMINGS" '
function field(key,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return substr($i, length(key) + 2) }
    return ""
}
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$2 == "RESULT" {
    r = field("round"); impl = field("impl"); f = field("framing"); m = field("metric")
    if (m == "throughput") tput[impl, f, r] = field("msgs_per_s")
    if (m == "rtt") { p50[impl, f, r] = field("p50_us"); p99[impl, f, r] = field("p99_us") }
    if (r > rounds) rounds = r
}
$2 == "SIZES" { sizes[field("framing")] = $0 }
$2 == "FAILED" { failed = failed " " $0 }
END {
    nf = split(framings, fr, " ")
    for (k = 1; k <= nf; k++) {
        f = fr[k]
        printf "\n## framing %s\n", f
        printf "round  swift msg/s  erlang msg/s  ratio | swift p50/p99 us  rawtcp p50/p99 us  ratio p50/p99 | erlang p50/p99 us  swift/erlang(p50) | nio p50/p99 us  swift/nio(p50)\n"
        tr = ""; rr = ""; r9 = ""; er = ""; nr = ""; st = ""; et = ""; sp = ""; rp = ""; ep = ""; np = ""
        for (r = 1; r <= rounds; r++) {
            s = tput["swift", f, r]; e = tput["erlang", "dist", r]
            a = (s != "" && e != "") ? sprintf("%.2f", s / e) : "-"
            x = p50["swift", f, r]; y = p50["rawtcp", f, r]
            b = (x != "" && y != "") ? sprintf("%.2f", x / y) : "-"
            x9 = p99["swift", f, r]; y9 = p99["rawtcp", f, r]
            b9 = (x9 != "" && y9 != "") ? sprintf("%.2f", x9 / y9) : "-"
            w = p50["erlang", "dist", r]
            d = (x != "" && w != "") ? sprintf("%.2f", x / w) : "-"
            z = p50["nio", f, r]
            c = (x != "" && z != "") ? sprintf("%.2f", x / z) : "-"
            printf "%5d  %11s  %12s  %5s | %7s/%-8s  %8s/%-8s  %5s/%-7s | %8s/%-8s  %-17s | %6s/%-7s  %s\n", r, (s == "" ? "-" : s), (e == "" ? "-" : e), a,
                (x == "" ? "-" : x), x9, (y == "" ? "-" : y), y9, b, b9,
                (w == "" ? "-" : w), p99["erlang", "dist", r], d,
                (z == "" ? "-" : z), p99["nio", f, r], c
            if (c != "-") nr = nr " " c
            if (z != "") np = np " " z
            if (a != "-") tr = tr " " a
            if (b != "-") rr = rr " " b
            if (b9 != "-") r9 = r9 " " b9
            if (d != "-") er = er " " d
            if (s != "") st = st " " s; if (e != "") et = et " " e
            if (x != "") sp = sp " " x; if (y != "") rp = rp " " y; if (w != "") ep = ep " " w
        }
        printf "median: swift %s msg/s, erlang %s msg/s; p50: swift %s us, rawtcp %s us, erlang %s us, nio %s us\n", median(st), median(et), median(sp), median(rp), median(ep), median(np)
        printf "RATIO framing=%s throughput_swift_over_erlang=%s (goal >= 3) rtt_p50_swift_over_rawtcp=%s (goal <= 1.15) rtt_p99_swift_over_rawtcp=%s (goal <= 1.5) rtt_p50_swift_over_erlang=%s (goal < 1)\n", f,
            (tr == "" ? "-" : median(tr)), (rr == "" ? "-" : median(rr)), (r9 == "" ? "-" : median(r9)), (er == "" ? "-" : median(er))
        printf "DIAG framing=%s rtt_p50_swift_over_nio=%s (plain SwiftNIO ping-pong of the same bytes)\n", f, (nr == "" ? "-" : median(nr))
        if (f in sizes) print "bytes: " sizes[f]
    }
    if (failed != "") print "\nFAILED runs:" failed
}' "$RESULTS"
