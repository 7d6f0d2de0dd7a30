# Sourced by node-bench.sh and metrics-bench.sh, not run on its own.
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
