#include "protocol/output_dir.h"

#include <algorithm>
#include <filesystem>
#include <vector>

namespace bert::protocol {

bool ExportWritesOutputDir(const std::string& output_dir, const std::string& shared_output_root) {
  namespace fs = std::filesystem;
  if (output_dir.empty() || shared_output_root.empty()) return false;
  const fs::path dir = fs::path(output_dir).lexically_normal();
  const fs::path root = fs::path(shared_output_root).lexically_normal();
  if (!dir.is_absolute() || !root.is_absolute()) return false;
  // Compare part by part ("/a/bc" is not under "/a/b"); a trailing '/' leaves
  // an empty last part, which is not a name.
  std::vector<fs::path> root_parts, dir_parts;
  for (const fs::path& part : root) if (!part.empty()) root_parts.push_back(part);
  for (const fs::path& part : dir) if (!part.empty()) dir_parts.push_back(part);
  return dir_parts.size() >= root_parts.size() &&
         std::equal(root_parts.begin(), root_parts.end(), dir_parts.begin());
}

}  // namespace bert::protocol
