#!/usr/bin/env bash
# Builds the tests with AddressSanitizer and UndefinedBehaviorSanitizer into a
# second build directory (build-asan/, without libtorch: -DBERT_WITH_TORCH=OFF,
# so nothing loads libtorch and tests that need bert-worker skip) and runs them;
# any sanitizer report fails its test.
#
# Usage: scripts/test-sanitizers.sh [extra ctest args...]
# Environment:
#   ASAN_BUILD_DIR   the build directory (build-asan)
#   JOBS             build jobs (nproc)
#   TEST_JOBS        ctest -j (2)
#   SANITIZE_EXCLUDE ctest -E regex of tests not built or run here (default: the
#                    end-to-end and Prometheus tests, which need bert-worker and
#                    skip without it, and the clang check, which the main build runs)
#   BUILD_LOCK       a file to flock around each target's build (shared machines)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
JOBS=${JOBS:-$(nproc)}
EXCLUDE=${SANITIZE_EXCLUDE:-'^(e2e_test|dashboard_prometheus_test|thread_safety_check_test)$'}
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1

locked() {
  if [[ -n ${BUILD_LOCK:-} ]]; then flock "$BUILD_LOCK" "$@"; else "$@"; fi
}

locked cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBERT_SANITIZE=ON -DBERT_WITH_TORCH=OFF -DBERT_BUILD_BENCH=OFF >/dev/null

# The tests (each test's target has its name) and the programs they run.
mapfile -t tests < <(cd "$BUILD_DIR" && ctest -N -E "$EXCLUDE" 2>/dev/null |
  sed -n 's/^ *Test *#[0-9]*: *//p')
targets=(bertd bert-agent bertctl)
for t in "${tests[@]}"; do
  # Tests that are scripts (no target of their name) need nothing built.
  if cmake --build "$BUILD_DIR" --target help 2>/dev/null | grep -q "^$t:"; then targets+=("$t"); fi
done
# One target at a time, so that a shared lock is released between them;
# build_s counts the time spent building (not waiting for the lock).
build_s=0
took=$(mktemp)
trap 'rm -f "$took"' EXIT
for t in "${targets[@]}"; do
  echo "test-sanitizers: building $t"
  locked bash -c 's=$SECONDS; cmake --build "$1" -j "$2" --target "$3" && echo $((SECONDS - s)) >"$4"' \
    _ "$BUILD_DIR" "$JOBS" "$t" "$took"
  build_s=$((build_s + $(cat "$took")))
  echo "test-sanitizers: built $t in $(cat "$took") s"
done

# A report aborts the process (non-zero exit: the test fails), with a stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0}
test_start=$SECONDS
rc=0
(cd "$BUILD_DIR" && locked ctest --output-on-failure -j "${TEST_JOBS:-2}" --timeout 900 -E "$EXCLUDE" "$@") || rc=$?
echo "test-sanitizers: build ${build_s} s, tests $((SECONDS - test_start)) s, rc=$rc"
exit "$rc"
