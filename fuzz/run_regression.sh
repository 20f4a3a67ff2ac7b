#!/usr/bin/env bash
# Runs every input kept in a fuzz corpus directory through its harness once
# (libFuzzer runs the files given as arguments and exits non-zero on a crash).
# Usage: run_regression.sh FUZZER CORPUS_DIR
set -euo pipefail
fuzzer=$1
corpus=$2
shopt -s nullglob
files=("$corpus"/*)
if ((${#files[@]} == 0)); then
  echo "no regression inputs in $corpus"
  exit 0
fi
exec "$fuzzer" -rss_limit_mb=2048 -timeout=25 "${files[@]}"
