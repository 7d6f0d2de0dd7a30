# Shared build-and-run logic of scripts/fuzz-*.sh. Sourced by them, not run on its own.
#
# A fuzz target is a libFuzzer entry point (Fuzz/<Name>/…swift) compiled with
# `swiftc -sanitize=fuzzer,address` together with the package sources it exercises, so those are
# instrumented (coverage feedback and AddressSanitizer). What they import from other packages
# (NIOCore, swift-crypto, …) is linked uninstrumented from the objects of the package's own release
# build, which fuzz_dependencies brings up to date first (in CI, scripts/test.sh has just made it; a
# debug NIOCore would make the fuzzers several times slower). No Package.swift is involved and
# nothing is fetched.
#
# In a script:
#   source "$(dirname "$0")/fuzz-common.sh"
#   fuzz_init <name> "$@"                  # arguments: [seconds | -runs=N] [libFuzzer flags…]
#   fuzz_dependencies <SwiftPM target>…    # builds them and uses their closure (FUZZ_CLOSURE_*)
#   fuzz_module <module> <source>…         # optional: an instrumented library module to `import`
#   fuzz_build <module> <source>…          # the fuzzer binary: entry point plus instrumented sources
#   fuzz_seed <file> <printf format>       # seeds go to $FUZZ_CORPUS (or write files there directly)
#   fuzz_run [libFuzzer flags]             # runs it and prints one summary line
#
# Output goes to fuzz-artifacts/ (git-ignored): <name>/corpus/ (seeds and what libFuzzer adds; kept
# between runs), <name>/crashes/, the binary <name>/<name>-fuzzer, <name>/build.log and
# <name>/run.log; modules-<configuration>/ holds the instrumented library modules (shared by the
# targets) and links to the dependencies' modules.
# Environment:
#   FUZZ_QUIET=1              libFuzzer's output only to run.log (CI); the summary line is printed
#                             either way, and on a failure the end of the log.
#   FUZZ_OPT=-Onone           optimisation of the instrumented code (default -O; assertions stay on).
#   FUZZ_DEPENDENCIES=debug   link the dependencies of the debug build instead of the release build.
# A crash makes the script fail; the input is in <name>/crashes/ and replays with
#   fuzz-artifacts/<name>/<name>-fuzzer fuzz-artifacts/<name>/crashes/crash-…

set -euo pipefail

# Dependency closures, as SwiftPM target names (the directories under .build/<configuration>). A
# target that a newer dependency version adds shows up as an undefined symbol or a missing module
# when linking.
FUZZ_CLOSURE_NIOCore=(NIOCore NIOConcurrencyHelpers _NIODataStructures _NIOBase64 Atomics _AtomicsShims
    CNIOAtomics CNIOLinux CNIODarwin CNIOWindows CNIOWASI CNIOOpenBSD CNIOFreeBSD
    DequeModule InternalCollectionsUtilities ContainersPreview)
FUZZ_CLOSURE_Crypto=(Crypto CryptoBoringWrapper CCryptoBoringSSL CCryptoBoringSSLShims CXKCP CXKCPShims)

# fuzz_init <name> [seconds | -runs=N] [libFuzzer flags…]
fuzz_init() {
    FUZZ_NAME="$1"
    shift
    cd "$(dirname "${BASH_SOURCE[0]}")/.."
    FUZZ_ROOT="$(pwd)"
    FUZZ_OUT="$FUZZ_ROOT/fuzz-artifacts/$FUZZ_NAME"
    FUZZ_CORPUS="$FUZZ_OUT/corpus"
    FUZZ_BINARY="$FUZZ_OUT/$FUZZ_NAME-fuzzer"
    FUZZ_DEPENDENCIES="${FUZZ_DEPENDENCIES:-release}"
    FUZZ_MODULES="$FUZZ_ROOT/fuzz-artifacts/modules-$FUZZ_DEPENDENCIES"
    FUZZ_LIMIT=(-max_total_time=60)
    case "${1:-}" in
        -runs=*) FUZZ_LIMIT=("$1"); shift ;;
        '' | -*) ;;
        *[!0-9]*) echo "fuzz-$FUZZ_NAME: usage: $0 [seconds | -runs=N] [libFuzzer flags…]" >&2; exit 2 ;;
        *) FUZZ_LIMIT=(-max_total_time="$1"); shift ;;
    esac
    FUZZ_FLAGS=("$@")
    FUZZ_OBJECTS=()
    FUZZ_CFLAGS=()
    FUZZ_INPUTS=()
    mkdir -p "$FUZZ_CORPUS" "$FUZZ_OUT/crashes" "$FUZZ_MODULES"
}

