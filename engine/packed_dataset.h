// PackedDataset: a read-only, memory-mapped view of a packed dataset directory
// (docs/dataset-format.md, format version 1).
//
// Open() checks the manifest, every shard's size and (optionally) SHA-256, and
// throws EngineError naming the file and what is wrong. Immutable after Open():
// every const method is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bert::engine {

struct SpecialTokenIds {
  int64_t pad = 0;
  int64_t unk = 1;
  int64_t cls = 2;
  int64_t sep = 3;
  int64_t mask = 4;
};

class MappedFile;

// One split ("train", "validation") of a dataset: blocks of seq_len token ids.
class PackedSplit {
 public:
  PackedSplit() = default;
  int64_t blocks() const { return total_blocks_; }
  int64_t seq_len() const { return seq_len_; }
  // Copies global block `index` (0 <= index < blocks()) into out[0, seq_len).
  void ReadBlock(int64_t index, int64_t* out) const;

 private:
  friend class PackedDataset;
  struct Shard {
    std::shared_ptr<MappedFile> file;
    int64_t first_block = 0;
    int64_t blocks = 0;
  };
  std::vector<Shard> shards_;
  std::vector<int64_t> shard_of_block_start_;  // prefix sums: first global block of each shard
  int64_t total_blocks_ = 0;
  int64_t seq_len_ = 0;
  int token_bytes_ = 2;  // 2 (uint16) or 4 (uint32)
};

class PackedDataset {
 public:
  // Opens `dir`; with `verify_checksums`, hashes every shard against the manifest.
  static PackedDataset Open(const std::string& dir, bool verify_checksums);

  int64_t seq_len() const { return seq_len_; }
  int64_t vocab_size() const { return vocab_size_; }
  const SpecialTokenIds& special_ids() const { return special_ids_; }
  const std::string& tokenizer_sha256() const { return tokenizer_sha256_; }
  bool has_split(const std::string& name) const;
  // The named split; throws EngineError(kDataError) if the manifest lacks it.
  const PackedSplit& split(const std::string& name) const;

 private:
  std::string dir_;
  int64_t seq_len_ = 0;
  int64_t vocab_size_ = 0;
  SpecialTokenIds special_ids_;
  std::string tokenizer_sha256_;
  std::vector<std::pair<std::string, PackedSplit>> splits_;
};

}  // namespace bert::engine
