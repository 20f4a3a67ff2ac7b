#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
# Locking checked by the compiler: clang -Wthread-safety over server/, agent/, metrics/, ...
bash scripts/check-thread-safety.sh
(cd "${BUILD_DIR:-build}" && ctest --output-on-failure -j "${TEST_JOBS:-2}" --timeout 600)
# ASan + UBSan: a second build of the tree (build-asan/), well over 15 minutes cold on
# 2 cores, so only when asked: BERT_TEST_SANITIZERS=1 scripts/test.sh
if [[ ${BERT_TEST_SANITIZERS:-0} == 1 ]]; then
  bash scripts/test-sanitizers.sh
fi
