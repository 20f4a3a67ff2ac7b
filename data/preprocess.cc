#include "data/preprocess.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "data/line_reader.h"
#include "data/numpy_permutation.h"
#include "data/packed_dataset.h"
#include "data/parallel_for.h"
#include "data/prepared_corpus.h"
#include "tokenizer/tokenizer.h"

namespace bert::data {
namespace {

namespace fs = std::filesystem;
using bert::tokenizer::Tokenizer;

constexpr uint32_t kDefaultSeqLen = 512;
constexpr char kShuffleName[] = "numpy-pcg64-permutation";

std::string PartsDir(const std::string& out_dir) { return out_dir + "/parts"; }
std::string StreamBase(const std::string& out_dir, size_t shard) {
  return absl::StrFormat("%s/tokens-%06d", PartsDir(out_dir), shard);
}
std::string WorkerFile(const std::string& out_dir, int i, int n) {
  return absl::StrFormat("%s/worker-%05d-of-%05d.json", PartsDir(out_dir), i, n);
}

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path) {
  BERT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  }
  return json;
}

struct Settings {
  uint32_t seq_len = kDefaultSeqLen;
  bool split_long_documents = false;
  bool uint16 = true;
  uint32_t cls = 0;
  uint32_t sep = 0;
  std::string tokenizer_sha256;
  std::string dtype() const { return uint16 ? "uint16" : "uint32"; }
  size_t dtype_bytes() const { return uint16 ? 2 : 4; }
};

absl::StatusOr<Settings> ResolveSettings(const bert::v1::PreprocessSpec& spec,
                                         const Tokenizer& tokenizer,
                                         const std::string& tokenizer_path) {
  Settings s;
  if (spec.max_seq_length() < 0 || (spec.max_seq_length() > 0 && spec.max_seq_length() < 3)) {
    return absl::InvalidArgumentError("preprocess.max_seq_length: must be at least 3");
  }
  if (spec.max_seq_length() > 0) s.seq_len = static_cast<uint32_t>(spec.max_seq_length());
  if (!(spec.validation_fraction() >= 0.0 && spec.validation_fraction() < 1.0)) {
    return absl::InvalidArgumentError("preprocess.validation_fraction: must be in [0, 1)");
  }
  s.split_long_documents = spec.split_long_documents();
  s.uint16 = tokenizer.vocab_size() <= 65536;
  s.cls = tokenizer.special_ids().cls;
  s.sep = tokenizer.special_ids().sep;
  if (s.cls == bert::tokenizer::kNoTokenId || s.sep == bert::tokenizer::kNoTokenId) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tokenizer ", tokenizer_path, " has no [CLS] or [SEP] token; packing needs both"));
  }
  s.tokenizer_sha256 = tokenizer.Fingerprint();
  return s;
}

// Tokens of the texts in `chunk` (documents separated by '\n'), in order.
struct ChunkTokens {
  std::vector<uint32_t> ids;
  uint64_t documents = 0;
  uint64_t truncated = 0;
};

void TokenizeChunk(const Tokenizer& tokenizer, const Settings& s, std::string_view chunk,
                   ChunkTokens* out) {
  out->ids.clear();
  out->documents = 0;
  out->truncated = 0;
  std::vector<uint32_t> content;
  const size_t per_piece = s.seq_len - 2;
  size_t pos = 0;
  while (pos < chunk.size()) {
    size_t nl = chunk.find('\n', pos);
    if (nl == std::string_view::npos) nl = chunk.size();
    std::string_view text = chunk.substr(pos, nl - pos);
    pos = nl + 1;
    ++out->documents;
    if (!s.split_long_documents) {
      // The article: tokenizer(text, truncation=True, max_length=seq_len).
      out->truncated +=
          tokenizer.AppendIds(text, /*add_special_tokens=*/true, s.seq_len, &out->ids);
      continue;
    }
    // Like return_overflowing_tokens with stride 0: every piece is [CLS] ... [SEP].
    content.clear();
    tokenizer.AppendIds(text, /*add_special_tokens=*/false, 0, &content);
    size_t off = 0;
    do {
      size_t take = std::min(per_piece, content.size() - off);
      out->ids.push_back(s.cls);
      out->ids.insert(out->ids.end(), content.begin() + off, content.begin() + off + take);
      out->ids.push_back(s.sep);
      off += take;
    } while (off < content.size());
  }
}

