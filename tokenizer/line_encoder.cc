#include "tokenizer/line_encoder.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <thread>

namespace bert::tokenizer {

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

void EncodeLines(const Tokenizer& tokenizer, std::span<const std::string_view> lines,
                 const LineEncodeOptions& options, std::vector<std::vector<uint32_t>>* ids) {
  ids->resize(lines.size());
  size_t threads = options.threads > 0 ? static_cast<size_t>(options.threads)
                                       : std::max(1u, std::thread::hardware_concurrency());
  // Lines are handed out in batches from a shared counter: balanced load,
  // and each row written by exactly one thread.
  constexpr size_t kBatch = 256;
  std::atomic<size_t> next{0};
  auto work = [&] {
    while (true) {
      size_t begin = next.fetch_add(kBatch, std::memory_order_relaxed);
      if (begin >= lines.size()) return;
      size_t end = std::min(lines.size(), begin + kBatch);
      for (size_t i = begin; i < end; ++i) {
        std::vector<uint32_t>& row = (*ids)[i];
        row.clear();
        tokenizer.AppendIds(lines[i], options.add_special_tokens, 0, &row);
      }
    }
  };
  threads = std::min(threads, lines.size() / kBatch + 1);
  std::vector<std::thread> workers;
  for (size_t t = 1; t < threads; ++t) workers.emplace_back(work);
  work();
  for (std::thread& t : workers) t.join();
}

void FormatRows(const Tokenizer& tokenizer, std::span<const std::vector<uint32_t>> rows,
                bool as_tokens, std::string* out) {
  char buf[16];
  for (const std::vector<uint32_t>& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out->push_back(' ');
      if (as_tokens) {
        out->append(tokenizer.IdToToken(row[i]));
      } else {
        auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), row[i]);
        out->append(buf, end);
      }
    }
    out->push_back('\n');
  }
}

}  // namespace bert::tokenizer
