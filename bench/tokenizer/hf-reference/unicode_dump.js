// Hugging Face's side of unicode_dump.cc: for every code point c (surrogates
// excluded), the BERT pre-tokens of "a" c "b" after BertNormalizer.
// Usage: node unicode_dump.js LOWERCASE(1|0) > out.tsv
const t = require('tokenizers');
const lowercase = process.argv[2] !== '0';
const n = t.bertNormalizer({ lowercase });
const p = t.bertPreTokenizer();
const out = [];
for (let c = 0; c <= 0x10ffff; c++) {
  if (c >= 0xd800 && c <= 0xdfff) continue;
  const s = n.normalizeString('a' + String.fromCodePoint(c) + 'b');
  const pieces = p.preTokenizeString(s).map((x) => x[0]);
  out.push(c.toString(16) + '\t' + pieces.join('|'));
  if (out.length >= 65536) { process.stdout.write(out.join('\n') + '\n'); out.length = 0; }
}
process.stdout.write(out.join('\n') + '\n');
