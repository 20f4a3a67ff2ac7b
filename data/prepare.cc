#include "data/prepare.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/atomic_file.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "data/doc_hash.h"
#include "data/document_reader.h"
#include "data/input_plan.h"
#include "data/line_reader.h"
#include "data/parallel_for.h"
#include "data/utf8.h"

namespace bert::data {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kDefaultShardBytes = 64ULL << 20;
constexpr size_t kFlushBytes = 1 << 20;
constexpr uint64_t kDedupBytesPerDocument = 40;  // flat_hash_set<DocHash> with headroom

std::string PartsDir(const std::string& out_dir) { return out_dir + "/parts"; }
std::string UnitBase(const std::string& out_dir, size_t unit) {
  return absl::StrFormat("%s/unit-%06d", PartsDir(out_dir), unit);
}
std::string WorkerFile(const std::string& out_dir, int i, int n) {
  return absl::StrFormat("%s/worker-%05d-of-%05d.json", PartsDir(out_dir), i, n);
}

bool IsBlankText(std::string_view text) {
  return text.find_first_not_of(" \t\f\v") == std::string_view::npos;
}

absl::StatusOr<nlohmann::json> ReadJson(const std::string& path) {
  BERT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::DataLossError(absl::StrCat(path, ": not a JSON object"));
  }
  return json;
}

// Shared state of one PrepareWorker call.
struct WorkerContext {
  const bert::v1::CorpusSpec& corpus;
  const std::string& out_dir;
  bool skip_bad_lines;
  ProgressSink& sink;
  uint64_t total_bytes;
  std::atomic<uint64_t> done_bytes{0};
};

// Reads one unit and writes unit-N.txt (documents), unit-N.hash (16 bytes per
// document) and, last, unit-N.json (counts, SHA-256, stats).
absl::Status ProcessUnit(WorkerContext& ctx, size_t index, const InputUnit& unit,
                         CorpusStats* stats_out) {
  const bert::v1::SourceSpec& source = ctx.corpus.sources(unit.source);
  CorpusStats stats;
  BERT_ASSIGN_OR_RETURN(auto reader,
                        DocumentReader::Open(unit, source, ctx.skip_bad_lines, &stats));
  const std::string base = UnitBase(ctx.out_dir, index);
  BERT_ASSIGN_OR_RETURN(AtomicFileWriter text_file, AtomicFileWriter::Open(base + ".txt"));
  BERT_ASSIGN_OR_RETURN(AtomicFileWriter hash_file, AtomicFileWriter::Open(base + ".hash"));
  Sha256 sha;
  std::string out, hashes, text;
  uint64_t reported = 0;
  auto flush = [&]() -> absl::Status {
    sha.Update(out);
    BERT_RETURN_IF_ERROR(text_file.Append(out));
    BERT_RETURN_IF_ERROR(hash_file.Append(hashes));
    out.clear();
    hashes.clear();
    uint64_t delta = stats.input_bytes - reported;
    reported = stats.input_bytes;
    ctx.sink.Progress(ctx.done_bytes += delta, ctx.total_bytes, "bytes");
    if (ctx.sink.Cancelled()) return absl::CancelledError("prepare cancelled");
    return absl::OkStatus();
  };
  while (true) {
    BERT_ASSIGN_OR_RETURN(bool more, reader->Next(&text));
    if (!more) break;
    if (ctx.corpus.drop_empty() && IsBlankText(text)) {
      ++stats.empty_dropped;
      continue;
    }
    if (ctx.corpus.min_chars() > 0 &&
        CountCodePoints(text) < static_cast<size_t>(ctx.corpus.min_chars())) {
      ++stats.short_dropped;
      continue;
    }
    ++stats.documents;
    stats.bytes += text.size();
    out.append(text);
    out.push_back('\n');
    DocHash h = HashDocument(text);
    hashes.append(reinterpret_cast<const char*>(&h), sizeof(h));
    if (out.size() >= kFlushBytes) BERT_RETURN_IF_ERROR(flush());
  }
  BERT_RETURN_IF_ERROR(flush());
  for (const std::string& example : reader->skip_examples()) {
    ctx.sink.Log("warning", absl::StrCat("skipped ", example));
  }
  const uint64_t file_bytes = text_file.bytes_written();
  BERT_RETURN_IF_ERROR(text_file.Commit());
  BERT_RETURN_IF_ERROR(hash_file.Commit());
  nlohmann::json info = {{"unit", index},
                         {"path", unit.path},
                         {"start", unit.start},
                         {"documents", stats.documents},
                         {"file_bytes", file_bytes},
                         {"sha256", sha.HexDigest()},
                         {"stats", stats.ToJson()}};
  BERT_RETURN_IF_ERROR(WriteFileAtomically(base + ".json", info.dump(2) + "\n"));
  *stats_out = stats;
  return absl::OkStatus();
}

