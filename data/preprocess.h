// The preprocess stage: prepared corpus + tokenizer -> packed dataset
// (docs/dataset-format.md), as the article's tokenize / group_texts / shuffle.
//
// How the stages call this (the agent, for a job with prep_shards = n):
//
//   // on n CPU agents, in parallel, i = 0..n-1, all writing into the same DIR:
//   BERT_RETURN_IF_ERROR(bert::data::PreprocessWorker(CORPUS_DIR, TOKENIZER, spec.preprocess(),
//                                                     DIR, {i, n}, sink));
//   // once all n have succeeded, on one agent:
//   BERT_ASSIGN_OR_RETURN(DatasetManifest m, bert::data::FinalizePreprocess(
//       CORPUS_DIR, TOKENIZER, spec.preprocess(), DIR, n, {}, sink));
//   // DIR/manifest.json is written last; the trainer memory-maps DIR (packed_dataset.h).
//
// Worker i tokenizes the prepared shards k with k % n == i into DIR/parts/
// (each text: [CLS] ids [SEP], truncated to max_seq_length or, with
// split_long_documents, cut into several such pieces). Finalize concatenates the
// streams in document order, cuts blocks of max_seq_length (dropping the
// remainder), orders them by np.random.default_rng(seed).permutation (the
// `datasets` shuffle, numpy_permutation.h), takes the first
// ceil(validation_fraction * blocks) of that order as the validation split and
// writes the shards and, last, the manifest. The dataset is byte-identical for
// every n and thread count. Memory: the permutation (8 bytes a block) plus a few
// MiB of buffers per thread; a worker holds about 16 MiB of text per thread.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bert/v1/spec.pb.h"
#include "common/progress_sink.h"
#include "formats/dataset_manifest.h"

namespace bert::data {

struct PreprocessOptions {
  int worker_index = 0;
  int num_workers = 1;
  int threads = 0;  // threads in this process; 0 = one per core
};

struct FinalizePreprocessOptions {
  int threads = 0;                      // 0 = one per core
  uint64_t shard_bytes = 256ULL << 20;  // target size of a dataset shard
};

// Tokenizes this worker's part of the prepared corpus in corpus_dir into out_dir/parts/.
absl::Status PreprocessWorker(const std::string& corpus_dir, const std::string& tokenizer_path,
                              const bert::v1::PreprocessSpec& spec, const std::string& out_dir,
                              const PreprocessOptions& options, ProgressSink& sink);

// Writes the packed dataset into out_dir from the n workers' parts, then removes
// out_dir/parts. Returns the existing manifest when out_dir already holds a dataset.
absl::StatusOr<formats::DatasetManifest> FinalizePreprocess(const std::string& corpus_dir,
                                                   const std::string& tokenizer_path,
                                                   const bert::v1::PreprocessSpec& spec,
                                                   const std::string& out_dir, int num_workers,
                                                   const FinalizePreprocessOptions& options,
                                                   ProgressSink& sink);

}  // namespace bert::data
