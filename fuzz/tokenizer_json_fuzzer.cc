// Fuzzes the tokenizer.json loader (and, on the same bytes, the vocab.txt
// parser); a tokenizer that loads also encodes a short text and a pair, and
// serialises itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/vocab_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto impl = bert::tokenizer::ParseTokenizerJson(text, "fuzz/tokenizer.json");
  if (impl.ok()) {
    bert::tokenizer::Tokenizer tokenizer = bert::tokenizer::TokenizerAccess::Make(*impl);
    bert::tokenizer::EncodeOptions options;
    options.max_length = 16;
    (void)tokenizer.Encode("Hello, wörld! 你好 unaffable", options);
    (void)tokenizer.EncodePair("a b c", "d e", options);
    (void)tokenizer.ToJson();
  }
  auto vocab = bert::tokenizer::ParseVocabTxt(text, "fuzz/vocab.txt");
  if (vocab.ok()) {
    auto tokenizer = bert::tokenizer::Tokenizer::FromVocab(*std::move(vocab), /*lowercase=*/true);
    if (tokenizer.ok()) (void)tokenizer->Encode("Hello, wörld! unaffable");
  }
  return 0;
}
