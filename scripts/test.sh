#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, then runs the whole test suite
# (in CI, or with AEMP_RELEASE_BUILD=1, after checking that the release build compiles).
#   scripts/test.sh [extra swift test arguments]
# Debian packages: dnsmasq-base (the dnsmasq binary without its system service: a real DNS server for the SRV tests), iproute2 (network namespaces as test hosts), libcbor-xs-perl and
# libjson-xs-perl (Perl's own codecs, to check that what we encode decodes in Perl), openssl (the TLS tests
# make their certificates with it), curl (a real HTTP client scraping the Prometheus endpoint and the
# dashboard), chromium and chromium-driver (the dashboard's browser test, headless).
# PyPI packages: cbor2 (an independent CBOR implementation for cross-checks), selenium (drives the
# dashboard's browser test through chromium-driver; Selenium Manager is kept offline).
set -euo pipefail
cd "$(dirname "$0")/.."

need_debs=()
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || need_debs+=(dnsmasq-base)
perl -MCBOR::XS -e1 >/dev/null 2>&1 || need_debs+=(libcbor-xs-perl)
perl -MJSON::XS -e1 >/dev/null 2>&1 || need_debs+=(libjson-xs-perl)
command -v openssl >/dev/null 2>&1 || need_debs+=(openssl)
[ -x /usr/bin/curl ] || [ -x /bin/curl ] || need_debs+=(curl)
# iproute2: the multi-host tests make their hosts as network namespaces (ip netns, veth, a bridge).
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need_debs+=(iproute2)
# chromium, chromium-driver: DashboardBrowserTests opens the dashboard in headless Chromium (about
# 110 MB of packages; in CI a missing browser fails that test, locally it is skipped).
[ -x /usr/bin/chromium ] || need_debs+=(chromium)
[ -x /usr/bin/chromedriver ] || need_debs+=(chromium-driver)

install_failed=0
if [ ${#need_debs[@]} -gt 0 ]; then
    echo "scripts/test.sh: installing Debian packages: ${need_debs[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    if ! { "${sudo_cmd[@]}" apt-get update -qq && \
           DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_debs[@]}"; } >/dev/null; then
        echo "scripts/test.sh: could not install ${need_debs[*]}" >&2
        install_failed=1
    fi
fi

if ! python3 -c 'import cbor2' >/dev/null 2>&1; then
    echo "scripts/test.sh: installing PyPI package cbor2"
    python3 -m pip install --quiet --disable-pip-version-check cbor2 || install_failed=1
fi

if ! python3 -c 'import selenium' >/dev/null 2>&1; then
    echo "scripts/test.sh: installing PyPI package selenium"
    python3 -m pip install --quiet --disable-pip-version-check selenium || install_failed=1
fi

if [ "$install_failed" -ne 0 ] && [ "${CI:-}" = "true" ]; then
    echo "scripts/test.sh: test dependencies are missing; refusing to run a partial suite in CI" >&2
    exit 1
fi

if [ "${CI:-}" = "true" ] || [ -n "${AEMP_RELEASE_BUILD:-}" ]; then
    # Release (whole-module, optimized) builds have failed where debug builds passed; CI checks both.
    echo "scripts/test.sh: release build"
    swift build -c release
fi

if [ "${CI:-}" = "true" ] || [ -n "${AEMP_FUZZ_SECONDS:-}" ]; then
    # Every libFuzzer target (scripts/fuzz-*.sh) for a short time: 30 s each in CI, or
    # AEMP_FUZZ_SECONDS. They link the release build's dependency objects, made just above in CI.
    # One summary line per target; a crash or failed invariant fails the run before the tests, with
    # the end of its log here and the input in fuzz-artifacts/<target>/crashes/.
    fuzz_seconds="${AEMP_FUZZ_SECONDS:-30}"
    echo "scripts/test.sh: fuzzing, ${fuzz_seconds} s per target"
    fuzz_failed=()
    for fuzz_target in cbor json handshake readers; do
        FUZZ_QUIET=1 "scripts/fuzz-$fuzz_target.sh" "$fuzz_seconds" || fuzz_failed+=("$fuzz_target")
    done
    if [ ${#fuzz_failed[@]} -gt 0 ]; then
        echo "scripts/test.sh: fuzzing failed: ${fuzz_failed[*]}" >&2
        exit 1
    fi
fi

# Tests run one at a time: several suites block threads while they wait for sockets (bounded waits),
# and on a 2-core machine Swift concurrency's pool has only two threads; running such tests side by side
# starved the pool. The whole suite takes about half a minute either way. The time limit turns a hang
# into a failure instead of a stuck CI job.
#
# The repository must test itself: no test may read the hand-over folder that sits beside our own
# checkouts (and beside CI's clone). Where it exists and we may make a mount namespace (root, as in
# CI), the tests run with an empty read-only folder mounted over it, so a test that reaches outside the
# repository fails here exactly as it would in a fresh clone. AEMP_KEEP_SIBLINGS=1 skips this.
test_command=(timeout --signal=KILL 20m swift test --no-parallel "$@")
sibling="$(cd .. && pwd)/shared"
if [ -d "$sibling" ] && [ -z "${AEMP_KEEP_SIBLINGS:-}" ]; then
    if [ "$(id -u)" -eq 0 ] && unshare --mount --propagation private true >/dev/null 2>&1; then
        echo "scripts/test.sh: $sibling is hidden while the tests run (fixtures come from Tests/Fixtures)"
        exec unshare --mount --propagation private -- sh -c \
            'mount -t tmpfs -o ro,size=4k aemp-hidden "$1" && shift && exec "$@"' sh "$sibling" "${test_command[@]}"
    fi
    echo "scripts/test.sh: cannot hide $sibling (needs root and mount namespaces); tests run with it visible" >&2
fi
exec "${test_command[@]}"
