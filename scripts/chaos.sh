#!/usr/bin/env bash
# The long versions of the chaos tests (Tests/aempCLITests/ChaosTests.swift) on real processes:
#   - kill -9 of a receiver halfway through a storm of 10 M messages (sequence check, sender RSS);
#   - a network of 50 nodes with two seeds: convergence, every node reaching every other, RSS per
#     node, killing a fifth of them at once;
#   - a 30-minute soak of five nodes under steady traffic (3 senders × 2 sinks × 1000 messages/s),
#     RSS, open descriptors and sockets of every node sampled every 10 s (CSV below);
#   - 20 trials each of SIGSTOP and of a network partition (network namespaces, needs root), with
#     the detection time of each trial and a summary.
# CI runs the same tests in their short versions as part of scripts/test.sh. The test binaries are
# copied to .build/chaos/bin first, so that a build during the long run cannot replace them under it.
#
#   scripts/chaos.sh [extra swift test arguments]
#   env: AEMP_CHAOS_TRIALS (20), AEMP_CHAOS_STORM (10000000), AEMP_CHAOS_MESH (50),
#        AEMP_CHAOS_SOAK_SECONDS (1800), AEMP_CHAOS_LIVENESS (the nodes' liveness_timeout in the SIGSTOP
#        and partition trials, whole seconds; 2 unless set, 10 is a node's default)
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
bin="$(swift build --show-bin-path)"
rm -rf "$out/bin" && mkdir -p "$out/bin"
cp "$bin/aemp" "$bin/aemp-chaos-node" "$bin/swift-aempPackageTests.xctest" "$out/bin/"
# The whole run is bounded: soak + the other tests take well under this.
timeout --signal=KILL $((AEMP_CHAOS_SOAK_SECONDS + 3600)) \
    "$out/bin/swift-aempPackageTests.xctest" --testing-library swift-testing --filter ChaosTests "$@" 2>&1 |
    tee "$out/chaos.log" | grep --line-buffered -E '^(storm|mesh|soak node|SIGSTOP|partition)|Test run with|recorded an issue'