void EncodeIds(const std::vector<uint32_t>& ids, bool uint16, std::string* out) {
  size_t at = out->size();
  if (uint16) {
    out->resize(at + 2 * ids.size());
    char* p = out->data() + at;
    for (uint32_t id : ids) {
      uint16_t v = static_cast<uint16_t>(id);
      std::memcpy(p, &v, 2);
      p += 2;
    }
  } else {
    out->resize(at + 4 * ids.size());
    std::memcpy(out->data() + at, ids.data(), 4 * ids.size());
  }
}

struct StreamInfo {
  uint64_t documents = 0;
  uint64_t tokens = 0;
  uint64_t truncated = 0;
};

// Tokenizes prepared shard `k` into tokens-k.bin (ids in the dataset's dtype)
// and, last, tokens-k.json.
absl::Status TokenizeShard(const PreparedCorpus& corpus, size_t k, const Tokenizer& tokenizer,
                           const Settings& s, const std::string& out_dir, int threads,
                           size_t chunk_bytes, ProgressSink& sink, std::atomic<uint64_t>& done,
                           uint64_t total) {
  BERT_ASSIGN_OR_RETURN(auto stream, OpenInputStream(corpus.ShardPath(k), Compression::kNone));
  LineReader lines(std::move(stream));
  const std::string base = StreamBase(out_dir, k);
  BERT_ASSIGN_OR_RETURN(AtomicFileWriter bin, AtomicFileWriter::Open(base + ".bin"));
  const size_t batch = 2 * static_cast<size_t>(ResolveThreads(threads));
  std::vector<std::string> chunks(batch);
  std::vector<ChunkTokens> results(batch);
  StreamInfo info;
  std::string out;
  bool more = true;
  while (more) {
    size_t used = 0;
    uint64_t text_bytes = 0;
    for (; used < batch && more; ++used) {
      std::string& chunk = chunks[used];
      chunk.clear();
      std::string_view line;
      while (chunk.size() < chunk_bytes) {
        BERT_ASSIGN_OR_RETURN(more, lines.Next(&line));
        if (!more) break;
        chunk.append(line.data(), line.size());
        chunk.push_back('\n');
      }
      text_bytes += chunk.size();
      if (chunk.empty()) break;
    }
    BERT_RETURN_IF_ERROR(ParallelFor(used, threads, [&](size_t c) {
      TokenizeChunk(tokenizer, s, chunks[c], &results[c]);
      return absl::OkStatus();
    }));
    for (size_t c = 0; c < used; ++c) {
      if (chunks[c].empty()) continue;
      info.documents += results[c].documents;
      info.tokens += results[c].ids.size();
      info.truncated += results[c].truncated;
      out.clear();
      EncodeIds(results[c].ids, s.uint16, &out);
      BERT_RETURN_IF_ERROR(bin.Append(out));
    }
    sink.Progress(done += text_bytes, total, "bytes");
    if (sink.Cancelled()) return absl::CancelledError("preprocess cancelled");
  }
  if (info.documents != corpus.shards[k].documents) {
    return absl::DataLossError(absl::StrCat(corpus.ShardPath(k), ": ", info.documents,
                                            " documents, but the corpus manifest says ",
                                            corpus.shards[k].documents));
  }
  BERT_RETURN_IF_ERROR(bin.Commit());
  nlohmann::json json = {{"shard", k},
                         {"documents", info.documents},
                         {"tokens", info.tokens},
                         {"tokens_truncated", info.truncated},
                         {"dtype", s.dtype()},
                         {"seq_len", s.seq_len},
                         {"split_long_documents", s.split_long_documents},
                         {"tokenizer_sha256", s.tokenizer_sha256}};
  return WriteFileAtomically(base + ".json", json.dump(2) + "\n");
}

