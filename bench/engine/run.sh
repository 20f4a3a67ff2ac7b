#!/usr/bin/env bash
# Runs the engine benchmarks with one command; builds nothing.
#
#   bench/engine/run.sh [BUILD_DIR] [engine_bench options...]
#
# BUILD_DIR defaults to build (engine_bench is built by the default build with
# BERT_BUILD_BENCH=ON). Prints, side by side in one run, each configuration's
# training-step MFU against the measured matrix-product peak and its
# throughput against PyTorch eager (hf_eager_bench.py, Debian's python3-torch).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/../../build}"
[[ $# -gt 0 ]] && shift
bench="$build/bin/engine_bench"
if [[ ! -x "$bench" ]]; then
  echo "run.sh: $bench not found: build it first (ninja -C $build engine_bench)" >&2
  exit 1
fi
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "run.sh: /usr/bin/python3 cannot import torch (apt-get install python3-torch): eager ratios will be missing" >&2
fi
exec "$bench" --bench-dir "$here" "$@"
