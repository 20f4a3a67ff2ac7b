// Times the data stages end to end: raw text files -> prepare (read, check,
// deduplicate, shard) -> preprocess (tokenize, pack 512-token blocks, shuffle,
// write shards and manifest), as one worker with all cores.
//
//   bench_data_pipeline train-tokenizer CORPUS OUT_DIR   # vocab 30000, BERT specials
//   bench_data_pipeline run TOKENIZER.json WORK_DIR CORPUS... [--threads N] [--dedup]
//
// Prints key=value lines: seconds per stage, input MB, MB/s end to end, peak RSS.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/progress_sink.h"
#include "data/prepare.h"
#include "data/preprocess.h"
#include "tokenizer/wordpiece_trainer.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "bench_data_pipeline: %s\n", s.ToString().c_str());
  return 1;
}

int TrainTokenizer(const std::string& corpus, const std::string& out) {
  bert::tokenizer::WordPieceTrainerOptions options;
  options.vocab_size = 30000;
  options.special_tokens = bert::tokenizer::WordPieceTrainerOptions::BertSpecialTokens();
  bert::NullProgressSink sink;
  auto tok = bert::tokenizer::TrainFromFiles({corpus}, options, sink);
  if (!tok.ok()) return Fail(tok.status());
  absl::Status s = tok->Save(out);
  if (!s.ok()) return Fail(s);
  std::printf("tokenizer=%s/tokenizer.json vocab_size=%zu\n", out.c_str(), tok->vocab_size());
  return 0;
}

int Run(const std::string& tokenizer, const std::string& work, std::vector<std::string> corpora,
        int threads, bool dedup) {
  namespace fs = std::filesystem;
  fs::remove_all(work);
  fs::create_directories(work);
  bert::v1::CorpusSpec corpus;
  auto* source = corpus.add_sources();
  uint64_t input_bytes = 0;
  for (const std::string& c : corpora) {
    source->add_paths(c);
    input_bytes += fs::file_size(c);
  }
  source->set_format("text");
  corpus.set_drop_empty(true);
  corpus.set_deduplicate(dedup);
  corpus.set_shard_size_bytes(16 << 20);
  bert::v1::PreprocessSpec spec;
  spec.set_max_seq_length(512);
  spec.set_shuffle_seed(34);
  spec.set_validation_fraction(0.01);
  spec.set_memory_limit_mb(2048);
  bert::NullProgressSink sink;

  const std::string prepared = work + "/prepared", dataset = work + "/dataset";
  auto t0 = std::chrono::steady_clock::now();
  absl::Status s = bert::data::PrepareWorker(corpus, prepared, {0, 1, threads}, sink);
  if (!s.ok()) return Fail(s);
  auto c = bert::data::FinalizePrepare(prepared, 1, {threads}, sink);
  if (!c.ok()) return Fail(c.status());
  double prepare_s = Seconds(t0);
  auto t1 = std::chrono::steady_clock::now();
  s = bert::data::PreprocessWorker(prepared, tokenizer, spec, dataset, {0, 1, threads}, sink);
  if (!s.ok()) return Fail(s);
  double tokenize_s = Seconds(t1);
  auto t2 = std::chrono::steady_clock::now();
  auto m = bert::data::FinalizePreprocess(prepared, tokenizer, spec, dataset, 1, {threads}, sink);
  if (!m.ok()) return Fail(m.status());
  double pack_s = Seconds(t2);
  double total_s = Seconds(t0);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const double mb = input_bytes / 1e6;
  std::printf("input_mb=%.2f documents=%llu tokens=%llu blocks=%llu\n", mb,
              static_cast<unsigned long long>(m->stats.documents),
              static_cast<unsigned long long>(m->stats.tokens),
              static_cast<unsigned long long>(m->splits.at("train").blocks +
                                              m->splits.at("validation").blocks));
  std::printf("prepare_seconds=%.3f tokenize_seconds=%.3f pack_seconds=%.3f total_seconds=%.3f\n",
              prepare_s, tokenize_s, pack_s, total_s);
  std::printf("end_to_end_mb_per_s=%.2f tokenize_mb_per_s=%.2f peak_rss_mb=%.1f\n", mb / total_s,
              mb / tokenize_s, ru.ru_maxrss / 1024.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 3 && args[0] == "train-tokenizer") return TrainTokenizer(args[1], args[2]);
  if (args.size() >= 4 && args[0] == "run") {
    int threads = 0;
    bool dedup = false;
    std::vector<std::string> corpora;
    for (size_t i = 3; i < args.size(); ++i) {
      if (args[i] == "--threads" && i + 1 < args.size()) {
        threads = std::atoi(args[++i].c_str());
      } else if (args[i] == "--dedup") {
        dedup = true;
      } else {
        corpora.push_back(args[i]);
      }
    }
    return Run(args[1], args[2], corpora, threads, dedup);
  }
  std::fprintf(stderr,
               "usage: bench_data_pipeline train-tokenizer CORPUS OUT_DIR\n"
               "       bench_data_pipeline run TOKENIZER.json WORK_DIR CORPUS... [--threads N] "
               "[--dedup]\n");
  return 2;
}
