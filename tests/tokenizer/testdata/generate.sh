#!/usr/bin/env bash
# Regenerates the Hugging Face fixtures of tests/tokenizer from the reference
# (scripts/hf-reference.sh) and ../shared/corpus/brown.txt. Run once; the
# outputs are committed so that the tests need neither node nor ../shared.
#   tests/tokenizer/testdata/generate.sh BUILD_DIR   (with tokenizer_bench built)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../../.." && pwd)"
ref="${root}/bench/tokenizer/hf-reference"
corpus="${BERT_SHARED_DIR:-${root}/../shared}/corpus/brown.txt"
build="$(cd "${1:?usage: generate.sh BUILD_DIR}" && pwd)"
"${root}/scripts/hf-reference.sh" --check || { echo "run scripts/hf-reference.sh first" >&2; exit 1; }
cd "${here}"
sed -n '1,600p' "${corpus}" > train_slice.txt
sed -n '30001,30400p' "${corpus}" > encode_slice.txt
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT
# Hugging Face's default WordPiece training (train.js), then [UNK] appended to
# its vocabulary so that unseen characters encode (its trainer adds none).
(cd "${ref}" && node train.js "${tmp}/hf.json" "${here}/train_slice.txt")
node -e '
const fs = require("fs");
const j = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
j.model.vocab["[UNK]"] = Object.keys(j.model.vocab).length;
fs.writeFileSync(process.argv[2], JSON.stringify(j) + "\n");' "${tmp}/hf.json" hf_slice.json
(cd "${ref}" && node encode.js "${here}/hf_slice.json" "${here}/encode_slice.txt" "${here}/encode_slice.ids")
(cd "${ref}" && node fixtures.js "${here}/hf_slice.json" "${here}/edge_cases.txt" "${here}/edge_cases_slice.json")
# A BERT tokenizer trained by this project, as Hugging Face loads and runs it.
"${build}/bin/tokenizer_bench" train "${tmp}/bert" 3000 bert 0 train_slice.txt
cp "${tmp}/bert/tokenizer.json" bert_slice.json
(cd "${ref}" && node fixtures.js "${here}/bert_slice.json" "${here}/edge_cases.txt" "${here}/edge_cases_bert.json")
echo "fixtures written to ${here}"
