// Fuzzes the packed dataset's manifest.json parser (formats::DatasetManifest),
// and, for a manifest that parses, its serialisation, the sizes a reader
// derives from it, and the reader (formats::PackedDataset) over shards of the
// manifest's sizes (when small) written to a temporary directory.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "formats/dataset_manifest.h"
#include "formats/packed_dataset.h"

namespace {

// A scratch directory for the process, removed when it exits.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    char made[] = "/tmp/bert-fuzz-dataset-XXXXXX";
    if (mkdtemp(made) == nullptr) std::abort();
    path = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

const std::string& TempDir() {
  static const ScratchDir dir;
  return dir.path;
}

void WriteFile(const std::string& path, const char* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// Writes the manifest and its shards (zeros; a shard over 64 KiB is left
// out, so Open reports it missing), opens the dataset and reads a few blocks.
void OpenDataset(std::string_view text, const bert::formats::DatasetManifest& m) {
  const std::string& dir = TempDir();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    std::filesystem::remove(entry.path(), ec);
  const std::string zeros(uint64_t{64} << 10, '\0');
  for (const auto& [name, split] : m.splits) {
    for (const auto& shard : split.shards) {
      const uint64_t bytes = shard.blocks * m.block_bytes();  // FromJson: no overflow
      if (bytes <= zeros.size()) WriteFile(dir + "/" + shard.file, zeros.data(), bytes);
    }
  }
  WriteFile(dir + "/manifest.json", text.data(), text.size());
  auto ds = bert::formats::PackedDataset::Open(dir, /*verify=*/true);
  if (!ds.ok()) return;
  for (const auto& [name, split] : m.splits) {
    const uint64_t blocks = ds->num_blocks(name);
    for (uint64_t index : {uint64_t{0}, blocks / 2, blocks - 1, blocks, ~uint64_t{0}}) {
      (void)ds->Block(name, index);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto manifest = bert::formats::DatasetManifest::Parse(text, "fuzz/manifest.json");
  if (!manifest.ok()) return 0;
  // What FromJson promises: seq_len in bounds and no shard's bytes overflow.
  if (manifest->seq_len < bert::formats::kMinSeqLen ||
      manifest->seq_len > bert::formats::kMaxSeqLen)
    std::abort();
  for (const auto& [name, split] : manifest->splits) {
    uint64_t sum = 0;
    for (const auto& shard : split.shards) {
      uint64_t bytes = 0;
      if (__builtin_mul_overflow(shard.blocks, manifest->block_bytes(), &bytes)) std::abort();
      if (__builtin_add_overflow(sum, shard.blocks, &sum)) std::abort();
    }
    if (sum != split.blocks) std::abort();
  }
  auto again = bert::formats::DatasetManifest::FromJson(manifest->ToJson(), "fuzz/again.json");
  if (!again.ok()) std::abort();
  OpenDataset(text, *manifest);
  return 0;
}
