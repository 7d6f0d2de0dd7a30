#!/usr/bin/env bash
# Erlang reference figures for issue #12 item 4: how long an Erlang/OTP distribution node takes to
# see a silent peer go down, under the same faults as the Swift nodes' liveness check:
#   sigstop    node B's beam.smp is SIGSTOPped (its sockets stay open, its kernel still ACKs);
#   partition  node B runs in its own network namespace, joined to A's by a veth pair in
#              10.78.0.0/24; B's end of the veth is set down (A's end loses its carrier, nothing
#              is sent back: packets just vanish).
# Node A calls monitor_node(B, true), lets the idle connection settle (1 s + 2 tick intervals, then
# a random part of one more), applies the fault with os:cmd/1 and times from the fault to
# {nodedown, B} on its own monotonic clock (Benchmarks/erlang/faultwatch.erl). Every trial is a
# fresh node pair, and A boots a random part of one tick interval after B, so the phases of the
# two nodes' tickers differ from trial to trial.
# Erlang's rule (kernel(6) net_ticktime; dist_util:send_tick/2): every net_ticktime/4 each
# connection checks whether anything arrived since the last check (and sends a tick if it wrote
# nothing); the 4th empty check in a row takes the node down. With an idle, ticking peer that is
# 0.75-1.25 x net_ticktime after the fault (45-75 s by default).
# Results: Benchmarks/erlang/FAULTS.md.
#
#   Benchmarks/erlang/fault-detect.sh [trials=20] [ticktimes="60 10 2"] [faults="sigstop partition"]
#   env: PARALLEL=1    node pairs run at once for one combination (each pair has its own epmd,
#                      names and, for partition, its own two namespaces; pairs share nothing)
#        MAX_SECONDS=0 wall-time budget per combination: no trial starts after it (0: none)
#        FAULT_DETECT_EPMD_PORT=47900  first epmd port of the sigstop pairs (one per slot)
#
# Output: one "trial ..." line per trial (detect_s; cmd_ms, how long the fault command took;
# rx_gap_ms, how old the peer's last packet was at the fault), then a table per (fault,
# net_ticktime): trials, failed, median, min, max seconds, designed range, largest rx_gap_ms.
# Needs erl/erlc/epmd (Debian erlang-base); partition needs root and `ip`.
# Every step runs under `timeout`; every process and namespace made here is removed on exit.
set -uo pipefail

TRIALS=${1:-20}
TICKTIMES=${2:-60 10 2}
FAULTS=${3:-sigstop partition}
PARALLEL=${PARALLEL:-1}
MAX_SECONDS=${MAX_SECONDS:-0}
EPMD_BASE=${FAULT_DETECT_EPMD_PORT:-47900}
HERE=$(cd "$(dirname "$0")" && pwd)
RUN=$$
WORK=$(mktemp -d /tmp/fault-detect.XXXXXX)
RESULTS="$WORK/results"
COOKIE="faultdetect$RUN"
: > "$RESULTS"

die() { echo "fault-detect: $*" >&2; exit 1; }

for tool in erl erlc epmd timeout awk; do
    command -v "$tool" > /dev/null || die "$tool not found (Debian: apt-get install erlang-base)"
done
case " $FAULTS " in
    *" partition "*)
        [ "$(id -u)" = 0 ] || die "partition needs root (network namespaces)"
        command -v ip > /dev/null || die "ip not found (Debian: apt-get install iproute2)"
        ;;
esac
[ "$PARALLEL" -ge 1 ] && [ "$PARALLEL" -le 60 ] || die "PARALLEL must be 1..60"
for f in $FAULTS; do
    case $f in sigstop|partition) ;; *) die "unknown fault $f (sigstop, partition)";; esac
done
for t in $TICKTIMES; do
    [ "$t" -ge 1 ] 2>/dev/null || die "net_ticktime must be a positive integer: $t"
done

