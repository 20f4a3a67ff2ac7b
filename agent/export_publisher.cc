#include "agent/export_publisher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "protocol/failure_cause.h"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxMarkerBytes = 4096;

bool IsDiskFull(int err) { return err == ENOSPC || err == EFBIG || err == EDQUOT; }

// A failure of `op` on `path` with errno `err`: disk full or INTERNAL.
absl::Status CopyFailure(absl::string_view op, const std::string& path, int err) {
  if (IsDiskFull(err)) {
    return protocol::StageFailure(
        v1::INTERNAL, absl::StrCat("export: disk full: ", op, " ", path, ": ", std::strerror(err)));
  }
  return protocol::StageFailure(v1::INTERNAL,
                                absl::StrCat("export: ", op, " ", path, ": ", std::strerror(err)));
}

absl::Status Refused(const std::string& out_dir, absl::string_view why) {
  return protocol::StageFailure(
      v1::SPEC_ERROR,
      absl::StrCat("output.dir '", out_dir, "' ", why,
                   "; an export goes only to a new or empty directory, or to one holding an "
                   "earlier export of the same job (marked by ",
                   kExportMarker, "); nothing was changed there"));
}

// The job id in dir/kExportMarker, or "" when there is none (or it is not a
// small regular file).
std::string MarkerJob(const fs::path& dir) {
  const std::string path = (dir / kExportMarker).string();
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<size_t>(st.st_size) > kMaxMarkerBytes) {
    return "";
  }
  auto text = ReadFile(path);
  if (!text.ok()) return "";
  return std::string(absl::StripTrailingAsciiWhitespace(*text));
}

// Copies one regular file, then fsyncs it.
absl::Status CopyFile(const fs::path& from, const fs::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return CopyFailure("open", from.string(), errno);
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    return CopyFailure("create", to.string(), err);
  }
  std::string buf(1 << 20, '\0');
  absl::Status status;
  while (status.ok()) {
    const ssize_t got = ::read(in, buf.data(), buf.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      status = CopyFailure("read", from.string(), errno);
      break;
    }
    if (got == 0) break;
    for (ssize_t done = 0; done < got;) {
      const ssize_t put = ::write(out, buf.data() + done, got - done);
      if (put < 0 && errno == EINTR) continue;
      if (put < 0) {
        status = CopyFailure("write", to.string(), errno);
        break;
      }
      done += put;
    }
  }
  if (status.ok() && ::fsync(out) != 0) status = CopyFailure("fsync", to.string(), errno);
  ::close(in);
  if (::close(out) != 0 && status.ok()) status = CopyFailure("close", to.string(), errno);
  return status;
}

// Copies the tree `from` (regular files and directories; nothing else) into
// the existing directory `to`.
absl::Status CopyModel(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(from, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path dest = to / fs::relative(it->path(), from);
    const fs::file_status st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st)) {
      if (::mkdir(dest.c_str(), 0755) != 0) return CopyFailure("mkdir", dest.string(), errno);
    } else if (fs::is_regular_file(st)) {
      BERT_RETURN_IF_ERROR(CopyFile(it->path(), dest));
    }
  }
  if (ec) return CopyFailure("list", from.string(), ec.value());
  return absl::OkStatus();
}

absl::Status WriteMarker(const fs::path& dir, const std::string& job_id) {
  const fs::path path = dir / kExportMarker;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return CopyFailure("create", path.string(), errno);
  const std::string text = job_id + "\n";
  absl::Status status;
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    status = CopyFailure("write", path.string(), errno != 0 ? errno : EIO);
  } else if (::fsync(fd) != 0) {
    status = CopyFailure("fsync", path.string(), errno);
  }
  ::close(fd);
  return status;
}

}  // namespace

absl::Status CheckExportTarget(const std::string& out_dir, const std::string& job_id) {
  struct stat st;
  if (::lstat(out_dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Refused(out_dir, absl::StrCat("cannot be examined (", std::strerror(errno), ")"));
  }
  if (!S_ISDIR(st.st_mode)) return Refused(out_dir, "exists and is not a directory");
  std::error_code ec;
  if (fs::is_empty(out_dir, ec) && !ec) return absl::OkStatus();
  const std::string owner = MarkerJob(out_dir);
  if (owner.empty()) return Refused(out_dir, "holds files that no export of this job wrote");
  if (owner != job_id) {
    return Refused(out_dir, absl::StrCat("holds the export of another job (", owner, ")"));
  }
  return absl::OkStatus();
}

absl::Status PublishExport(const std::string& model_dir, const std::string& out_dir,
                           const std::string& job_id) {
  BERT_RETURN_IF_ERROR(CheckExportTarget(out_dir, job_id));
  const fs::path out(out_dir);
  const fs::path parent = out.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return CopyFailure("mkdir", parent.string(), ec.value());

  // Temporary siblings are ours alone: named after the job, removed only when
  // they carry our marker (or are the copy this call is making).
  const std::string leaf = out.filename().string();
  std::string job_tag = job_id;  // safe in a file name
  for (char& c : job_tag) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  const fs::path tmp = parent / absl::StrCat(".", leaf, ".bertd-tmp-", job_tag);
  const fs::path old = parent / absl::StrCat(".", leaf, ".bertd-old-", job_tag);
  for (const fs::path& p : {tmp, old}) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    if (!S_ISDIR(st.st_mode) || MarkerJob(p) != job_id) {
      return Refused(out_dir, absl::StrCat("has a sibling ", p.string(),
                                           " that is not this job's earlier export"));
    }
    fs::remove_all(p, ec);
  }

  // The marker goes in first, so that a copy cut short (a crash) is still
  // recognised as ours by the next run; only a whole copy is renamed into place.
  if (::mkdir(tmp.c_str(), 0755) != 0) return CopyFailure("mkdir", tmp.string(), errno);
  absl::Status copied = WriteMarker(tmp, job_id);
  if (copied.ok()) copied = CopyModel(model_dir, tmp);
  if (copied.ok()) copied = SyncDirectory(tmp.string());
  if (!copied.ok()) {
    fs::remove_all(tmp, ec);  // ours: created by this call
    return copied;
  }

  const bool replacing = ::access(out.c_str(), F_OK) == 0;
  if (replacing && !fs::is_empty(out, ec)) {
    if (::rename(out.c_str(), old.c_str()) != 0) {
      const int err = errno;
      fs::remove_all(tmp, ec);
      return CopyFailure("rename", out.string(), err);
    }
  } else if (replacing) {
    ::rmdir(out.c_str());  // empty: rename() onto it works too, but be explicit
  }
  if (::rename(tmp.c_str(), out.c_str()) != 0) {
    const int err = errno;
    if (replacing) (void)::rename(old.c_str(), out.c_str());
    fs::remove_all(tmp, ec);
    return CopyFailure("rename", tmp.string(), err);
  }
  BERT_RETURN_IF_ERROR(SyncDirectory(parent.string()));
  fs::remove_all(old, ec);
  return absl::OkStatus();
}

}  // namespace bert::agent
