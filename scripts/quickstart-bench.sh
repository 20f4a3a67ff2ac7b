#!/usr/bin/env bash
# Runs the real quickstart (scripts/quickstart.sh: bertd --local-agent, the
# examples/quickstart.yaml job, the fills) and prints what a newcomer gets:
# the held-out accuracy beside the most-frequent-token baseline, the time of
# each stage and of the whole job, and the CPU it ran on.
# By default it reuses the installed packages and the built programs
# (SKIP_SETUP=1 SKIP_BUILD=1); set them empty to time a first run from scratch.
# Usage: scripts/quickstart-bench.sh   (output also in data-local/quickstart-bench.log)
set -euo pipefail
cd "$(dirname "$0")/.."
export SKIP_SETUP=${SKIP_SETUP-1} SKIP_BUILD=${SKIP_BUILD-1}
LOG=data-local/quickstart-bench.log
mkdir -p data-local
START=$SECONDS
bash scripts/quickstart.sh 2>&1 | tee "$LOG"
WALL=$((SECONDS - START))

echo
echo "== quickstart benchmark"
grep -m1 '^model name' /proc/cpuinfo | sed 's/^model name[[:space:]]*: /cpu: /' || true
echo "cores: $(nproc); bf16 in hardware: $(grep -m1 -ow 'avx512_bf16\|amx_bf16' /proc/cpuinfo || echo no)"
grep -m1 -o 'precision auto → .*' "$LOG" || true
# Stage lines of the watch ("pretrain succeeded in 4m58s"), live panel or plain log.
grep -oE '(prepare|tokenizer|preprocess|pretrain|export) +succeeded( [^ ]+)* in [0-9hms]+' "$LOG" |
  sed -E 's/ +/ /g; s/^/stage: /' | sort -u || true
grep -E '^(held-out masked-token accuracy|job .* from submit)' "$LOG" || true
echo "wall: $((WALL / 60))m$((WALL % 60))s for scripts/quickstart.sh (SKIP_SETUP=${SKIP_SETUP:-} SKIP_BUILD=${SKIP_BUILD:-})"