# fuzz_dependencies <SwiftPM target>… : builds each and collects its closure's objects, Swift modules
# (linked into $FUZZ_MODULES) and C module maps.
fuzz_dependencies() {
    local top target dir map closure candidate
    for top in "$@"; do
        if ! swift build -c "$FUZZ_DEPENDENCIES" --target "$top" >"$FUZZ_OUT/build.log" 2>&1; then
            cat "$FUZZ_OUT/build.log" >&2
            echo "fuzz-$FUZZ_NAME: swift build -c $FUZZ_DEPENDENCIES --target $top failed" >&2
            exit 1
        fi
    done
    FUZZ_BIN="$(swift build -c "$FUZZ_DEPENDENCIES" --show-bin-path)"
    for top in "$@"; do
        closure="FUZZ_CLOSURE_$top[@]"
        for target in "${!closure}"; do
            dir="$FUZZ_BIN/$target.build"
            [ -d "$dir" ] || continue
            while IFS= read -r o; do FUZZ_OBJECTS+=("$o"); done < <(find "$dir" -name '*.o' | sort)
            if [ -e "$FUZZ_BIN/Modules/$target.swiftmodule" ]; then
                ln -sfn "$FUZZ_BIN/Modules/$target.swiftmodule" "$FUZZ_MODULES/$target.swiftmodule"
                FUZZ_INPUTS+=("$FUZZ_BIN/Modules/$target.swiftmodule")
            fi
            map="$dir/module.modulemap"
            if ! [ -f "$map" ]; then
                # C targets with a module map of their own ship it in the checkout.
                map=""
                for candidate in "$FUZZ_ROOT"/.build/checkouts/*/Sources/"$target"/include/module.modulemap; do
                    [ -f "$candidate" ] && map="$candidate"
                done
            fi
            [ -z "$map" ] || FUZZ_CFLAGS+=(-Xcc "-fmodule-map-file=$map")
        done
    done
}

# The swiftc invocation shared by modules and binaries; the language settings of Package.swift, and
# a package name as SwiftPM gives one (the modules share `package` declarations).
_fuzz_swiftc() {
    swiftc -sanitize=fuzzer,address -parse-as-library "${FUZZ_OPT:--O}" -assert-config Debug -g \
        -swift-version 6 -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
        -package-name swift_aemp \
        -I "$FUZZ_MODULES" "${FUZZ_CFLAGS[@]}" "$@"
}

# _fuzz_stale <output> <source>… : whether <output> must be built: it is missing, or its stamp (a
# hash of the sources, the flags, the compiler and the dependencies' modules and objects) differs.
_fuzz_stale() {
    local output="$1"
    shift
    FUZZ_STAMP="$({ printf '%s\n' "$@" "${FUZZ_OPT:--O}" "$(swiftc --version 2>&1)"
        cat "$@"
        stat -L -c '%n %Y' "${FUZZ_INPUTS[@]}" "${FUZZ_OBJECTS[@]}" 2>/dev/null || true
    } | sha256sum | cut -d' ' -f1)"
    ! [ -e "$output" ] || [ "$(cat "$output.stamp" 2>/dev/null)" != "$FUZZ_STAMP" ]
}

# _fuzz_compile <output> <swiftc arguments>…
_fuzz_compile() {
    local output="$1"
    shift
    if ! _fuzz_swiftc "$@" >"$FUZZ_OUT/build.log" 2>&1; then
        cat "$FUZZ_OUT/build.log" >&2
        echo "fuzz-$FUZZ_NAME: compiling $output failed" >&2
        exit 1
    fi
    echo "$FUZZ_STAMP" >"$output.stamp"
}

# fuzz_module <module> <source>… : an instrumented library module in $FUZZ_MODULES, for an entry
# point that imports it as the package's own code would (`import AEMPCodecs`). Targets share it; a
# lock keeps two scripts from building it at the same time.
fuzz_module() {
    local module="$1"
    shift
    local object="$FUZZ_MODULES/$module.o"
    (
        if command -v flock >/dev/null; then flock 9; fi
        if _fuzz_stale "$object" "$@"; then
            _fuzz_compile "$object" -module-name "$module" -wmo -c -emit-module \
                -emit-module-path "$FUZZ_MODULES/$module.swiftmodule" "$@" -o "$object"
        fi
    ) 9>"$FUZZ_MODULES/$module.lock"
    FUZZ_OBJECTS+=("$object")
    FUZZ_INPUTS+=("$object")
}

# fuzz_build <module> <source>… : the fuzzer binary.
fuzz_build() {
    local module="$1"
    shift
    if _fuzz_stale "$FUZZ_BINARY" "$@"; then
        _fuzz_compile "$FUZZ_BINARY" -module-name "$module" "$@" "${FUZZ_OBJECTS[@]}" -o "$FUZZ_BINARY"
    fi
}

# fuzz_seed <file> <printf format> : one seed input.
fuzz_seed() {
    # shellcheck disable=SC2059  # the format is the point
    printf "$2" >"$FUZZ_CORPUS/$1"
}

# fuzz_run [libFuzzer flags] : runs the fuzzer on the corpus and prints
#   fuzz-<name>: <executions> executions in <s> s (<n>/s), corpus <files> inputs, <no crash | FAILED …>
fuzz_run() {
    local log="$FUZZ_OUT/run.log" status=0 start end
    # Swift's own crash handler reads the stack in a way AddressSanitizer reports as a second error.
    export SWIFT_BACKTRACE=enable=no
    # Recording 30-frame allocation stacks for every malloc halves the speed; 5 frames still name
    # the allocating function (and let LeakSanitizer suppressions match). For full stacks, replay a
    # crash with ASAN_OPTIONS=malloc_context_size=30.
    export ASAN_OPTIONS="malloc_context_size=5${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    local command=("$FUZZ_BINARY" "${FUZZ_LIMIT[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$FUZZ_OUT/crashes/" "$@" "${FUZZ_FLAGS[@]}" "$FUZZ_CORPUS")
    start=$(date +%s)
    if [ -n "${FUZZ_QUIET:-}" ]; then
        "${command[@]}" >"$log" 2>&1 || status=$?
    else
        set +e
        "${command[@]}" 2>&1 | tee "$log"
        status=${PIPESTATUS[0]}
        set -e
    fi
    end=$(date +%s)
    local runs rate corpus outcome="no crash"
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    corpus="$(find "$FUZZ_CORPUS" -type f | wc -l)"
    if [ "$status" -ne 0 ]; then
        [ -z "${FUZZ_QUIET:-}" ] || grep -m1 -A40 -E 'Precondition failed|Fatal error|ERROR:' "$log" >&2 || tail -n 40 "$log" >&2
        outcome="FAILED (exit $status): $(grep -m1 -E 'Precondition failed|Fatal error|ERROR:' "$log" || echo 'see the log')"
        outcome+="; input in $(grep -o "$FUZZ_OUT/crashes/[^ ]*" "$log" | tail -n 1), log in $log"
    fi
    echo "fuzz-$FUZZ_NAME: ${runs:-?} executions in $((end - start)) s (${rate:-?}/s), corpus $corpus inputs, $outcome"
    return "$status"
}
