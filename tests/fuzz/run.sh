#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# tests/fuzz/run.sh [SECONDS] [TARGET…] — builds the libFuzzer targets (clang, ASan+UBSan, in
# build-fuzz/) and runs each for SECONDS (default 30), starting from its checked-in seed corpus
# (tests/fuzz/corpus/TARGET/) plus what earlier runs found (build-fuzz/fuzz-corpus/TARGET/, kept
# between runs). TARGET is e.g. fuzz-pe or pe; default: all. Prints each target's executions and
# coverage (libFuzzer's final "DONE" line) and ends with "fuzz: N passed, N failed".
# A crash, leak, sanitizer report or hang fails the target; the input that did it is saved in
# build-fuzz/fuzz-artifacts/TARGET/ — fix the parser and copy it into the seed corpus.
# Longer runs: tests/fuzz/run.sh 600 plan
# Targets run FUZZ_JOBS at a time (default: the number of CPUs), each in one process on one core
# for the whole SECONDS, so running them side by side gives each target the same fuzzing as one
# after another, in less time; the lines are printed in the targets' order. --build-only builds
# the targets and runs none (scripts/test builds them while the VM tests run).
set -eu -o pipefail
cd "$(dirname "$0")/../.."

build_only=0
if [ "${1:-}" = --build-only ]; then
        build_only=1
        shift
fi
seconds=${1:-30}
shift || true
case $seconds in
        ''|*[!0-9]*) echo "Usage: $0 [--build-only] [SECONDS] [TARGET…]" >&2; exit 2 ;;
esac
jobs=${FUZZ_JOBS:-$(nproc)}
case $jobs in
        ''|*[!0-9]*|0) echo "FUZZ_JOBS wants a whole number of at least 1" >&2; exit 2 ;;
esac

all=$(sed -n "s/^ *'\(fuzz-[a-z0-9-]*\)',\$/\1/p" tests/fuzz/meson.build)
targets=()
if [ $# -eq 0 ]; then
        targets=($all)
else
        for t in "$@"; do
                t=fuzz-${t#fuzz-}
                grep -qx -- "$t" <<<"$all" || { echo "No fuzz target $t (there are: $(echo $all))" >&2; exit 2; }
                targets+=("$t")
        done
fi

build=build-fuzz
if [ ! -d "$build" ]; then
        CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C "$build" $(printf 'tests/fuzz/%s-libfuzzer ' "${targets[@]}") >"$build/fuzz-ninja.log" 2>&1 || {
        tail -n 30 "$build/fuzz-ninja.log" >&2
        echo "fuzz: the libFuzzer build failed" >&2
        exit 1
}
[ "$build_only" = 0 ] || exit 0

# UBSan reports are failures too; libFuzzer's own leak check stays on (-detect_leaks=1).
export UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}abort_on_error=1
results=$build/fuzz-results.txt
: >"$results"
rm -rf "$build/fuzz-out"
mkdir -p "$build/fuzz-out"

# fuzz_one TARGET: runs it; its report line goes to fuzz-out/TARGET.line, its result line (for
# fuzz-results.txt) to fuzz-out/TARGET.result.
fuzz_one() {
        local t=$1 corpus artifacts log rc done_line runs cov ft corp out=$build/fuzz-out/$1
        corpus=$build/fuzz-corpus/$t artifacts=$build/fuzz-artifacts/$t log=$build/fuzz-logs/$t.log
        mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
        set +e
        "$build/tests/fuzz/$t-libfuzzer" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
                -artifact_prefix="$artifacts/" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1
        rc=$?
        set -e
        done_line=$(grep -a 'DONE ' "$log" | tail -1 || true)     # none after a crash
        runs=$(sed -n 's/^#\([0-9]*\).*DONE.*/\1/p' <<<"$done_line")
        cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
        ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
        corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$done_line")
        if [ $rc -eq 0 ] && [ -n "$runs" ]; then
                printf '%-22s ok    %10s runs in %ss  cov: %-5s ft: %-6s corpus: %s\n' "$t" "$runs" "$seconds" "$cov" "$ft" "$corp" >"$out.line"
                echo "$t OK $runs $cov $ft" >"$out.result"
        else
                {
                        printf '%-22s FAIL  (exit %s) — log: %s, input: %s\n' "$t" "$rc" "$log" "$(ls -t "$artifacts" | head -1)"
                        grep -a -m 8 -E 'ERROR:|SUMMARY:|runtime error|Test unit written' "$log" | sed 's/^/    /' || true
                } >"$out.line"
                echo "$t FAIL" >"$out.result"
        fi
}

running=0
for t in "${targets[@]}"; do
        if [ "$running" -ge "$jobs" ]; then
                wait -n || true
                running=$((running - 1))
        fi
        fuzz_one "$t" &
        running=$((running + 1))
done
wait || true

passed=0 failed=0
for t in "${targets[@]}"; do
        out=$build/fuzz-out/$t
        if [ -s "$out.result" ]; then
                cat "$out.line"
                cat "$out.result" >>"$results"
        else
                echo "$t: no result (the runner itself failed)"
                echo "$t FAIL" >>"$results"
        fi
        if grep -q "^$t OK " "$out.result" 2>/dev/null; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
