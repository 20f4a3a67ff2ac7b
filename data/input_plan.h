// Expands a CorpusSpec's sources into input units: the pieces prepare works on.
//
// Files come from paths, globs and directories (recursive, hidden entries
// skipped), each source's files in sorted order, sources in spec order.
// Uncompressed files larger than `unit_bytes` are cut into several units at
// document boundaries (after a '\n'; for "blank_line" sources, after a blank
// line), found by reading the file around each cut, so the plan depends only on
// the files and `unit_bytes`, never on how many workers share it. Compressed
// files are one unit each.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bert/v1/spec.pb.h"
#include "data/input_stream.h"

namespace bert::data {

// What a spec may make this process read. Every file a source names (directly,
// by a glob, or inside a directory) must resolve, symlinks followed, to a
// regular file under one of `roots`; a violation is an INVALID_ARGUMENT error
// (a DATA_ERROR for the stage) naming the path and the rule.
struct InputPolicy {
  std::vector<std::string> roots;  // absolute directories; empty = any path
  size_t max_line_bytes = 16 << 20;  // per line, after decompression (line_reader.h)
  // Sources whose files were supplied by the caller instead of found through
  // their paths (the agent: corpus files uploaded from the submitting
  // machine, verified, in the job's own work directory): source index -> its
  // files in order. These are read wherever they lie, outside `roots` too;
  // nothing a spec says can add to them.
  struct SuppliedFile {
    std::string path;  // on this host
    std::string name;  // its name where it came from: "auto" compression and messages use it
  };
  std::map<int, std::vector<SuppliedFile>> supplied = {};
};

struct InputUnit {
  int source = 0;  // index into CorpusSpec.sources
  std::string path;
  Compression compression = Compression::kNone;
  uint64_t start = 0;         // byte range of the (uncompressed) file
  uint64_t end = UINT64_MAX;  // UINT64_MAX = to the end
  uint64_t file_bytes = 0;    // bytes of the file this unit reads (for progress)
  size_t max_line_bytes = 16 << 20;  // from the InputPolicy
  std::vector<std::string> roots;    // canonical InputPolicy roots, checked again at open
};

// The files source `source_index` names, in the order prepare reads them:
// each path in turn, a glob's matches sorted, a directory's regular files
// (recursive, hidden entries skipped) sorted. bertctl expands a spec the same
// way before it uploads. NOT_FOUND naming the path when one matches nothing.
absl::StatusOr<std::vector<std::string>> ExpandSourcePaths(int source_index,
                                                           const bert::v1::SourceSpec& source);

// Errors: a path or glob that matches nothing, an unreadable file, a bad
// setting, a file the policy does not allow.
absl::StatusOr<std::vector<InputUnit>> PlanInputUnits(const bert::v1::CorpusSpec& corpus,
                                                      uint64_t unit_bytes,
                                                      const InputPolicy& policy = {});

// Number of '\n' bytes in [0, offset) of `path` (to turn unit-relative line
// numbers into file line numbers when reporting an error).
absl::StatusOr<uint64_t> CountNewlines(const std::string& path, uint64_t offset);

}  // namespace bert::data
