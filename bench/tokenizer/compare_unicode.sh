#!/usr/bin/env bash
# Compares normalization + pre-tokenization with Hugging Face's for every
# Unicode code point (as "a" c "b"), lowercase on and off. Prints the number
# of differing code points; with --regenerate, rewrites
# tokenizer/unicode_legacy_tables.inc from the lowercase-on differences
# (run it on a build whose tables are empty to start from scratch).
#   bench/tokenizer/compare_unicode.sh BUILD_DIR [--regenerate]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:?usage: compare_unicode.sh BUILD_DIR [--regenerate]}"
ref="${root}/bench/tokenizer/hf-reference"
"${root}/scripts/hf-reference.sh" --check || { echo "run scripts/hf-reference.sh first" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
status=0
for lowercase in 1 0; do
  (cd "${ref}" && node unicode_dump.js "${lowercase}" > "${tmp}/hf${lowercase}.tsv")
  "${build}/bin/tokenizer_unicode_dump" "${lowercase}" > "${tmp}/ours${lowercase}.tsv"
  diffs=$(diff "${tmp}/hf${lowercase}.tsv" "${tmp}/ours${lowercase}.tsv" | grep -c '^<' || true)
  total=$(wc -l < "${tmp}/hf${lowercase}.tsv")
  echo "lowercase=${lowercase}: ${diffs} of ${total} code points differ"
  [[ "${diffs}" == 0 ]] || status=1
done
if [[ "${2:-}" == "--regenerate" ]]; then
  python3 "${root}/bench/tokenizer/legacy_tables.py" "${tmp}/hf1.tsv" "${tmp}/ours1.tsv" \
    "${root}/tokenizer/unicode_legacy_tables.inc"
fi
exit "${status}"