struct UnitInfo {
  uint64_t documents = 0;
  uint64_t file_bytes = 0;
  std::string sha256;
  bool first_of_file = false;
  CorpusStats stats;
};

absl::StatusOr<UnitInfo> ReadUnitInfo(const std::string& out_dir, size_t index) {
  const std::string path = UnitBase(out_dir, index) + ".json";
  BERT_ASSIGN_OR_RETURN(nlohmann::json json, ReadJson(path));
  UnitInfo info;
  if (!json.contains("documents") || !json["documents"].is_number_unsigned() ||
      !json.contains("file_bytes") || !json["file_bytes"].is_number_unsigned() ||
      !json.contains("sha256") || !json["sha256"].is_string() || !json.contains("start") ||
      !json.contains("stats")) {
    return absl::DataLossError(absl::StrCat(path, ": missing fields"));
  }
  info.documents = json["documents"].get<uint64_t>();
  info.file_bytes = json["file_bytes"].get<uint64_t>();
  info.sha256 = json["sha256"].get<std::string>();
  info.first_of_file = json["start"].get<uint64_t>() == 0;
  auto stats = CorpusStats::FromJson(json["stats"]);
  if (!stats.ok()) return absl::DataLossError(absl::StrCat(path, ": ", stats.status().message()));
  info.stats = *stats;
  return info;
}

// Marks later copies of a document (in unit order, then line order) in
// `duplicate` (one flag per document, units concatenated). Documents are split
// into hash partitions so the index stays under `memory_bytes`.
absl::Status FindDuplicates(const std::string& out_dir, const std::vector<UnitInfo>& units,
                            uint64_t memory_bytes, std::vector<bool>* duplicate,
                            ProgressSink& sink) {
  uint64_t total = 0;
  for (const UnitInfo& u : units) total += u.documents;
  duplicate->assign(total, false);
  if (memory_bytes == 0) memory_bytes = 1;
  const uint64_t partitions =
      std::max<uint64_t>(1, (total * kDedupBytesPerDocument + memory_bytes - 1) / memory_bytes);
  if (partitions > 1) {
    sink.Log("info", absl::StrCat("deduplicating ", total, " documents in ", partitions,
                                  " passes to stay within ", memory_bytes, " bytes"));
  }
  std::vector<DocHash> chunk(1 << 16);
  for (uint64_t p = 0; p < partitions; ++p) {
    absl::flat_hash_set<DocHash, DocHashHasher> seen;
    seen.reserve(total / partitions + 16);
    uint64_t doc = 0;
    for (size_t u = 0; u < units.size(); ++u) {
      const std::string path = UnitBase(out_dir, u) + ".hash";
      BERT_ASSIGN_OR_RETURN(auto stream, OpenInputStream(path, Compression::kNone));
      uint64_t left = units[u].documents;
      while (left > 0) {
        size_t want = std::min<uint64_t>(left, chunk.size()) * sizeof(DocHash);
        size_t got_total = 0;
        char* dst = reinterpret_cast<char*>(chunk.data());
        while (got_total < want) {
          BERT_ASSIGN_OR_RETURN(size_t got, stream->Read(dst + got_total, want - got_total));
          if (got == 0) {
            return absl::DataLossError(
                absl::StrCat(path, ": shorter than its ", units[u].documents, " documents"));
          }
          got_total += got;
        }
        size_t count = want / sizeof(DocHash);
        for (size_t k = 0; k < count; ++k, ++doc) {
          if (chunk[k].hi % partitions != p) continue;
          if (!seen.insert(chunk[k]).second) (*duplicate)[doc] = true;
        }
        left -= count;
      }
      if (sink.Cancelled()) return absl::CancelledError("prepare cancelled");
    }
  }
  return absl::OkStatus();
}