// Reads token ranges of the concatenated streams with pread (no mmap, so the
// resident memory stays small however large the streams are).
class StreamConcat {
 public:
  ~StreamConcat() {
    for (int fd : fds_) ::close(fd);
  }
  absl::Status Add(const std::string& path, uint64_t tokens) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PosixError("open", path, errno);
    fds_.push_back(fd);
    paths_.push_back(path);
    if (first_.empty()) first_.push_back(0);
    first_.push_back(first_.back() + tokens);
    return absl::OkStatus();
  }
  uint64_t tokens() const { return first_.empty() ? 0 : first_.back(); }

  // Copies tokens [begin, begin + count) (dtype_bytes each) into `out`.
  absl::Status Read(uint64_t begin, uint64_t count, size_t dtype_bytes, char* out) const {
    size_t s = std::upper_bound(first_.begin(), first_.end(), begin) - first_.begin() - 1;
    while (count > 0) {
      uint64_t off = begin - first_[s];
      uint64_t take = std::min(count, first_[s + 1] - begin);
      size_t bytes = take * dtype_bytes;
      size_t got_total = 0;
      while (got_total < bytes) {
        ssize_t got = ::pread(fds_[s], out + got_total, bytes - got_total,
                              static_cast<off_t>(off * dtype_bytes + got_total));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return PosixError("read", paths_[s], got < 0 ? errno : EIO);
        got_total += got;
      }
      out += bytes;
      begin += take;
      count -= take;
      ++s;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<int> fds_;
  std::vector<std::string> paths_;
  std::vector<uint64_t> first_;  // prefix sums of token counts
};

// preprocess.memory_limit_mb in bytes (unset: 2 GiB). It bounds what
// preprocess holds: the text and tokens in flight while tokenizing, and, in the
// finalize step, the shuffle's block index plus each thread's write buffer.
uint64_t MemoryBytes(const bert::v1::PreprocessSpec& spec) {
  return spec.memory_limit_mb() > 0 ? uint64_t(spec.memory_limit_mb()) << 20 : 2ULL << 30;
}

}  // namespace

absl::Status PreprocessWorker(const std::string& corpus_dir, const std::string& tokenizer_path,
                              const bert::v1::PreprocessSpec& spec, const std::string& out_dir,
                              const PreprocessOptions& options, ProgressSink& sink) {
  if (options.num_workers < 1 || options.worker_index < 0 ||
      options.worker_index >= options.num_workers) {
    return absl::InvalidArgumentError(absl::StrCat("preprocess: worker ", options.worker_index,
                                                   " of ", options.num_workers, " is invalid"));
  }
  BERT_ASSIGN_OR_RETURN(PreparedCorpus corpus, PreparedCorpus::Load(corpus_dir));
  BERT_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(tokenizer_path));
  BERT_ASSIGN_OR_RETURN(Settings s, ResolveSettings(spec, tokenizer, tokenizer_path));
  std::error_code ec;
  fs::create_directories(PartsDir(out_dir), ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", PartsDir(out_dir), ": ", ec.message()));

  const int threads = ResolveThreads(options.threads);
  // Text in flight: 2 chunks per thread, plus their tokens (about as many bytes).
  const uint64_t memory = MemoryBytes(spec);
  size_t chunk_bytes = std::clamp<uint64_t>(memory / (8 * threads), 64 << 10, 4 << 20);

  std::vector<size_t> mine;
  uint64_t total = 0;
  for (size_t k = options.worker_index; k < corpus.shards.size(); k += options.num_workers) {
    mine.push_back(k);
    total += corpus.shards[k].bytes;
  }
  std::atomic<uint64_t> done{0};
  for (size_t k : mine) {
    BERT_RETURN_IF_ERROR(
        TokenizeShard(corpus, k, tokenizer, s, out_dir, threads, chunk_bytes, sink, done, total));
  }
  nlohmann::json worker = {{"format", "bert-preprocess-worker"},
                           {"worker_index", options.worker_index},
                           {"num_workers", options.num_workers},
                           {"num_shards", corpus.shards.size()},
                           {"shards", mine}};
  return WriteFileAtomically(WorkerFile(out_dir, options.worker_index, options.num_workers),
                             worker.dump(2) + "\n");
}

