// The C++ side of run_bench.sh, printing the same fields as Hugging Face's
// train.js / encode.js so the script can put them side by side.
//   tokenizer_bench train OUT_DIR VOCAB_SIZE SPECIALS(none|bert) THREADS CORPUS...
//     -> train_seconds=<s> vocab_size=<n> peak_rss_mb=<m>
//   tokenizer_bench encode TOKENIZER CORPUS OUT.ids THREADS
//     -> encode_seconds=<s> tokens=<n> mb_per_s=<x> peak_rss_mb=<m>
// Timings exclude file reading and writing, as the reference scripts do.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "common/progress_sink.h"
#include "tokenizer/line_encoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/wordpiece_trainer.h"

namespace {

double PeakRssMb() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Train(int argc, char** argv) {
  if (argc < 7) return 2;
  bert::tokenizer::WordPieceTrainerOptions options;
  options.vocab_size = std::strtoul(argv[3], nullptr, 10);
  if (std::strcmp(argv[4], "bert") == 0) {
    options.special_tokens = bert::tokenizer::WordPieceTrainerOptions::BertSpecialTokens();
  }
  options.threads = std::atoi(argv[5]);
  std::vector<std::string> files(argv + 6, argv + argc);
  bert::NullProgressSink sink;
  auto start = std::chrono::steady_clock::now();
  auto tok = bert::tokenizer::TrainFromFiles(files, options, sink);
  double secs = Seconds(start);
  if (!tok.ok()) {
    std::fprintf(stderr, "train: %s\n", std::string(tok.status().message()).c_str());
    return 1;
  }
  if (auto s = tok->Save(argv[2]); !s.ok()) {
    std::fprintf(stderr, "save: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("train_seconds=%.3f vocab_size=%zu peak_rss_mb=%.1f\n", secs, tok->vocab_size(),
              PeakRssMb());
  return 0;
}

int Encode(int argc, char** argv) {
  if (argc < 6) return 2;
  auto tok = bert::tokenizer::Tokenizer::Load(argv[2]);
  if (!tok.ok()) {
    std::fprintf(stderr, "load: %s\n", std::string(tok.status().message()).c_str());
    return 1;
  }
  auto text = bert::ReadFile(argv[3]);
  if (!text.ok()) {
    std::fprintf(stderr, "read: %s\n", std::string(text.status().message()).c_str());
    return 1;
  }
  bert::tokenizer::LineEncodeOptions options;
  options.threads = std::atoi(argv[5]);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::string_view> lines = bert::tokenizer::SplitLines(*text);
  std::vector<std::vector<uint32_t>> rows;
  bert::tokenizer::EncodeLines(*tok, lines, options, &rows);
  double secs = Seconds(start);
  size_t tokens = 0;
  for (const auto& row : rows) tokens += row.size();
  std::string out;
  bert::tokenizer::FormatRows(*tok, rows, false, &out);
  if (auto s = bert::WriteFileAtomically(argv[4], out); !s.ok()) return 1;
  std::printf("encode_seconds=%.3f tokens=%zu mb_per_s=%.2f peak_rss_mb=%.1f\n", secs, tokens,
              static_cast<double>(text->size()) / 1e6 / secs, PeakRssMb());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int rc = 2;
  if (argc >= 2 && std::strcmp(argv[1], "train") == 0) rc = Train(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "encode") == 0) rc = Encode(argc, argv);
  if (rc == 2) {
    std::fprintf(stderr,
                 "usage: tokenizer_bench train OUT_DIR VOCAB_SIZE none|bert THREADS CORPUS...\n"
                 "       tokenizer_bench encode TOKENIZER CORPUS OUT.ids THREADS\n");
  }
  return rc;
}