# Processes are recorded in $WORK/pids (one pid per line, appended by the workers too) and
# namespaces are named fd<RUN>a<slot>/fd<RUN>b<slot>, so that the EXIT trap finds everything.
cleanup() {
    local pid ns
    [ -n "${WORKERS:-}" ] && kill $WORKERS 2>/dev/null
    if [ -f "$WORK/pids" ]; then
        # TERM first: a `timeout` wrapper passes it on to its command (a SIGKILLed one would not)
        while read -r pid; do kill -TERM "$pid" 2>/dev/null; done < "$WORK/pids"
        sleep 1
        while read -r pid; do kill -KILL "$pid" 2>/dev/null; done < "$WORK/pids"
    fi
    if command -v ip > /dev/null; then
        for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^fd${RUN}[ab][0-9]*$"); do
            ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null; done
            timeout 10 ip netns del "$ns" 2>/dev/null
        done
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timeout 120 erlc -o "$WORK" "$HERE/faultwatch.erl" || die "erlc failed"

track() { echo "$1" >> "$WORK/pids"; }

# wait_ready FILE PID: until FILE has a READY line (20 s at most) or the process died.
wait_ready() {
    local i
    for i in $(seq 200); do
        grep -q '^READY' "$1" 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# wait_epmd PORT [NS]: until epmd answers (10 s at most).
wait_epmd() {
    local i
    for i in $(seq 100); do
        if [ -n "${2:-}" ]; then
            timeout 5 ip netns exec "$2" epmd -port "$1" -names > /dev/null 2>&1 && return 0
        else
            timeout 5 epmd -port "$1" -names > /dev/null 2>&1 && return 0
        fi
        sleep 0.1
    done
    return 1
}

# rand_seconds MAX_MS: a random delay in [0, MAX_MS) ms, as seconds for sleep.
rand_seconds() { awk -v r="$RANDOM$RANDOM" -v m="$1" 'BEGIN { srand(r); printf "%.3f", rand() * m / 1000 }'; }

# proc_state PID: the state letter of /proc/PID/stat (T = stopped), or "gone".
proc_state() { awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null || echo gone; }

# ns_up SLOT: two namespaces joined by a veth pair, 10.78.0.(4*SLOT+1) and +2 (/30), loopback up.
ns_up() {
    local s=$1 a="fd${RUN}a$1" b="fd${RUN}b$1" va="v${RUN}a$1" vb="v${RUN}b$1"
    timeout 10 ip netns add "$a" && timeout 10 ip netns add "$b" &&
    timeout 10 ip link add "$va" netns "$a" type veth peer name "$vb" netns "$b" &&
    timeout 10 ip -n "$a" addr add "10.78.0.$((4 * s + 1))/30" dev "$va" &&
    timeout 10 ip -n "$b" addr add "10.78.0.$((4 * s + 2))/30" dev "$vb" &&
    timeout 10 ip -n "$a" link set lo up && timeout 10 ip -n "$b" link set lo up &&
    timeout 10 ip -n "$a" link set "$va" up && timeout 10 ip -n "$b" link set "$vb" up
}

ns_down() {
    local ns pid
    for ns in "fd${RUN}a$1" "fd${RUN}b$1"; do
        ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null; done
        timeout 10 ip netns del "$ns" 2>/dev/null
    done
}

# trial FAULT TICKTIME SLOT N: one fresh node pair; appends one line to $RESULTS.
trial() {
    local fault=$1 tt=$2 s=$3 n=$4 dir="$WORK/t-$1-$2-$3-$4" port=4369 nsa="" nsb=""
    local addr_a=127.0.0.1 addr_b=127.0.0.1 life=$((4 * $2 + 60)) limit=$((4 * $2 + 90))
    local epmd_a epmd_b="" bpid bos cmd apid status="" detect="-" cmd_ms="-" gap="-" state_after
    mkdir -p "$dir"
    local -a in_a=() in_b=()
    if [ "$fault" = partition ]; then
        nsa="fd${RUN}a$s"; nsb="fd${RUN}b$s"
        addr_a="10.78.0.$((4 * s + 1))"; addr_b="10.78.0.$((4 * s + 2))"
        in_a=(ip netns exec "$nsa"); in_b=(ip netns exec "$nsb")
        if ! ns_up "$s" 2> "$dir/ns.err"; then
            ns_down "$s"
            echo "trial fault=$fault ticktime=$tt slot=$s n=$n status=FAILED(namespaces:$(head -c 200 "$dir/ns.err" | tr '\n ' '; '))" | tee -a "$RESULTS"
            return
        fi
    else
        port=$((EPMD_BASE + s))
    fi
    # epmd: one per namespace (partition), or a private port per slot (sigstop)
    timeout "$limit" "${in_a[@]}" env ERL_EPMD_PORT="$port" epmd -port "$port" > "$dir/epmd_a.log" 2>&1 &
    epmd_a=$!; track "$epmd_a"
    wait_epmd "$port" "$nsa" || status="FAILED(epmd)"
    if [ "$fault" = partition ]; then
        timeout "$limit" "${in_b[@]}" env ERL_EPMD_PORT="$port" epmd -port "$port" > "$dir/epmd_b.log" 2>&1 &
        epmd_b=$!; track "$epmd_b"
        wait_epmd "$port" "$nsb" || status="FAILED(epmd)"
    fi
    if [ -z "$status" ]; then
        timeout "$life" "${in_b[@]}" env ERL_EPMD_PORT="$port" erl -name "fb${s}_$n@$addr_b" \
            -setcookie "$COOKIE" -kernel net_ticktime "$tt" -start_epmd false -noshell -pa "$WORK" \
            -run faultwatch peer > "$dir/b.out" 2>&1 &
        bpid=$!; track "$bpid"
        if wait_ready "$dir/b.out" "$bpid"; then
            bos=$(sed -n 's/^READY os_pid=\([0-9]*\).*/\1/p' "$dir/b.out")
            track "$bos"
            if [ "$fault" = sigstop ]; then
                cmd="kill -STOP $bos"
            else
                cmd="ip -n $nsb link set v${RUN}b$s down"
            fi
            # A boots at a random phase of B's ticker
            sleep "$(rand_seconds $((tt * 1000 / 4)))"
            timeout "$limit" "${in_a[@]}" env ERL_EPMD_PORT="$port" erl -name "fa${s}_$n@$addr_a" \
                -setcookie "$COOKIE" -kernel net_ticktime "$tt" -start_epmd false -noshell -pa "$WORK" \
                -run faultwatch watch "fb${s}_$n@$addr_b" "$tt" "$cmd" > "$dir/a.out" 2>&1 &
            apid=$!; track "$apid"
            wait "$apid"
            state_after=$(proc_state "$bos")
            if grep -q '^RESULT' "$dir/a.out"; then
                detect=$(sed -n 's/^RESULT detect_s=\([0-9.]*\).*/\1/p' "$dir/a.out")
                cmd_ms=$(sed -n 's/.*cmd_ms=\([0-9.]*\).*/\1/p' "$dir/a.out")
                gap=$(sed -n 's/.*rx_gap_ms=\([0-9]*\).*/\1/p' "$dir/a.out")
                status=ok
                # the fault must still hold when nodedown arrived
                if [ "$fault" = sigstop ] && [ "$state_after" != T ]; then status="FAILED(b_state=$state_after)"; fi
                if [ "$fault" = partition ] && [ "$state_after" = gone ]; then status="FAILED(b_gone)"; fi
            else
                status="FAILED($(grep -m1 -o 'reason=.*' "$dir/a.out" | head -c 200 | tr ' ' '_'))"
                [ "$status" = "FAILED()" ] && status="FAILED(a:$(tail -c 200 "$dir/a.out" | tr '\n ' ';_'))"
            fi
            kill -KILL "$bos" 2>/dev/null
        else
            status="FAILED(b_not_ready:$(tail -c 200 "$dir/b.out" | tr '\n ' ';_'))"
        fi
        kill "$bpid" 2>/dev/null   # TERM: timeout passes it (and a CONT) on to B
        wait "$bpid" 2>/dev/null
    fi
    kill "$epmd_a" $epmd_b 2>/dev/null
    wait "$epmd_a" $epmd_b 2>/dev/null
    [ "$fault" = partition ] && ns_down "$s"
    echo "trial fault=$fault ticktime=$tt slot=$s n=$n detect_s=$detect cmd_ms=$cmd_ms rx_gap_ms=$gap status=$status" | tee -a "$RESULTS"
}

# worker FAULT TICKTIME SLOT START_EPOCH: trials SLOT, SLOT+PARALLEL, ... < TRIALS.
worker() {
    local fault=$1 tt=$2 s=$3 start=$4 n
    for ((n = s; n < TRIALS; n += PARALLEL)); do
        if [ "$MAX_SECONDS" -gt 0 ] && [ $(( $(date +%s) - start )) -ge "$MAX_SECONDS" ]; then
            break
        fi
        trial "$fault" "$tt" "$s" "$n"
    done
}

echo "# fault-detect: trials=$TRIALS ticktimes=\"$TICKTIMES\" faults=\"$FAULTS\" parallel=$PARALLEL max_seconds=$MAX_SECONDS"
OTP_FULL=$(timeout 60 erl -noshell -eval '{ok, V} = file:read_file(filename:join([code:root_dir(), "releases", erlang:system_info(otp_release), "OTP_VERSION"])), io:format("OTP ~s, erts ~s", [string:trim(V), erlang:system_info(version)]), halt().' 2>&1)
echo "# $OTP_FULL; $(nproc) CPUs; $(uname -r); $(date -u +%Y-%m-%dT%H:%M:%SZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
for tt in $TICKTIMES; do
    for fault in $FAULTS; do
        start=$(date +%s)
        WORKERS=""
        for ((s = 0; s < PARALLEL; s++)); do
            worker "$fault" "$tt" "$s" "$start" &
            WORKERS="$WORKERS $!"
        done
        wait $WORKERS
        WORKERS=""
        echo "# done fault=$fault ticktime=$tt in $(( $(date +%s) - start )) s; load $(cut -d' ' -f1-3 /proc/loadavg)"
    done
done

echo
echo "# Erlang/OTP detection of a silent peer (seconds from the fault to nodedown); designed range"
echo "# 0.75-1.25 x net_ticktime (net_tickintensity 4) while the peer's last packet before the fault"
echo "# is at most one tick interval (net_ticktime/4) old: max_rx_gap_ms shows it was"
awk '
function field(key,   i, kv) {
    for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) return substr($i, length(key) + 2) }
    return ""
}
$1 == "trial" {
    k = field("fault") " " field("ticktime")
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    if (field("status") == "ok") {
        n[k]++; v[k, n[k]] = field("detect_s") + 0
        if (field("rx_gap_ms") + 0 > gap[k]) gap[k] = field("rx_gap_ms") + 0
    } else failed[k]++
}
END {
    printf "%-10s %12s %7s %6s %9s %9s %9s %13s %14s\n", "fault", "net_ticktime", "trials", "failed", "median_s", "min_s", "max_s", "designed_s", "max_rx_gap_ms"
    for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, p, " "); c = n[k] + 0
        for (a = 2; a <= c; a++) { t = v[k, a]; for (b = a - 1; b >= 1 && v[k, b] > t; b--) v[k, b + 1] = v[k, b]; v[k, b + 1] = t }
        med = c == 0 ? "-" : sprintf("%.3f", (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2)
        printf "%-10s %12s %7d %6d %9s %9s %9s %13s %14s\n", p[1], p[2], c, failed[k] + 0, med,
            c ? sprintf("%.3f", v[k, 1]) : "-", c ? sprintf("%.3f", v[k, c]) : "-",
            sprintf("%.2f-%.2f", 0.75 * p[2], 1.25 * p[2]), c ? gap[k] : "-"
    }
}' "$RESULTS"