absl::StatusOr<DatasetManifest> FinalizePreprocess(const std::string& corpus_dir,
                                                   const std::string& tokenizer_path,
                                                   const bert::v1::PreprocessSpec& spec,
                                                   const std::string& out_dir, int num_workers,
                                                   const FinalizePreprocessOptions& options,
                                                   ProgressSink& sink) {
  if (::access((out_dir + "/manifest.json").c_str(), F_OK) == 0) {
    BERT_ASSIGN_OR_RETURN(PackedDataset existing, PackedDataset::Open(out_dir));
    return existing.manifest();
  }
  if (num_workers < 1) return absl::InvalidArgumentError("preprocess: num_workers must be >= 1");
  BERT_ASSIGN_OR_RETURN(PreparedCorpus corpus, PreparedCorpus::Load(corpus_dir));
  BERT_ASSIGN_OR_RETURN(Tokenizer tokenizer, Tokenizer::Load(tokenizer_path));
  BERT_ASSIGN_OR_RETURN(Settings s, ResolveSettings(spec, tokenizer, tokenizer_path));

  std::vector<bool> covered(corpus.shards.size(), false);
  for (int i = 0; i < num_workers; ++i) {
    const std::string path = WorkerFile(out_dir, i, num_workers);
    if (::access(path.c_str(), F_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "preprocess worker ", i, " of ", num_workers, " has not finished (no ", path, ")"));
    }
    BERT_ASSIGN_OR_RETURN(nlohmann::json worker, ReadJson(path));
    if (!worker.contains("shards") || !worker["shards"].is_array()) {
      return absl::DataLossError(absl::StrCat(path, ": missing 'shards'"));
    }
    for (const auto& k : worker["shards"]) {
      uint64_t shard = k.get<uint64_t>();
      if (shard >= covered.size() || covered[shard]) {
        return absl::DataLossError(
            absl::StrCat(path, ": shard ", shard, " is invalid or repeated"));
      }
      covered[shard] = true;
    }
  }
  DatasetManifest m;
  StreamConcat streams;
  for (size_t k = 0; k < corpus.shards.size(); ++k) {
    if (!covered[k]) return absl::DataLossError(absl::StrCat("no worker tokenized shard ", k));
    const std::string base = StreamBase(out_dir, k);
    BERT_ASSIGN_OR_RETURN(nlohmann::json info, ReadJson(base + ".json"));
    if (info.value("tokenizer_sha256", "") != s.tokenizer_sha256 ||
        info.value("seq_len", 0u) != s.seq_len || info.value("dtype", "") != s.dtype() ||
        info.value("split_long_documents", false) != s.split_long_documents) {
      return absl::FailedPreconditionError(
          absl::StrCat(base, ".json: written with another tokenizer or settings"));
    }
    const uint64_t tokens = info.value("tokens", uint64_t{0});
    std::error_code size_error;
    if (fs::file_size(base + ".bin", size_error) != tokens * s.dtype_bytes() || size_error) {
      return absl::DataLossError(
          absl::StrCat(base, ".bin: size does not match ", tokens, " tokens"));
    }
    m.stats.documents += info.value("documents", uint64_t{0});
    m.stats.tokens += tokens;
    m.stats.tokens_truncated += info.value("tokens_truncated", uint64_t{0});
    BERT_RETURN_IF_ERROR(streams.Add(base + ".bin", tokens));
  }

  // group_texts: concatenate everything, cut blocks of seq_len, drop the remainder.
  const uint64_t num_blocks = m.stats.tokens / s.seq_len;
  m.stats.tokens_dropped_remainder = m.stats.tokens - num_blocks * s.seq_len;
  if (num_blocks == 0) {
    return absl::InvalidArgumentError(absl::StrCat("preprocess: the corpus has ", m.stats.tokens,
                                                   " tokens, less than one block of ", s.seq_len,
                                                   "; there is nothing to train on"));
  }
  // Half the limit for the shuffle's index, the other half for write buffers.
  const uint64_t memory = MemoryBytes(spec);
  if (num_blocks * sizeof(uint64_t) > memory / 2) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "preprocess: the shuffle of ", num_blocks, " blocks needs ", (num_blocks * 8) >> 10,
        " KiB, more than half of preprocess.memory_limit_mb (", memory >> 20,
        " MiB): raise preprocess.memory_limit_mb to at least ",
        ((num_blocks * 16) >> 20) + 1));
  }
  const std::vector<uint64_t> order = NumpyPermutation(num_blocks, spec.shuffle_seed());
  uint64_t validation = 0;
  if (spec.validation_fraction() > 0 && num_blocks > 1) {
    validation = static_cast<uint64_t>(std::ceil(spec.validation_fraction() * num_blocks));
    validation = std::min(validation, num_blocks - 1);
  }

  // Output shards: {split, first position in `order`, blocks}.
  struct OutShard {
    std::string split;
    std::string file;
    uint64_t first;
    uint64_t blocks;
  };
  const uint64_t block_bytes = uint64_t{s.seq_len} * s.dtype_bytes();
  const uint64_t per_shard = std::max<uint64_t>(1, options.shard_bytes / block_bytes);
  std::vector<OutShard> out;
  auto plan = [&](const std::string& split, uint64_t first, uint64_t count) {
    for (uint64_t i = 0; i * per_shard < count; ++i) {
      out.push_back({split, absl::StrFormat("%s-%05d.bin", split, i), first + i * per_shard,
                     std::min(per_shard, count - i * per_shard)});
    }
  };
  plan("validation", 0, validation);
  plan("train", validation, num_blocks - validation);
  std::vector<std::string> sha(out.size());
  std::atomic<uint64_t> written{0};
  // Each writing thread's buffer: at most 4 MiB, and all of them together
  // within the half of the limit the index leaves.
  const uint64_t buffer_bytes = std::clamp<uint64_t>(
      memory / 2 / static_cast<uint64_t>(ResolveThreads(options.threads)), 64 << 10, 4 << 20);
  BERT_RETURN_IF_ERROR(ParallelFor(out.size(), options.threads, [&](size_t k) -> absl::Status {
    const OutShard& o = out[k];
    BERT_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Open(out_dir + "/" + o.file));
    Sha256 hasher;
    std::string buffer;
    const uint64_t per_flush = std::max<uint64_t>(1, buffer_bytes / block_bytes);
    for (uint64_t b = 0; b < o.blocks; ++b) {
      size_t at = buffer.size();
      buffer.resize(at + block_bytes);
      BERT_RETURN_IF_ERROR(streams.Read(order[o.first + b] * s.seq_len, s.seq_len, s.dtype_bytes(),
                                        buffer.data() + at));
      if ((b + 1) % per_flush == 0 || b + 1 == o.blocks) {
        hasher.Update(buffer);
        BERT_RETURN_IF_ERROR(writer.Append(buffer));
        buffer.clear();
        sink.Progress(written += (b % per_flush) + 1, num_blocks, "blocks");
        if (sink.Cancelled()) return absl::CancelledError("preprocess cancelled");
      }
    }
    sha[k] = hasher.HexDigest();
    return writer.Commit();
  }));

  m.dtype = s.dtype();
  m.seq_len = s.seq_len;
  m.vocab_size = tokenizer.vocab_size();
  m.tokenizer_sha256 = s.tokenizer_sha256;
  const auto& ids = tokenizer.special_ids();
  for (auto [name, id] :
       {std::pair{"pad", ids.pad}, std::pair{"unk", ids.unk}, std::pair{"cls", ids.cls},
        std::pair{"sep", ids.sep}, std::pair{"mask", ids.mask}}) {
    if (id != bert::tokenizer::kNoTokenId) m.special_token_ids[name] = id;
  }
  m.shuffle_seed = spec.shuffle_seed();
  m.shuffle = kShuffleName;
  m.split_long_documents = s.split_long_documents;
  m.splits["train"].blocks = num_blocks - validation;
  m.splits["validation"].blocks = validation;
  for (size_t k = 0; k < out.size(); ++k) {
    m.splits[out[k].split].shards.push_back({out[k].file, out[k].blocks, sha[k]});
  }
  // The tokenizer travels with the dataset, so `bertctl dataset inspect` can decode it.
  BERT_RETURN_IF_ERROR(tokenizer.Save(out_dir));
  BERT_RETURN_IF_ERROR(WriteFileAtomically(out_dir + "/manifest.json", m.ToJson().dump(2) + "\n"));
  std::error_code ec;
  fs::remove_all(PartsDir(out_dir), ec);
  if (ec)
    sink.Log("warning", absl::StrCat("could not remove ", PartsDir(out_dir), ": ", ec.message()));
  sink.Log("info",
           absl::StrCat("packed ", m.stats.documents, " documents, ", m.stats.tokens,
                        " tokens into ", num_blocks, " blocks of ", s.seq_len, " (", validation,
                        " validation); truncation dropped ", m.stats.tokens_truncated,
                        " tokens, the remainder ", m.stats.tokens_dropped_remainder));
  return m;
}

}  // namespace bert::data
