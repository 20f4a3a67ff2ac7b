// Writes the Hugging Face side of the tokenizer test fixtures
// (tests/tokenizer/testdata/, see generate.sh there).
// Usage: node fixtures.js TOKENIZER.json EDGE_CASES.txt OUT.json
//   EDGE_CASES.txt: one JSON string per line (so any character can be written).
// For every case: the normalized pre-tokens, and the ids and tokens without
// and with special tokens (the latter only when the tokenizer has a post-processor).
const t = require('tokenizers');
const fs = require('fs');
const [tokFile, casesFile, out] = process.argv.slice(2);
const tok = t.Tokenizer.fromFile(tokFile);
const json = JSON.parse(fs.readFileSync(tokFile, 'utf8'));
const n = t.bertNormalizer({ lowercase: json.normalizer.lowercase });
const p = t.bertPreTokenizer();
const cases = fs.readFileSync(casesFile, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l));
(async () => {
  const rows = [];
  for (const text of cases) {
    const row = { text };
    row.pretokens = p.preTokenizeString(n.normalizeString(text)).map((x) => x[0]);
    const e = await tok.encode(text, null, { addSpecialTokens: false });
    row.ids = Array.from(e.getIds());
    row.tokens = e.getTokens();
    if (json.post_processor) {
      const s = await tok.encode(text, null, { addSpecialTokens: true });
      row.ids_special = Array.from(s.getIds());
      const pair = await tok.encode(text, 'second part', { addSpecialTokens: true });
      row.pair_ids = Array.from(pair.getIds());
      row.pair_type_ids = Array.from(pair.getTypeIds());
    }
    rows.push(row);
  }
  fs.writeFileSync(out, JSON.stringify(rows, null, 1) + '\n');
})();
