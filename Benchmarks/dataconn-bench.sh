#!/usr/bin/env bash
# DataConn benchmark: bulk throughput between two node processes on loopback (plain and TLS),
# next to iperf3 single stream measured in the same run, and node-message RTT p50/p99 while the
# bulk transfer runs vs idle.
#
#   Benchmarks/dataconn-bench.sh [plain-MiB] [tls-MiB] [rounds]     (from the repository root)
#
# Defaults: 4096 MiB plain, 2048 MiB TLS, 2 rounds (each round: iperf3, plain, TLS).
set -euo pipefail
cd "$(dirname "$0")/.."
PLAIN_MIB=${1:-4096}
TLS_MIB=${2:-2048}
ROUNDS=${3:-2}

swift build -c release --package-path Benchmarks --product DataConnBenchmarks >/dev/null
BIN="$(swift build -c release --package-path Benchmarks --show-bin-path)/DataConnBenchmarks"

WORK=$(mktemp -d)
SERVE_PID=
cleanup() {
    if [ -n "$SERVE_PID" ]; then kill "$SERVE_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# One CA and one node certificate (both nodes present it), PEM key + certificate + CA like Perl's `cert`.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$WORK/ca.key" \
    -out "$WORK/ca.pem" -days 2 -subj /CN=dataconn-bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$WORK/node.key" \
    -out "$WORK/node.csr" -subj /CN=dataconn-bench-node 2>/dev/null
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' >"$WORK/node.ext"
openssl x509 -req -in "$WORK/node.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -set_serial 4711 -days 2 \
    -out "$WORK/node.pem" -extfile "$WORK/node.ext" 2>/dev/null
cat "$WORK/node.key" "$WORK/node.pem" "$WORK/ca.pem" >"$WORK/cert.pem"

PORT=$((20000 + $$ % 20000))

iperf() {
    iperf3 -s -1 -B 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
    local server=$!
    sleep 0.3
    timeout 30 iperf3 -c 127.0.0.1 -p "$PORT" -t 5 -J >"$WORK/iperf.json"
    wait "$server" || true
    python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["end"]["sum_received"]["bits_per_second"] / 8))' "$WORK/iperf.json"
}

# run <MiB> [cert]: one serve process, one drive process; prints the RESULT line.
run() {
    local mib=$1 cert=${2:-}
    timeout 300 "$BIN" serve "$PORT" $cert >"$WORK/serve.out" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 100); do grep -q READY "$WORK/serve.out" && break; sleep 0.1; done
    timeout 300 "$BIN" drive "$PORT" "$mib" $cert | grep '^RESULT'
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
    SERVE_PID=
}

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

echo "load before: $(uptime)"
for round in $(seq "$ROUNDS"); do
    IPERF=$(iperf)
    PLAIN=$(run "$PLAIN_MIB")
    TLS=$(run "$TLS_MIB" "$WORK/cert.pem")
    echo "round $round ($(uptime | sed 's/.*load/load/'))"
    echo "  iperf3 single stream: $(awk -v r="$IPERF" 'BEGIN { printf "%.0f MB/s", r / 1e6 }')"
    for line in "$PLAIN" "$TLS"; do
        tls=$(echo "$line" | field tls)
        rate=$(echo "$line" | field rate)
        name=$([ "$tls" = 1 ] && echo "DataConn TLS  " || echo "DataConn plain")
        awk -v name="$name" -v r="$rate" -v i="$IPERF" -v b="$(echo "$line" | field bytes)" \
            -v ip50="$(echo "$line" | field idle_p50_us)" -v ip99="$(echo "$line" | field idle_p99_us)" \
            -v bp50="$(echo "$line" | field bulk_p50_us)" -v bp99="$(echo "$line" | field bulk_p99_us)" \
            -v n="$(echo "$line" | field bulk_samples)" 'BEGIN {
                printf "  %s: %.0f MB/s (%.0f MiB) = %.0f%% of iperf3; RTT idle p50 %.0f us p99 %.0f us, under bulk p50 %.0f us p99 %.0f us (%d samples) = p99 %.2fx idle\n",
                    name, r / 1e6, b / 1048576, 100 * r / i, ip50, ip99, bp50, bp99, n, bp99 / ip99 }'
    done
done
echo "load after: $(uptime)"
