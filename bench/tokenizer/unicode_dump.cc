// Prints, for every code point c (surrogates excluded), the BERT pre-tokens of
// "a" c "b" after normalization: "<hex>\t<piece>|<piece>...". Run with
// lowercase 1 or 0. compare_unicode.sh diffs this against Hugging Face.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tokenizer/unicode_chars.h"
#include "tokenizer/word_splitter.h"

int main(int argc, char** argv) {
  bert::tokenizer::BertNormalizerOptions options;
  options.lowercase = argc > 1 ? std::atoi(argv[1]) != 0 : true;
  bert::tokenizer::WordSplitter splitter(options);
  bert::tokenizer::WordSplitter::Scratch scratch;
  std::string text;
  std::string line;
  for (char32_t c = 0; c <= 0x10FFFF; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    text.clear();
    text.push_back('a');
    bert::tokenizer::AppendUtf8(c, &text);
    text += "b";
    line.clear();
    bool first = true;
    splitter.Split<false>(text, scratch, [&](std::string_view word, const auto*) {
      if (!first) line += '|';
      first = false;
      line.append(word);
    });
    std::printf("%x\t%s\n", static_cast<unsigned>(c), line.c_str());
  }
  return 0;
}