// Publishes `from` under `to` without copying: a hard link to a temporary name,
// renamed over `to`. The source stays, so a crashed finalize can be rerun.
absl::Status LinkAtomically(const std::string& from, const std::string& to) {
  const std::string temp = absl::StrCat(to, ".tmp-", ::getpid(), "-link");
  ::unlink(temp.c_str());
  if (::link(from.c_str(), temp.c_str()) != 0) return PosixError("link", temp, errno);
  if (::rename(temp.c_str(), to.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return PosixError("rename", to, err);
  }
  return absl::OkStatus();
}

// Copies the documents of unit-N.txt not flagged in `duplicate[first..]` to `to`.
absl::StatusOr<PreparedShard> FilterUnit(const std::string& from, const std::string& to,
                                         const std::vector<bool>& duplicate, uint64_t first) {
  BERT_ASSIGN_OR_RETURN(auto stream, OpenInputStream(from, Compression::kNone));
  LineReader lines(std::move(stream));
  BERT_ASSIGN_OR_RETURN(AtomicFileWriter writer, AtomicFileWriter::Open(to));
  Sha256 sha;
  PreparedShard shard;
  std::string out;
  std::string_view line;
  uint64_t doc = first;
  while (true) {
    BERT_ASSIGN_OR_RETURN(bool more, lines.Next(&line));
    if (!more) break;
    if (doc >= duplicate.size()) {
      return absl::DataLossError(absl::StrCat(from, ": more documents than recorded"));
    }
    if (!duplicate[doc++]) {
      out.append(line.data(), line.size());
      out.push_back('\n');
      ++shard.documents;
    }
    if (out.size() >= kFlushBytes) {
      sha.Update(out);
      BERT_RETURN_IF_ERROR(writer.Append(out));
      out.clear();
    }
  }
  sha.Update(out);
  BERT_RETURN_IF_ERROR(writer.Append(out));
  shard.bytes = writer.bytes_written();
  shard.sha256 = sha.HexDigest();
  BERT_RETURN_IF_ERROR(writer.Commit());
  return shard;
}

}  // namespace

