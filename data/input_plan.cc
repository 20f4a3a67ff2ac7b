#include "data/input_plan.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/posix_error.h"
#include "common/status_macros.h"

namespace bert::data {
namespace {

namespace fs = std::filesystem;

// OK when the policy lets this process read `path`: it resolves (symlinks
// followed) to a regular file under one of the roots.
absl::Status CheckAllowed(int source, const std::string& path, const InputPolicy& policy) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat("corpus.sources[", source, "]: ", path, ": ", ec.message()));
  }
  struct stat st;
  if (::stat(real.c_str(), &st) != 0) return PosixError("stat", path, errno);
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("corpus.sources[", source, "]: ", path,
                     ": not a regular file (corpus inputs must be regular files)"));
  }
  if (policy.roots.empty()) return absl::OkStatus();
  for (const std::string& root : policy.roots) {
    if (IsUnderRoot(real.string(), root)) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "corpus.sources[", source, "]: ", path,
      real.string() == path ? "" : absl::StrCat(" (resolves to ", real.string(), ")"),
      " is outside this agent's data roots (", absl::StrJoin(policy.roots, ", "),
      "); corpus inputs are read only under the directories its operator gave with --data-root"));
}

absl::Status AddDirectory(const std::string& dir, std::vector<std::string>* files) {
  std::error_code ec;
  std::vector<std::string> found;
  auto it =
      fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return absl::InternalError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) found.push_back(it->path().string());
  }
  std::sort(found.begin(), found.end());
  files->insert(files->end(), found.begin(), found.end());
  return absl::OkStatus();
}

absl::Status AddPath(int source, const std::string& pattern, std::vector<std::string>* files) {
  std::vector<std::string> matches;
  if (pattern.find_first_of("*?[") != std::string::npos) {
    glob_t g{};
    int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    if (rc == GLOB_NOMATCH || matches.empty()) {
      return absl::NotFoundError(
          absl::StrCat("corpus.sources[", source, "]: '", pattern, "' matches no file"));
    }
    if (rc != 0) return absl::InternalError(absl::StrCat("glob '", pattern, "' failed"));
  } else {
    matches.push_back(pattern);
  }
  for (const std::string& m : matches) {
    struct stat st;
    if (::stat(m.c_str(), &st) != 0) {
      return absl::NotFoundError(
          absl::StrCat("corpus.sources[", source, "]: ", m, ": ", std::strerror(errno)));
    }
    if (S_ISDIR(st.st_mode)) {
      size_t before = files->size();
      BERT_RETURN_IF_ERROR(AddDirectory(m, files));
      if (files->size() == before) {
        return absl::NotFoundError(
            absl::StrCat("corpus.sources[", source, "]: directory ", m, " holds no file"));
      }
    } else {
      files->push_back(m);  // checked (regular, under a root) by PlanInputUnits
    }
  }
  return absl::OkStatus();
}

