#!/usr/bin/env bash
# Regenerates docs/dashboard.png, the README's screenshot of `aemp run dashboard`: a small network
# on loopback (a global node serving the dashboard, a second aemp node, a chaos sink and a storm
# sending it 300 messages a second, a node that is killed, and an intruder with a wrong secret whose
# handshakes are refused), photographed in headless Chromium by scripts/dashboard-browser.py.
#   scripts/dashboard-screenshot.sh [output.png]
# Needs what scripts/test.sh installs for the browser test: chromium, chromium-driver, selenium.
set -euo pipefail
cd "$(dirname "$0")/.."
output="${1:-docs/dashboard.png}"

swift build --product aemp >/dev/null
swift build --product aemp-chaos-node >/dev/null
bin="$(swift build --show-bin-path)"

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
export AEMP_RC="$work/rc.json" HOME="$work"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
seed="127.0.0.1:$(free_port)"
dashboard="127.0.0.1:$(free_port)"
secret="dashboard-screenshot"
common=(seeds "$seed" secret "$secret" liveness_timeout 3)

"$bin/aemp" run nodeid alpha binds "$seed" dashboard "$dashboard" "${common[@]}" >"$work/alpha.log" 2>&1 &
pids+=($!)
sleep 1
"$bin/aemp" run nodeid beta binds 127.0.0.1:0 "${common[@]}" >"$work/beta.log" 2>&1 &
pids+=($!)
"$bin/aemp" run nodeid gamma binds 127.0.0.1:0 "${common[@]}" >"$work/gamma.log" 2>&1 &
gamma=$!
pids+=($gamma)
"$bin/aemp-chaos-node" sink id=sink bind=127.0.0.1:0 "seeds=$seed" "secret=$secret" >"$work/sink.log" 2>&1 &
pids+=($!)
"$bin/aemp-chaos-node" storm id=storm count=100000000 rate=300 "seeds=$seed" "secret=$secret" >"$work/storm.log" 2>&1 &
pids+=($!)
"$bin/aemp" run nodeid intruder binds 127.0.0.1:0 seeds "$seed" secret wrong-secret >"$work/intruder.log" 2>&1 &
intruder=$!
pids+=($intruder)
sleep 3
kill -9 "$intruder" 2>/dev/null || true

# Once the page shows the five nodes up, gamma is killed; the page must mark it down in time.
mkfifo "$work/victim"
python3 scripts/dashboard-browser.py --url "http://$dashboard/" --nodes 5 --links 4 \
    --down-from-stdin --down-within 4 --screenshot "$output" --settle 2.5 --height 1320 --timeout 40 \
    <"$work/victim" >"$work/browser.log" &
browser=$!
exec 3>"$work/victim"
for _ in $(seq 1 450); do
    grep -q '^READY ' "$work/browser.log" 2>/dev/null && break
    kill -0 "$browser" 2>/dev/null || break
    sleep 0.1
done
kill -9 "$gamma"
echo gamma >&3
exec 3>&-
status=0
wait "$browser" || status=$?
cat "$work/browser.log"
if [ "$status" -ne 0 ]; then
    echo "scripts/dashboard-screenshot.sh: the browser check failed (status $status)" >&2
    exit "$status"
fi
echo "scripts/dashboard-screenshot.sh: wrote $output ($(wc -c <"$output") bytes)"
