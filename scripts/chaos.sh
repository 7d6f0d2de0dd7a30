#!/usr/bin/env bash
# The long versions of the chaos tests (Tests/aempCLITests/ChaosTests.swift) on real processes:
#   - kill -9 of a receiver halfway through a storm of 10 M messages (sequence check, sender RSS);
#   - a network of 50 nodes with two seeds: convergence, every node reaching every other, RSS per
#     node, killing a fifth of them at once;
#   - a 30-minute soak of five nodes under steady traffic (3 senders × 2 sinks × 1000 messages/s),
#     RSS, open descriptors and sockets of every node sampled every 10 s (CSV below);
#   - 20 trials each of SIGSTOP and of a network partition (network namespaces, needs root), with
#     the detection time of each trial and a summary.
# CI runs the same tests in their short versions as part of scripts/test.sh.
#
#   scripts/chaos.sh [extra swift test arguments]
#   env: AEMP_CHAOS_TRIALS (20), AEMP_CHAOS_STORM (10000000), AEMP_CHAOS_MESH (50),
#        AEMP_CHAOS_SOAK_SECONDS (1800)
# Output: .build/chaos/chaos.log (everything), .build/chaos/soak.csv (the soak samples).
set -euo pipefail
cd "$(dirname "$0")/.."
out=.build/chaos
mkdir -p "$out"
export AEMP_CHAOS_TRIALS="${AEMP_CHAOS_TRIALS:-20}"
export AEMP_CHAOS_STORM="${AEMP_CHAOS_STORM:-10000000}"
export AEMP_CHAOS_MESH="${AEMP_CHAOS_MESH:-50}"
export AEMP_CHAOS_SOAK_SECONDS="${AEMP_CHAOS_SOAK_SECONDS:-1800}"
export AEMP_CHAOS_SOAK_CSV="$PWD/$out/soak.csv"
echo "scripts/chaos.sh: trials=$AEMP_CHAOS_TRIALS storm=$AEMP_CHAOS_STORM mesh=$AEMP_CHAOS_MESH soak=${AEMP_CHAOS_SOAK_SECONDS}s"
swift build --build-tests >/dev/null
# The whole run is bounded: soak + the other tests take well under this.
timeout --signal=KILL $((AEMP_CHAOS_SOAK_SECONDS + 3600)) \
    swift test --skip-build --no-parallel --filter ChaosTests "$@" 2>&1 | tee "$out/chaos.log" |
    grep -E '^(storm|mesh|soak node|SIGSTOP|partition)|Test run with|recorded an issue'
