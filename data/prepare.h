// The prepare stage: raw sources -> a prepared corpus of clean text shards.
//
// How the stages call this (the agent, for a job with prep_shards = n):
//
//   // on n CPU agents, in parallel, i = 0..n-1, all writing into the same DIR:
//   BERT_RETURN_IF_ERROR(bert::data::PrepareWorker(spec.corpus(), DIR, {i, n}, sink));
//   // once all n have succeeded, on one agent:
//   BERT_ASSIGN_OR_RETURN(PreparedCorpus corpus, bert::data::FinalizePrepare(DIR, n, {}, sink));
//   // DIR/manifest.json now lists the shards (see prepared_corpus.h); the
//   // tokenizer stage trains on corpus.ShardPath(k) (one text per line) and the
//   // preprocess stage reads DIR (preprocess.h).
//
// The sources are planned into input units (input_plan.h) that depend only on the
// files and the shard size; worker i takes units u with u % n == i, filters them
// (bad lines, empty and short texts) into DIR/parts/, and FinalizePrepare removes
// exact duplicates across ALL sources, keeping the first copy in document order.
// So the corpus is byte-identical for every n. A worker or the finalize step can
// be rerun after a crash: every file is written atomically and the manifest last.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/spec.pb.h"
#include "common/progress_sink.h"
#include "data/input_plan.h"
#include "data/prepared_corpus.h"

namespace bert::data {

struct PrepareOptions {
  int worker_index = 0;
  int num_workers = 1;
  int threads = 0;  // threads in this process; 0 = one per core
  InputPolicy input_policy = {};  // which files the sources may name (input_plan.h)
};

struct FinalizePrepareOptions {
  int threads = 0;                           // 0 = one per core
  uint64_t dedup_memory_bytes = 1ULL << 30;  // cap of the duplicate index (more passes if exceeded)
};

// Writes this worker's part of the corpus into out_dir/parts/ (out_dir is created).
absl::Status PrepareWorker(const bert::v1::CorpusSpec& corpus, const std::string& out_dir,
                           const PrepareOptions& options, ProgressSink& sink);

// Merges the n workers' parts into the prepared corpus in out_dir and removes
// out_dir/parts. Returns the existing corpus when out_dir already holds one.
absl::StatusOr<PreparedCorpus> FinalizePrepare(const std::string& out_dir, int num_workers,
                                               const FinalizePrepareOptions& options,
                                               ProgressSink& sink);

}  // namespace bert::data
