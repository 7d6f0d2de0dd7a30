# Sourced by node-bench.sh and metrics-bench.sh (after they set WORK and PIDS), not run on its own.

# On exit: stop every process in PIDS and remove WORK.
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_ready FILE PID: until FILE has a READY line (15 s at most) or the process PID died.
wait_ready() {
    local i
    for i in $(seq 150); do
        grep -q '^READY' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
