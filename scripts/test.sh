#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# Locking checked by the compiler: clang -Wthread-safety over server/, agent/, metrics/, ...
bash scripts/check-thread-safety.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${TEST_JOBS:-2}" --timeout 600)
# libFuzzer over the loaders of untrusted input (fuzz/, docs/security.md): a clang
# build in build-fuzz/, every kept crash input once, then FUZZ_SECONDS (20) per
# target; about 3 minutes with a warm ccache. BERT_TEST_FUZZ=0 skips it.
if [[ ${BERT_TEST_FUZZ:-1} == 1 ]]; then
  bash scripts/fuzz.sh
fi
# ASan + UBSan: a second build of the tree (build-asan/), well over 15 minutes cold on
# 2 cores, so only when asked: BERT_TEST_SANITIZERS=1 scripts/test.sh
if [[ ${BERT_TEST_SANITIZERS:-0} == 1 ]]; then
  bash scripts/test-sanitizers.sh
fi
