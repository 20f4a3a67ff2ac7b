#!/usr/bin/env bash
# Fuzzes the loaders of untrusted input (docs/security.md) with libFuzzer:
# builds the harnesses of fuzz/ with clang (ASan + UBSan + coverage) in
# build-fuzz/, runs every kept regression input of fuzz/corpus/<target>/ once,
# then fuzzes each target for FUZZ_SECONDS (default 20), seeded from the
# repository's own fixtures (tests/*/testdata, examples/*.yaml, fuzz/seeds/).
# A crash is kept as fuzz/corpus/<target>/crash-<sha1> (commit it with the fix:
# it becomes a regression input) and fails the script.
#
#   scripts/fuzz.sh                     build, regression inputs, 20 s per target
#   FUZZ_SECONDS=600 scripts/fuzz.sh    a longer run
#   scripts/fuzz.sh --regression        build and run the kept inputs only
#   FUZZ_TARGETS="spec safetensors" scripts/fuzz.sh
#
# Inputs that found new coverage stay in build-fuzz/corpus/<target>/ (not in
# the repository), so that later runs start from them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${FUZZ_BUILD_DIR:-build-fuzz}
seconds=${FUZZ_SECONDS:-20}
read -r -a targets <<<"${FUZZ_TARGETS:-spec tokenizer_json dataset_manifest safetensors corpus_reader}"
regression_only=0
[[ ${1:-} == --regression ]] && regression_only=1

if [[ ! -f $build/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBERT_WITH_TORCH=OFF -DBERT_BUILD_TESTS=OFF -DBERT_BUILD_BENCH=OFF -DBERT_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j "${BUILD_JOBS:-2}" --target "${targets[@]/#/fuzz_}"

# The seeds of a target: files and directories of the repository's fixtures,
# copied into build-fuzz/seeds/<target>/ (libFuzzer takes directories only).
seeds_of() {
  case $1 in
    spec) echo examples/*.yaml tests/client/testdata/*.yaml ;;
    tokenizer_json) echo fuzz/seeds/tokenizer_json/* ;;  # small files: the fixtures are 65 KB
    dataset_manifest) echo fuzz/seeds/dataset_manifest/* ;;
    safetensors) echo fuzz/seeds/safetensors/* ;;
  esac
}

make_seeds() {
  local out=$build/seeds/$1
  rm -rf "$out" && mkdir -p "$out"
  if [[ $1 == corpus_reader ]]; then
    make_corpus_reader_seeds "$out"
  else
    # shellcheck disable=SC2046  # the fixtures' paths have no spaces
    cp $(seeds_of "$1") "$out/"
  fi
}

# The corpus reader's first byte picks the format and compression
# (fuzz/corpus_reader_fuzzer.cc): the fixtures, prefixed, plain and compressed.
make_corpus_reader_seeds() {
  local out=$1
  local f name
  for f in tests/data/testdata/brown-sample.txt tests/data/testdata/brown-docs-sample.jsonl \
           tests/spec/testdata/corpus.txt tests/spec/testdata/docs.jsonl; do
    name=$(basename "$f")
    head -c 4000 "$f" >"$out/.body"
    { printf '\x00'; cat "$out/.body"; } >"$out/line-$name"          # text, one per line
    { printf '\x01'; cat "$out/.body"; } >"$out/blank-$name"         # text, blank-line separated
    { printf '\x02'; cat "$out/.body"; } >"$out/jsonl-$name"         # JSONL
    { printf '\x80'; cat "$out/.body"; } >"$out/range-$name"         # a unit mid-file
    { printf '\x05'; gzip -c "$out/.body"; } >"$out/gzip-$name"      # JSONL, gzip
    if command -v zstd >/dev/null; then
      { printf '\x08'; zstd -q -c "$out/.body"; } >"$out/zstd-$name"  # JSONL, zstd
    fi
  done
  rm -f "$out/.body"
}

status=0
summary=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/fuzz_$t
  kept=fuzz/corpus/$t
  mkdir -p "$kept"
  if ! fuzz/run_regression.sh "$bin" "$kept"; then
    echo "fuzz: $t: a kept input of $kept fails" >&2
    status=1
    summary+=("$t: regression inputs FAIL")
    continue
  fi
  ((regression_only)) && { summary+=("$t: regression inputs pass"); continue; }
  make_seeds "$t"
  work=$build/corpus/$t
  mkdir -p "$work"
  log=$build/fuzz-$t.log
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
       -print_final_stats=1 -artifact_prefix="$root/$kept/" "$work" "$build/seeds/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    summary+=("$t: ${runs:-?} runs in ${seconds} s (${rate:-?}/s), no crash")
  else
    status=1
    summary+=("$t: CRASH, input kept in $kept/ (log: $log)")
    grep -m1 -A8 "ERROR:\|runtime error\|deadly signal" "$log" >&2 || tail -20 "$log" >&2
  fi
done
printf 'fuzz: %s\n' "${summary[@]}"
exit $status