absl::Status PrepareWorker(const bert::v1::CorpusSpec& corpus, const std::string& out_dir,
                           const PrepareOptions& options, ProgressSink& sink) {
  if (options.num_workers < 1 || options.worker_index < 0 ||
      options.worker_index >= options.num_workers) {
    return absl::InvalidArgumentError(absl::StrCat("prepare: worker ", options.worker_index, " of ",
                                                   options.num_workers, " is invalid"));
  }
  const std::string& on_error = corpus.on_error();
  if (!on_error.empty() && on_error != "fail" && on_error != "skip") {
    return absl::InvalidArgumentError(
        absl::StrCat("corpus.on_error: '", on_error, "' is not 'fail' or 'skip'"));
  }
  if (corpus.min_chars() < 0) {
    return absl::InvalidArgumentError("corpus.min_chars: must not be negative");
  }
  const uint64_t unit_bytes =
      corpus.shard_size_bytes() > 0 ? corpus.shard_size_bytes() : kDefaultShardBytes;
  BERT_ASSIGN_OR_RETURN(std::vector<InputUnit> units, PlanInputUnits(corpus, unit_bytes, options.input_policy));
  std::error_code ec;
  fs::create_directories(PartsDir(out_dir), ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", PartsDir(out_dir), ": ", ec.message()));

  std::vector<size_t> mine;
  uint64_t total_bytes = 0;
  for (size_t u = static_cast<size_t>(options.worker_index); u < units.size();
       u += static_cast<size_t>(options.num_workers)) {
    mine.push_back(u);
    total_bytes += units[u].file_bytes;
  }
  WorkerContext ctx{corpus, out_dir, on_error == "skip", sink, total_bytes};
  std::vector<CorpusStats> stats(mine.size());
  BERT_RETURN_IF_ERROR(ParallelFor(mine.size(), options.threads, [&](size_t k) {
    return ProcessUnit(ctx, mine[k], units[mine[k]], &stats[k]);
  }));
  CorpusStats total;
  for (const CorpusStats& s : stats) total.Add(s);
  nlohmann::json worker = {{"format", "bert-prepare-worker"},
                           {"worker_index", options.worker_index},
                           {"num_workers", options.num_workers},
                           {"num_units", units.size()},
                           {"units", mine},
                           {"deduplicate", corpus.deduplicate()},
                           {"stats", total.ToJson()}};
  BERT_RETURN_IF_ERROR(WriteFileAtomically(
      WorkerFile(out_dir, options.worker_index, options.num_workers), worker.dump(2) + "\n"));
  sink.Log("info", absl::StrCat("prepare worker ", options.worker_index, "/", options.num_workers,
                                ": ", mine.size(), " units, ", total.documents, " documents, ",
                                total.skipped(), " lines skipped"));
  return absl::OkStatus();
}

absl::StatusOr<PreparedCorpus> FinalizePrepare(const std::string& out_dir, int num_workers,
                                               const FinalizePrepareOptions& options,
                                               ProgressSink& sink) {
  if (::access((out_dir + "/manifest.json").c_str(), F_OK) == 0) {
    return PreparedCorpus::Load(out_dir);
  }
  if (num_workers < 1) return absl::InvalidArgumentError("prepare: num_workers must be >= 1");
  // Which units each worker wrote; together they must cover the plan exactly once.
  int64_t num_units = -1;
  bool deduplicate = false;
  std::vector<int> owner;
  for (int i = 0; i < num_workers; ++i) {
    const std::string path = WorkerFile(out_dir, i, num_workers);
    if (::access(path.c_str(), F_OK) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("prepare worker ", i, " of ", num_workers,
                                                        " has not finished (no ", path, ")"));
    }
    BERT_ASSIGN_OR_RETURN(nlohmann::json worker, ReadJson(path));
    if (!worker.contains("num_units") || !worker["num_units"].is_number_unsigned() ||
        !worker.contains("units") || !worker["units"].is_array()) {
      return absl::DataLossError(absl::StrCat(path, ": missing num_units or units"));
    }
    int64_t n = worker["num_units"].get<int64_t>();
    if (num_units >= 0 && n != num_units) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": planned ", n, " input units, another worker ", num_units,
                       " (did the sources change between workers?)"));
    }
    num_units = n;
    deduplicate = worker.value("deduplicate", false);
    owner.resize(num_units, -1);
    for (const auto& u : worker["units"]) {
      int64_t unit = u.get<int64_t>();
      if (unit < 0 || unit >= num_units || owner[unit] != -1) {
        return absl::DataLossError(absl::StrCat(path, ": unit ", unit, " is invalid or repeated"));
      }
      owner[unit] = i;
    }
  }
  for (int64_t u = 0; u < num_units; ++u) {
    if (owner[u] < 0) return absl::DataLossError(absl::StrCat("no worker wrote unit ", u));
  }
  std::vector<UnitInfo> units(num_units);
  CorpusStats stats;
  for (int64_t u = 0; u < num_units; ++u) {
    BERT_ASSIGN_OR_RETURN(units[u], ReadUnitInfo(out_dir, u));
    stats.Add(units[u].stats);
    stats.input_files += units[u].first_of_file;
  }

  std::vector<bool> duplicate;
  uint64_t total_documents = 0;
  for (const UnitInfo& u : units) total_documents += u.documents;
  if (deduplicate) {
    BERT_RETURN_IF_ERROR(
        FindDuplicates(out_dir, units, options.dedup_memory_bytes, &duplicate, sink));
  } else {
    duplicate.assign(total_documents, false);
  }

  // One shard per unit that keeps a document, numbered in document order.
  struct Job {
    size_t unit;
    uint64_t first_doc;
    uint64_t removed;
  };
  std::vector<Job> jobs;
  uint64_t first = 0;
  for (size_t u = 0; u < units.size(); ++u) {
    uint64_t removed = 0;
    for (uint64_t d = first; d < first + units[u].documents; ++d) removed += duplicate[d];
    stats.duplicates_removed += removed;
    if (units[u].documents > removed) jobs.push_back({u, first, removed});
    first += units[u].documents;
  }
  stats.documents = 0;
  stats.bytes = 0;
  PreparedCorpus corpus;
  corpus.dir = out_dir;
  corpus.shards.resize(jobs.size());
  std::atomic<uint64_t> done{0};
  BERT_RETURN_IF_ERROR(ParallelFor(jobs.size(), options.threads, [&](size_t k) -> absl::Status {
    const Job& job = jobs[k];
    const std::string from = UnitBase(out_dir, job.unit) + ".txt";
    const std::string name = absl::StrFormat("corpus-%05d.txt", k);
    const std::string to = out_dir + "/" + name;
    PreparedShard shard;
    if (job.removed == 0) {
      BERT_RETURN_IF_ERROR(LinkAtomically(from, to));
      shard.documents = units[job.unit].documents;
      shard.bytes = units[job.unit].file_bytes;
      shard.sha256 = units[job.unit].sha256;
    } else {
      BERT_ASSIGN_OR_RETURN(shard, FilterUnit(from, to, duplicate, job.first_doc));
    }
    shard.file = name;
    corpus.shards[k] = shard;
    sink.Progress(done += 1, jobs.size(), "shards");
    return absl::OkStatus();
  }));
  for (const PreparedShard& s : corpus.shards) {
    stats.documents += s.documents;
    stats.bytes += s.bytes - s.documents;  // without the newlines
  }
  corpus.stats = stats;
  BERT_RETURN_IF_ERROR(SyncDirectory(out_dir));
  BERT_RETURN_IF_ERROR(corpus.Save());
  std::error_code ec;
  fs::remove_all(PartsDir(out_dir), ec);
  if (ec)
    sink.Log("warning", absl::StrCat("could not remove ", PartsDir(out_dir), ": ", ec.message()));
  sink.Log("info", absl::StrCat("prepared corpus: ", stats.documents, " documents in ",
                                corpus.shards.size(), " shards, ", stats.duplicates_removed,
                                " duplicates removed, ", stats.skipped(), " lines skipped"));
  return corpus;
}

}  // namespace bert::data
