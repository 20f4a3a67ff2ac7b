#!/usr/bin/env bash
# Side-by-side benchmark against Hugging Face `tokenizers` (its Rust core via
# the npm package; scripts/hf-reference.sh installs it), in one run on the
# same machine: WordPiece training (vocab 30000, no special tokens, as
# train.js) and encoding every line (HF: encodeBatch on all cores).
#   bench/tokenizer/run_bench.sh BUILD_DIR [CORPUS]   (default ../shared/corpus/brown.txt)
# Prints each side's seconds, MB/s and peak memory, the ratios, the encoding
# agreement (lines with identical ids) and the vocabulary overlap.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$(cd "${1:?usage: run_bench.sh BUILD_DIR [CORPUS]}" && pwd)"
corpus="$(realpath "${2:-${root}/../shared/corpus/brown.txt}")"
ref="${root}/bench/tokenizer/hf-reference"
bench="${build}/bin/tokenizer_bench"
"${root}/scripts/hf-reference.sh" --check || { echo "run scripts/hf-reference.sh first" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
threads="$(nproc)"
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2" | tail -1; }
# Peak memory through GNU time (Debian package "time") when present.
peak() {
  if [[ -x /usr/bin/time ]]; then
    /usr/bin/time -f '%M' "$@" 2>"${tmp}/rss" >"${tmp}/out" && cat "${tmp}/out" &&
      echo "peak_rss_mb=$(($(tail -1 "${tmp}/rss") / 1024))"
  else
    "$@"
  fi
}
mb=$(awk -v b="$(stat -c %s "${corpus}")" 'BEGIN { printf "%.2f", b / 1e6 }')
echo "corpus: ${corpus} (${mb} MB), ${threads} cores"

hf_train=$(cd "${ref}" && peak node train.js "${tmp}/hf.json" "${corpus}")
our_train=$(peak "${bench}" train "${tmp}/ours" 30000 none "${threads}" "${corpus}")
hf_enc=$(cd "${ref}" && peak node encode.js "${tmp}/hf.json" "${corpus}" "${tmp}/hf.ids")
our_enc=$(peak "${bench}" encode "${tmp}/hf.json" "${corpus}" "${tmp}/ours.ids" "${threads}")

ht=$(field train_seconds "${hf_train}"); ot=$(field train_seconds "${our_train}")
he=$(field encode_seconds "${hf_enc}"); oe=$(field encode_seconds "${our_enc}")
awk -v ht="${ht}" -v ot="${ot}" -v he="${he}" -v oe="${oe}" -v mb="${mb}" \
    -v hr="$(field peak_rss_mb "${hf_train}")" -v or="$(field peak_rss_mb "${our_train}")" \
    -v her="$(field peak_rss_mb "${hf_enc}")" -v oer="$(field peak_rss_mb "${our_enc}")" 'BEGIN {
  printf "train   hf %7.3f s %7.2f MB/s peak %5d MB | ours %7.3f s %7.2f MB/s peak %5d MB | %.1fx faster\n", ht, mb/ht, hr, ot, mb/ot, or, ht/ot
  printf "encode  hf %7.3f s %7.2f MB/s peak %5d MB | ours %7.3f s %7.2f MB/s peak %5d MB | %.1fx throughput\n", he, mb/he, her, oe, mb/oe, oer, he/oe
}'
lines=$(wc -l < "${tmp}/hf.ids")
same=$(paste -d '\t' "${tmp}/hf.ids" "${tmp}/ours.ids" | awk -F '\t' '$1 == $2' | wc -l)
echo "encoding agreement: ${same} of ${lines} lines identical"
python3 - "${tmp}/hf.json" "${tmp}/ours/tokenizer.json" <<'PY'
import json, sys
hf, ours = (set(json.load(open(p))["model"]["vocab"]) for p in sys.argv[1:3])
print(f"vocabulary overlap: {len(hf & ours)} of {len(hf)} tokens ({100 * len(hf & ours) / len(hf):.2f}%)")
PY
