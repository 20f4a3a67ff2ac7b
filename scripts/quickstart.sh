#!/usr/bin/env bash
# The README's main command: installs, builds, fetches the Brown corpus, runs
# the quickstart job end to end on this machine (bertd --local-agent on
# loopback) with live progress, and prints the trained model's predictions
# for a sentence with a [MASK].
#
# Environment: BUILD_DIR (default build), QUICKSTART_DIR (default
# data-local/quickstart; wiped at start), SKIP_SETUP=1 and SKIP_BUILD=1 to
# reuse what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
RUN_DIR=${QUICKSTART_DIR:-data-local/quickstart}
SENTENCE=${QUICKSTART_SENTENCE:-"the [MASK] of the united states ."}

step() { printf '\n==> %s\n' "$*"; }

if [[ -z "${SKIP_SETUP:-}" ]]; then
  step "Installing packages (scripts/setup.sh)"
  bash scripts/setup.sh
fi
if [[ -z "${SKIP_BUILD:-}" ]]; then
  step "Building into $BUILD_DIR/ (scripts/build.sh)"
  BUILD_DIR="$BUILD_DIR" bash scripts/build.sh
fi
BIN="$BUILD_DIR/bin"
for b in bertd bert-agent bertctl bert-worker; do
  [[ -x "$BIN/$b" ]] || { echo "quickstart: $BIN/$b is missing; build first" >&2; exit 1; }
done

step "Fetching the Brown corpus (scripts/fetch-corpus.sh)"
bash scripts/fetch-corpus.sh

step "Starting bertd --local-agent on loopback (state in $RUN_DIR)"
rm -rf "$RUN_DIR" data-local/quickstart-model
mkdir -p "$RUN_DIR"
"$BIN/bertd" --listen 127.0.0.1:0 --port-file "$RUN_DIR/port" --data-dir "$RUN_DIR/bertd" \
  --local-agent --agent-path "$BIN/bert-agent" >"$RUN_DIR/bertd.log" 2>&1 &
BERTD_PID=$!
stop_bertd() {
  if kill -0 "$BERTD_PID" 2>/dev/null; then
    kill -TERM "$BERTD_PID" 2>/dev/null || true
    wait "$BERTD_PID" 2>/dev/null || true
  fi
}
trap stop_bertd EXIT
for _ in $(seq 1 200); do
  [[ -s "$RUN_DIR/port" ]] && break
  kill -0 "$BERTD_PID" 2>/dev/null || { echo "quickstart: bertd exited; see $RUN_DIR/bertd.log" >&2; tail -20 "$RUN_DIR/bertd.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$RUN_DIR/port" ]] || { echo "quickstart: bertd did not start; see $RUN_DIR/bertd.log" >&2; exit 1; }
export BERTCTL_SERVER="127.0.0.1:$(cat "$RUN_DIR/port")"
echo "bertd is serving on $BERTCTL_SERVER (log: $RUN_DIR/bertd.log)"

step "Submitting examples/quickstart.yaml"
"$BIN/bertctl" submit examples/quickstart.yaml --watch

MODEL=data-local/quickstart-model
[[ -f "$MODEL/config.json" ]] || { echo "quickstart: no exported model in $MODEL" >&2; exit 1; }
step "Top predictions of the trained model ($MODEL)"
"$BIN/bertctl" predict --model "$MODEL" "$SENTENCE"
