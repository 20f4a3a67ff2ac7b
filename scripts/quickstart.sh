#!/usr/bin/env bash
# The README's main command: installs, builds the four programs, fetches the
# Brown corpus, runs the quickstart job end to end on this machine (bertd
# --local-agent on loopback) with live progress, and prints the held-out
# accuracy it reached and the trained model's fills for sentences with a
# [MASK]. Each step line shows the time since the start.
#
# It builds only bertd, bert-agent, bertctl and bert-worker (scripts/test.sh
# builds the tests and benchmarks, in the same build directory, reusing what
# this built); ccache, when installed, serves any earlier build of the tree.
#
# Environment: BUILD_DIR (default build), QUICKSTART_DIR (default
# data-local/quickstart; wiped at start), QUICKSTART_SPEC (default
# examples/quickstart.yaml), SKIP_SETUP=1 and SKIP_BUILD=1 to reuse what is
# there, QUICKSTART_SENTENCES (sentences separated by '|').
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
RUN_DIR=${QUICKSTART_DIR:-data-local/quickstart}
SPEC=${QUICKSTART_SPEC:-examples/quickstart.yaml}
MODEL=data-local/quickstart-model
SENTENCES=${QUICKSTART_SENTENCES:-"the [MASK] of the united states .|he was born in [MASK] york .|she opened the [MASK] and walked in ."}
PROGRAMS=(bertd bert-agent bertctl bert-worker)

START=$SECONDS
elapsed() { local s=$((SECONDS - START)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
step() { printf '\n==> [%s] %s\n' "$(elapsed)" "$*"; }

if [[ -z "${SKIP_SETUP:-}" ]]; then
  step "Installing packages (scripts/setup.sh)"
  bash scripts/setup.sh
fi
if [[ -z "${SKIP_BUILD:-}" ]]; then
  step "Building ${PROGRAMS[*]} into $BUILD_DIR/bin (scripts/build.sh; tests and benchmarks come with scripts/test.sh)"
  BUILD_DIR="$BUILD_DIR" BUILD_TARGETS="${PROGRAMS[*]}" bash scripts/build.sh
fi
BIN="$BUILD_DIR/bin"
for b in "${PROGRAMS[@]}"; do
  [[ -x "$BIN/$b" ]] || { echo "quickstart: $BIN/$b is missing; build first" >&2; exit 1; }
done

step "Fetching the Brown corpus (scripts/fetch-corpus.sh)"
bash scripts/fetch-corpus.sh

step "Starting bertd --local-agent on loopback (state in $RUN_DIR)"
rm -rf "$RUN_DIR" "$MODEL"
mkdir -p "$RUN_DIR"
"$BIN/bertd" --listen 127.0.0.1:0 --port-file "$RUN_DIR/port" --data-dir "$RUN_DIR/bertd" \
  --local-agent --agent-path "$BIN/bert-agent" --local-agent-data-root data-local/brown \
  >"$RUN_DIR/bertd.log" 2>&1 &
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

# The spec's output.dir (data-local/quickstart-model) is a directory on this,
# the submitting, machine: submit --watch pulls the model there (bertctl pull)
# once the job succeeds.
step "Submitting $SPEC (bertctl submit --watch, which pulls the model to $MODEL)"
JOB_START=$SECONDS
SUBMIT_LOG="$RUN_DIR/submit.log"
# On a terminal the watch draws its live panel; else it writes a compact log.
if [[ -t 1 ]]; then
  "$BIN/bertctl" submit "$SPEC" --watch | tee "$SUBMIT_LOG"
else
  "$BIN/bertctl" submit "$SPEC" --watch 2>&1 | tee "$SUBMIT_LOG"
fi
JOB_SECONDS=$((SECONDS - JOB_START))
JOB=$(sed -n 's/^submitted job \([^ ]*\) .*/\1/p' "$SUBMIT_LOG" | head -1)

[[ -f "$MODEL/config.json" ]] || { echo "quickstart: no exported model in $MODEL" >&2; exit 1; }

# The held-out accuracy the job reached, beside the share of the most frequent
# token among the held-out tokens (what always guessing it would score).
ACCURACY=""
if [[ -n "$JOB" ]]; then
  ACCURACY=$("$BIN/bertctl" -o json get "$JOB" | python3 -c '
import json, sys
m = json.load(sys.stdin).get("latest_metrics", {})
print("%.1f%%" % (100 * m["eval/accuracy"]) if "eval/accuracy" in m else "")' 2>/dev/null || true)
fi
DATASET=$(ls -d "$RUN_DIR"/bertd/artifacts/*/preprocess/shard-0/dataset 2>/dev/null | head -1 || true)
BASELINE=""
if [[ -n "$DATASET" && -f "$DATASET/validation-00000.bin" ]]; then
  BASELINE=$(python3 - "$DATASET" <<'PY' 2>/dev/null || true
import array, collections, json, sys
d = sys.argv[1]
manifest = json.load(open(d + "/manifest.json"))
special = set(manifest["special_token_ids"].values())
ids = array.array("H")
for shard in manifest["splits"]["validation"]["shards"]:
    ids.frombytes(open(d + "/" + shard["file"], "rb").read())
counts = collections.Counter(i for i in ids if i not in special)
print("%.1f%%" % (100 * max(counts.values()) / sum(counts.values())))
PY
)
fi

step "Top predictions of the trained model ($MODEL)"
IFS='|' read -r -a SENTENCE_LIST <<<"$SENTENCES"
for sentence in "${SENTENCE_LIST[@]}"; do
  echo "$sentence"
  "$BIN/bertctl" predict --model "$MODEL" "$sentence" | sed 's/^/    /'
done

step "Done"
echo "job ${JOB:-?}: $((JOB_SECONDS / 60))m$((JOB_SECONDS % 60))s from submit to exported model"
[[ -n "$ACCURACY" ]] && echo "held-out masked-token accuracy: $ACCURACY${BASELINE:+ (always guessing the most frequent token: $BASELINE)}"
echo "total: $(elapsed) (m:ss) since scripts/quickstart.sh started"
