#!/usr/bin/env bash
# Installs the Hugging Face `tokenizers` reference (its Rust core through the
# pinned npm package) into bench/tokenizer/hf-reference/node_modules (ignored by
# git), beside the train.js and encode.js scripts committed there.
#
# Usage: scripts/hf-reference.sh          # install (idempotent)
#        scripts/hf-reference.sh --check  # exit 0 when installed
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${root}/bench/tokenizer/hf-reference"
pinned="tokenizers@0.23.2"

installed() {
  [[ -f "${dir}/node_modules/tokenizers/package.json" ]] &&
    node -e "process.exit(require('${dir}/node_modules/tokenizers/package.json').version === '0.23.2' ? 0 : 1)"
}

if [[ "${1:-}" == "--check" ]]; then
  installed
  exit $?
fi

command -v npm >/dev/null || { echo "hf-reference: npm is not installed (apt-get install npm)" >&2; exit 1; }
if installed; then
  echo "hf-reference: ${pinned} already installed in ${dir}"
  exit 0
fi
cd "${dir}"
# package.json there pins the exact version; --no-package-lock: a lock file
# would name the registry host.
npm install --no-audit --no-fund --no-package-lock
installed || { echo "hf-reference: ${pinned} did not install" >&2; exit 1; }
echo "hf-reference: installed ${pinned} in ${dir}"