// Reads forward from `from` and returns the first document boundary at or after
// it (or `size` when there is none): the start of a line, or for blank-line
// documents the start of the line after a blank line.
absl::StatusOr<uint64_t> FindBoundary(int fd, const std::string& path, uint64_t size, uint64_t from,
                                      bool blank_line_documents) {
  constexpr size_t kWindow = 64 << 10;
  std::string buf(kWindow, '\0');
  bool blank = true;            // the current line holds only whitespace so far
  bool skip_first_line = true;  // the line holding `from - 1` is partial
  uint64_t pos = from - 1;      // a '\n' at from-1 makes `from` itself a line start
  while (pos < size) {
    ssize_t got =
        ::pread(fd, buf.data(), std::min<uint64_t>(kWindow, size - pos), static_cast<off_t>(pos));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return PosixError("read", path, got < 0 ? errno : EIO);
    for (ssize_t i = 0; i < got; ++i) {
      char c = buf[i];
      if (c != '\n') {
        if (c != ' ' && c != '\t' && c != '\r' && c != '\f' && c != '\v') blank = false;
        continue;
      }
      uint64_t next = pos + i + 1;
      if (!blank_line_documents) return next;
      if (!skip_first_line && blank) return next;
      skip_first_line = false;
      blank = true;
    }
    pos += got;
  }
  return size;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ExpandSourcePaths(int source_index,
                                                           const bert::v1::SourceSpec& source) {
  std::vector<std::string> files;
  for (const std::string& p : source.paths()) BERT_RETURN_IF_ERROR(AddPath(source_index, p, &files));
  return files;
}

absl::StatusOr<std::vector<InputUnit>> PlanInputUnits(const bert::v1::CorpusSpec& corpus,
                                                      uint64_t unit_bytes,
                                                      const InputPolicy& given) {
  // Roots compared in canonical form, so that a root reached through a
  // symlink (/tmp -> /private/tmp) still holds its files.
  InputPolicy policy = given;
  for (std::string& root : policy.roots) {
    std::error_code ec;
    const fs::path real = fs::weakly_canonical(fs::absolute(root), ec);
    if (!ec) root = real.string();
    while (root.size() > 1 && root.back() == '/') root.pop_back();
  }
  if (corpus.sources_size() == 0) {
    return absl::InvalidArgumentError("corpus.sources: at least one source is required");
  }
  if (unit_bytes == 0) unit_bytes = 64ULL << 20;
  std::vector<InputUnit> units;
  for (int s = 0; s < corpus.sources_size(); ++s) {
    const bert::v1::SourceSpec& source = corpus.sources(s);
    if (source.paths_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat("corpus.sources[", s, "].paths is empty"));
    }
    const bool blank_line = source.document_separator() == "blank_line";
    // Each file with the name its compression is judged by and the roots
    // its open is checked against again.
    struct File {
      std::string path;
      std::string name;
      std::vector<std::string> roots;
    };
    std::vector<File> files;
    if (auto supplied = policy.supplied.find(s); supplied != policy.supplied.end()) {
      for (const InputPolicy::SuppliedFile& f : supplied->second) {
        BERT_RETURN_IF_ERROR(CheckAllowed(s, f.path, InputPolicy{}));
        std::error_code ec;
        const std::string dir = fs::canonical(f.path, ec).parent_path().string();
        files.push_back({f.path, f.name.empty() ? f.path : f.name, {dir}});
      }
    } else {
      BERT_ASSIGN_OR_RETURN(std::vector<std::string> found, ExpandSourcePaths(s, source));
      for (std::string& path : found) {
        BERT_RETURN_IF_ERROR(CheckAllowed(s, path, policy));
        files.push_back({path, path, policy.roots});
      }
    }
    for (const File& file : files) {
      const std::string& path = file.path;
      BERT_ASSIGN_OR_RETURN(Compression compression,
                            ResolveCompression(source.compression(), file.name));
      struct stat st;
      if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
      const uint64_t size = static_cast<uint64_t>(st.st_size);
      if (compression != Compression::kNone || size <= unit_bytes) {
        units.push_back({s, path, compression, 0, UINT64_MAX, size, policy.max_line_bytes, file.roots});
        continue;
      }
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return PosixError("open", path, errno);
      uint64_t start = 0;
      absl::Status status;
      while (start < size) {
        uint64_t cut = start + unit_bytes;
        uint64_t end = size;
        if (cut < size) {
          auto boundary = FindBoundary(fd, path, size, cut, blank_line);
          if (!boundary.ok()) {
            status = boundary.status();
            break;
          }
          end = *boundary;
        }
        units.push_back(
            {s, path, compression, start, end, end - start, policy.max_line_bytes, file.roots});
        start = end;
      }
      ::close(fd);
      BERT_RETURN_IF_ERROR(status);
    }
  }
  return units;
}

absl::StatusOr<uint64_t> CountNewlines(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PosixError("open", path, errno);
  std::string buf(1 << 20, '\0');
  uint64_t pos = 0, count = 0;
  while (pos < offset) {
    ssize_t got = ::pread(fd, buf.data(), std::min<uint64_t>(buf.size(), offset - pos),
                          static_cast<off_t>(pos));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      ::close(fd);
      return PosixError("read", path, got < 0 ? errno : EIO);
    }
    count += std::count(buf.data(), buf.data() + got, '\n');
    pos += got;
  }
  ::close(fd);
  return count;
}

}  // namespace bert::data
