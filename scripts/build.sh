#!/usr/bin/env bash
# Configures and builds into build/ (binaries in build/bin/): everything, or
# only the targets named in BUILD_TARGETS (scripts/quickstart.sh builds the four
# programs: "bertd bert-agent bertctl bert-worker"). Both use the same build
# directory and flags, so a later full build reuses what a partial one built.
# Usage: [BUILD_TARGETS="a b"] scripts/build.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
read -r -a TARGETS <<<"${BUILD_TARGETS:-}"
# Let ccache hit across clones and build directories (paths hashed relative to here).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=1
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
if ((${#TARGETS[@]})); then
  cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}"
else
  cmake --build "$BUILD_DIR" -j "$JOBS"
fi
