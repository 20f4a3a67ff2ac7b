// bertctl tokenize and bertctl tokenizer train: the WordPiece tokenizer
// (bert_tokenizer) from the command line, without a server.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/cli_context.h"
#include "client/commands.h"
#include "common/progress_sink.h"
#include "tokenizer/line_encoder.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/wordpiece_trainer.h"

namespace bert::client {
namespace {

struct TokenizeOptions {
  std::string tokenizer;
  bool special_tokens = false;
  bool tokens = false;
  std::string file;  // empty or "-": stdin
  int threads = 0;
};

struct TrainOptions {
  size_t vocab_size = 30000;
  std::string special_tokens = "bert";
  uint64_t min_frequency = 0;
  size_t limit_alphabet = 0;
  bool cased = false;
  int threads = 0;
  std::string out;
  std::vector<std::string> files;
};

// Progress of training, to stderr, at most once per tenth of the work.
class StderrProgress final : public ProgressSink {
 public:
  void Progress(int64_t done, int64_t total, std::string_view unit) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (total <= 0) return;
    int tenth = static_cast<int>(done * 10 / total);
    if (unit == unit_ && tenth == last_tenth_) return;
    unit_ = std::string(unit);
    last_tenth_ = tenth;
    std::cerr << "bertctl: " << done << "/" << total << " " << unit << "\n";
  }
  void Metric(std::string_view, double, int64_t) override {}
  void Log(std::string_view level, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::cerr << "bertctl: " << message << "\n";
  }
  bool Cancelled() const override { return false; }

 private:
  std::mutex mu_;
  std::string unit_;
  int last_tenth_ = -1;
};

void RunTokenize(const TokenizeOptions& options) {
  absl::StatusOr<tokenizer::Tokenizer> tok = tokenizer::Tokenizer::Load(options.tokenizer);
  if (!tok.ok()) Fail(tok.status());
  std::FILE* in = stdin;
  bool from_file = !options.file.empty() && options.file != "-";
  if (from_file) {
    in = std::fopen(options.file.c_str(), "rb");
    if (in == nullptr) Fail(kExitNotFound, absl::StrCat("cannot open ", options.file));
  }
  // Blocks of whole lines, encoded on all cores, written in order.
  constexpr size_t kBlock = 4u << 20;
  std::string buffer(kBlock, '\0');
  std::string pending;
  std::string out;
  std::vector<std::vector<uint32_t>> rows;
  tokenizer::LineEncodeOptions encode;
  encode.add_special_tokens = options.special_tokens;
  encode.threads = options.threads;
  auto flush_lines = [&](std::string_view text) {
    std::vector<std::string_view> lines = tokenizer::SplitLines(text);
    tokenizer::EncodeLines(*tok, lines, encode, &rows);
    out.clear();
    tokenizer::FormatRows(*tok, rows, options.tokens, &out);
    std::fwrite(out.data(), 1, out.size(), stdout);
  };
  while (true) {
    size_t n = std::fread(buffer.data(), 1, buffer.size(), in);
    if (n == 0) break;
    pending.append(buffer.data(), n);
    size_t last_nl = pending.rfind('\n');
    if (last_nl == std::string::npos) continue;
    flush_lines(std::string_view(pending).substr(0, last_nl + 1));
    pending.erase(0, last_nl + 1);
  }
  bool read_error = std::ferror(in) != 0;
  if (from_file) std::fclose(in);
  if (read_error)
    Fail(kExitFailure, absl::StrCat("read error on ", from_file ? options.file : "stdin"));
  if (!pending.empty()) flush_lines(pending);
  if (std::fflush(stdout) != 0) Fail(kExitFailure, "write error on stdout");
}

void RunTrain(const TrainOptions& options) {
  tokenizer::WordPieceTrainerOptions trainer;
  trainer.vocab_size = options.vocab_size;
  trainer.min_frequency = options.min_frequency;
  if (options.special_tokens == "bert") {
    trainer.special_tokens = tokenizer::WordPieceTrainerOptions::BertSpecialTokens();
  }
  if (options.limit_alphabet > 0) trainer.limit_alphabet = options.limit_alphabet;
  trainer.lowercase = !options.cased;
  trainer.threads = options.threads;
  StderrProgress progress;
  absl::StatusOr<tokenizer::Tokenizer> tok =
      tokenizer::TrainFromFiles(options.files, trainer, progress);
  if (!tok.ok()) Fail(tok.status());
  absl::Status saved = tok->Save(options.out);
  if (!saved.ok()) Fail(saved);
  std::cerr << "bertctl: wrote " << options.out << "/tokenizer.json and vocab.txt ("
            << tok->vocab_size() << " tokens)\n";
}

}  // namespace

void RegisterTokenizerCommands(CLI::App& app) {
  static TokenizeOptions tokenize;
  static TrainOptions train;

  CLI::App* command = app.add_subcommand(
      "tokenize", "print the ids (or tokens) of each input line, one output line per input line");
  command->add_option("--tokenizer", tokenize.tokenizer, "tokenizer.json, vocab.txt or a directory")
      ->required();
  command->add_flag("--special-tokens", tokenize.special_tokens, "add [CLS] ... [SEP]");
  command->add_flag("--tokens", tokenize.tokens, "print tokens instead of ids");
  command->add_option("--threads", tokenize.threads, "encoding threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("file", tokenize.file, "input, one text per line (default: stdin)");
  command->callback([] { RunTokenize(tokenize); });

  CLI::App* group = app.add_subcommand("tokenizer", "WordPiece tokenizer tools");
  group->require_subcommand(1);
  command = group->add_subcommand(
      "train",
      "train a WordPiece vocabulary on files of one text per line (Hugging Face's trainer)");
  command->add_option("--vocab-size", train.vocab_size, "vocabulary size")
      ->required()
      ->check(CLI::Range(size_t{1}, size_t{1} << 24));
  command
      ->add_option("--special-tokens", train.special_tokens,
                   "bert: [PAD] [UNK] [CLS] [SEP] [MASK] first; none: no special tokens")
      ->check(CLI::IsMember({"none", "bert"}))
      ->capture_default_str();
  command->add_option("--min-frequency", train.min_frequency, "stop at merges rarer than this")
      ->capture_default_str();
  command->add_option("--limit-alphabet", train.limit_alphabet,
                      "keep at most this many characters (0: all)");
  command->add_flag("--cased", train.cased,
                    "keep case and accents (default: lowercase, as bert-base-uncased)");
  command->add_option("--threads", train.threads, "word counting threads (0: all cores)")
      ->check(CLI::NonNegativeNumber);
  command->add_option("--out", train.out, "directory for tokenizer.json and vocab.txt")->required();
  command->add_option("files", train.files, "training text, one text per line")
      ->required()
      ->check(CLI::ExistingFile);
  command->callback([] { RunTrain(train); });
}

}  // namespace bert::client
