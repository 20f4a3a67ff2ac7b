#!/usr/bin/env bash
# Data stages vs Hugging Face tokenizers, side by side in one run on this machine.
#
#   bench/data/run.sh [COPIES]     # COPIES of brown.txt as the raw corpus (default 8)
#
# Ours: raw text -> finished dataset shards (prepare + tokenize + pack + shuffle +
# write), bench_data_pipeline. Reference: Hugging Face `tokenizers` 0.23.2 (Rust,
# through its Node binding, encodeBatch on all cores) encoding the same text with
# the same tokenizer.json, timing the encoding alone (file reading excluded).
# Needs: a build (BUILD_DIR, default build/) with bench_data_pipeline, node, and
# the reference installed by scripts/hf-reference.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-${root}/build}"
copies="${1:-8}"
bench="${build}/bin/bench_data_pipeline"
ref="${root}/bench/tokenizer/hf-reference"
corpus_src="${BERT_SHARED_DIR:-${root}/../shared}/corpus/brown.txt"
[[ -x "${bench}" ]] || { echo "build bench_data_pipeline first (ninja -C ${build} bench_data_pipeline)" >&2; exit 1; }
[[ -f "${corpus_src}" ]] || { echo "no ${corpus_src}" >&2; exit 1; }
bash "${root}/scripts/hf-reference.sh" --check || bash "${root}/scripts/hf-reference.sh"

work="$(mktemp -d "${TMPDIR:-/tmp}/bench-data-XXXXXX")"
trap 'rm -rf "${work}"' EXIT
for ((i = 0; i < copies; i++)); do cat "${corpus_src}"; done > "${work}/corpus.txt"
echo "corpus: ${copies} x brown.txt = $(du -m "${work}/corpus.txt" | cut -f1) MB; cores: $(nproc)"

"${bench}" train-tokenizer "${corpus_src}" "${work}/tok" >/dev/null
tok="${work}/tok/tokenizer.json"

ours="$(/usr/bin/time -f 'max_rss_kb=%M' "${bench}" run "${tok}" "${work}/out" "${work}/corpus.txt" 2>&1)"
hf="$(/usr/bin/time -f 'max_rss_kb=%M' node "${ref}/encode.js" "${tok}" "${work}/corpus.txt" "${work}/hf.ids" 2>&1)"
echo "--- ours (end to end, raw text to finished shards)"; echo "${ours}"
echo "--- hf tokenizers (encoding only)"; echo "${hf}"

get() { grep -o "$2=[0-9.]*" <<<"$1" | head -1 | cut -d= -f2; }
ours_mbs="$(get "${ours}" end_to_end_mb_per_s)"
hf_mbs="$(get "${hf}" mb_per_s)"
awk -v o="${ours_mbs}" -v h="${hf_mbs}" -v cores="$(nproc)" \
    -v orss="$(get "${ours}" max_rss_kb)" -v hrss="$(get "${hf}" max_rss_kb)" 'BEGIN {
  printf "ratio_end_to_end_vs_hf_encode=%.2fx (ours %.2f MB/s, hf %.2f MB/s)\n", o / h, o, h
  printf "peak_rss_mb ours=%.0f hf=%.0f\n", orss / 1024, hrss / 1024
  # 48-core projection: per-core rate x 48 at 90% parallel efficiency.
  rate = o / cores * 48 * 0.9
  printf "projected_20GB_on_48_cores=%.1f min (%.0f MB/s)\n", 20000 / rate / 60, rate
}'
