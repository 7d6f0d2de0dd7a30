#!/usr/bin/env bash
# Flow control benchmark (issue #5): RSS of a producer node that outruns a slow consumer node,
# with fire-and-forget `send` (unpaced) and with `await send(to:)` (paced), in the same run.
#   Benchmarks/flow-bench.sh [messages=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
messages="${1:-100000}"
port="${FLOW_BENCH_PORT:-4141}"
if [ -z "${NODE_BENCH_NO_BUILD:-}" ]; then
    swift build -c release --package-path Benchmarks --product NodeBenchmarks >&2
fi
bin="$(swift build -c release --package-path Benchmarks --show-bin-path)/NodeBenchmarks"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null || true' EXIT
echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg) nproc: $(nproc)"
for mode in unpaced paced; do
    "$bin" flow-serve "$port" 600 > /tmp/flow-serve.$$ 2>&1 &
    server=$!
    for _ in $(seq 100); do grep -q READY /tmp/flow-serve.$$ && break; sleep 0.1; done
    timeout 600 "$bin" flow-drive "$port" "$mode" "$messages"
    kill "$server"; wait "$server" 2>/dev/null || true; server=""
    port=$((port + 1))
done
rm -f /tmp/flow-serve.$$
