#include "tokenizer/wordpiece_trainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/vocab_learner.h"

namespace bert::tokenizer {
namespace {

BertNormalizerOptions TrainerNormalizer(const WordPieceTrainerOptions& options) {
  BertNormalizerOptions normalizer;
  normalizer.lowercase = options.lowercase;
  return normalizer;
}

// Splits `buffer` into about `parts` pieces at line ends.
std::vector<std::string_view> SplitAtLines(std::string_view buffer, size_t parts) {
  std::vector<std::string_view> chunks;
  size_t start = 0;
  for (size_t k = 1; k <= parts && start < buffer.size(); ++k) {
    size_t end = k == parts ? buffer.size() : std::max(start, buffer.size() * k / parts);
    if (end < buffer.size()) {
      size_t nl = buffer.find('\n', end);
      end = nl == std::string_view::npos ? buffer.size() : nl + 1;
    }
    if (end > start) chunks.push_back(buffer.substr(start, end - start));
    start = end;
  }
  return chunks;
}

}  // namespace

std::vector<std::string> WordPieceTrainerOptions::BertSpecialTokens() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
}

WordPieceTrainer::WordPieceTrainer(WordPieceTrainerOptions options)
    : options_(std::move(options)), splitter_(TrainerNormalizer(options_)) {
  threads_ = options_.threads > 0
                 ? options_.threads
                 : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  counts_.resize(static_cast<size_t>(threads_));
}

void WordPieceTrainer::CountChunks(std::span<const std::string_view> chunks) {
  // Chunk k always goes to counts_[k]: which thread counted a word does not
  // change the sums.
  auto count = [this](std::string_view text, Counts& counts) {
    WordSplitter::Scratch scratch;
    splitter_.Split<false>(text, scratch,
                           [&](std::string_view word, const WordSplitter::Alignment*) {
                             auto it = counts.find(absl::string_view(word.data(), word.size()));
                             if (it != counts.end()) {
                               ++it->second;
                             } else {
                               counts.emplace(std::string(word), 1);
                             }
                           });
  };
  if (chunks.size() == 1) {
    count(chunks[0], counts_[0]);
    return;
  }
  std::vector<std::thread> workers;
  for (size_t k = 1; k < chunks.size(); ++k) {
    workers.emplace_back(count, chunks[k], std::ref(counts_[k]));
  }
  count(chunks[0], counts_[0]);
  for (std::thread& t : workers) t.join();
}

void WordPieceTrainer::Feed(std::span<const std::string_view> texts) {
  // Each text is a sequence of its own; texts never merge into one word
  // because they are counted separately.
  std::vector<std::string_view> chunks;
  for (std::string_view text : texts) {
    chunks.push_back(text);
    if (chunks.size() == counts_.size()) {
      CountChunks(chunks);
      chunks.clear();
    }
  }
  if (!chunks.empty()) CountChunks(chunks);
}

void WordPieceTrainer::FeedLines(std::string_view buffer) {
  // A line end is whitespace to the normalizer, so a block of lines splits
  // into the same words as its lines one by one.
  size_t parts = buffer.size() < (1u << 16) ? 1 : counts_.size();
  std::vector<std::string_view> chunks = SplitAtLines(buffer, parts);
  if (!chunks.empty()) CountChunks(chunks);
}

size_t WordPieceTrainer::distinct_words() const {
  if (counts_.size() == 1) return counts_[0].size();
  absl::flat_hash_map<absl::string_view, char> seen;
  for (const Counts& counts : counts_) {
    for (const auto& [word, n] : counts) seen.emplace(word, 0);
  }
  return seen.size();
}

absl::StatusOr<Tokenizer> WordPieceTrainer::Train(ProgressSink* sink) {
  Counts merged = std::move(counts_[0]);
  for (size_t k = 1; k < counts_.size(); ++k) {
    for (auto& [word, n] : counts_[k]) merged[word] += n;
    counts_[k] = Counts();
  }
  counts_[0] = Counts();
  std::vector<std::pair<std::string, uint64_t>> words;
  words.reserve(merged.size());
  for (auto& [word, n] : merged) words.emplace_back(word, n);
  merged = Counts();
  // Train() consumes the counts; keep them for a second call.
  for (const auto& [word, n] : words) counts_[0].emplace(word, n);

  BERT_ASSIGN_OR_RETURN(std::vector<std::string> vocab,
                        LearnVocabulary(std::move(words), options_, sink));
  BERT_ASSIGN_OR_RETURN(WordPieceModel model, WordPieceModel::Create(vocab, "[UNK]", "##", 100));
  auto impl = std::make_shared<TokenizerImpl>(TrainerNormalizer(options_), std::move(model));
  for (const std::string& token : options_.special_tokens) {
    std::optional<uint32_t> id = impl->model.Find(token);
    if (id && std::none_of(impl->added_tokens.begin(), impl->added_tokens.end(),
                           [&](const AddedToken& t) { return t.id == *id; })) {
      impl->added_tokens.push_back(AddedToken{token, *id, true});
    }
  }
  std::optional<uint32_t> cls = impl->model.Find("[CLS]");
  std::optional<uint32_t> sep = impl->model.Find("[SEP]");
  bool has_cls = std::find(options_.special_tokens.begin(), options_.special_tokens.end(),
                           "[CLS]") != options_.special_tokens.end();
  bool has_sep = std::find(options_.special_tokens.begin(), options_.special_tokens.end(),
                           "[SEP]") != options_.special_tokens.end();
  if (has_cls && has_sep && cls && sep) {
    impl->post = BertPostProcessor("[CLS]", *cls, "[SEP]", *sep);
    impl->decoder = {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}};
  }
  return TokenizerAccess::Make(std::move(impl));
}

absl::StatusOr<Tokenizer> TrainFromFiles(const std::vector<std::string>& files,
                                         const WordPieceTrainerOptions& options,
                                         ProgressSink& sink) {
  if (files.empty()) return absl::InvalidArgumentError("no training files given");
  int64_t total = 0;
  for (const std::string& file : files) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open", file, errno);
    off_t size = ::lseek(fd, 0, SEEK_END);
    ::close(fd);
    if (size > 0) total += size;
  }
  WordPieceTrainer trainer(options);
  constexpr size_t kBlock = 16u << 20;
  std::string block;
  int64_t done = 0;
  for (const std::string& file : files) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open", file, errno);
    std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { ::close(*f); });
    std::string carry;  // a partial last line, kept for the next block
    std::string buffer(kBlock, '\0');
    while (true) {
      if (sink.Cancelled()) return absl::CancelledError("tokenizer training cancelled");
      ssize_t n = ::read(fd, buffer.data(), buffer.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixError("read", file, errno);
      }
      if (n == 0) break;
      done += n;
      std::string_view data(buffer.data(), static_cast<size_t>(n));
      size_t last_nl = data.rfind('\n');
      if (last_nl == std::string_view::npos) {
        carry.append(data);
        continue;
      }
      block = std::move(carry);
      block.append(data.substr(0, last_nl + 1));
      carry.assign(data.substr(last_nl + 1));
      trainer.FeedLines(block);
      sink.Progress(done, total, "bytes");
    }
    if (!carry.empty()) trainer.FeedLines(carry);  // a last line without '\n'
    sink.Progress(done, total, "bytes");
  }
  sink.Log("info", absl::StrCat("tokenizer: counted ", trainer.distinct_words(),
                                " distinct words in ", done, " bytes"));
  return trainer.Train(&sink);
}

}  // namespace bert::tokenizer
