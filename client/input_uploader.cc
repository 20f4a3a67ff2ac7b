#include "client/input_uploader.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sha256.h"
#include "data/input_plan.h"

namespace bert::client {
namespace fs = std::filesystem;
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool IsUnder(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // a trailing '/'
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

// True when `file` (absolute) lies under one of `roots`, as written or with
// its symbolic links resolved (on both sides).
bool UnderAnyRoot(const std::string& file, const std::vector<std::string>& roots) {
  std::error_code ec;
  const fs::path lexical = fs::path(file).lexically_normal();
  const fs::path real = fs::weakly_canonical(file, ec);
  for (const std::string& root : roots) {
    if (root.empty()) continue;
    const fs::path r = fs::path(root).lexically_normal();
    std::error_code rec;
    const fs::path real_root = fs::weakly_canonical(r, rec);
    if (IsUnder(lexical, r) || (!ec && IsUnder(real, r)) ||
        (!ec && !rec && IsUnder(real, real_root))) {
      return true;
    }
  }
  return false;
}

bool Retryable(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition:  // a resume offset bertd disagreed with
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string FormatBytes(int64_t bytes) {
  if (bytes >= (int64_t{1} << 30)) return absl::StrFormat("%.1f GiB", bytes / double(1 << 30));
  if (bytes >= (int64_t{1} << 20)) return absl::StrFormat("%.1f MiB", bytes / double(1 << 20));
  if (bytes >= (int64_t{1} << 10)) return absl::StrFormat("%.1f KiB", bytes / double(1 << 10));
  return absl::StrCat(bytes, " B");
}

absl::StatusOr<UploadMode> ParseUploadMode(const std::string& text) {
  if (text == "auto") return UploadMode::kAuto;
  if (text == "always") return UploadMode::kAlways;
  if (text == "never") return UploadMode::kNever;
  return absl::InvalidArgumentError(
      absl::StrCat("--upload '", text, "': expected auto, always or never"));
}

absl::StatusOr<std::vector<PlannedInput>> PlanUploads(const v1::JobSpec& spec,
                                                      const std::string& spec_dir,
                                                      const v1::ClusterInfo& info,
                                                      UploadMode mode) {
  std::vector<PlannedInput> planned;
  if (mode == UploadMode::kNever) return planned;
  std::vector<std::string> shared(info.shared_input_roots().begin(),
                                  info.shared_input_roots().end());
  if (info.spec_dir_shared() && !spec_dir.empty()) shared.push_back(spec_dir);
  for (int s = 0; s < spec.corpus().sources_size(); ++s) {
    absl::StatusOr<std::vector<std::string>> files =
        data::ExpandSourcePaths(s, spec.corpus().sources(s));
    if (!files.ok()) {
      // Not this machine's files: left for the cluster to find (bertd says
      // so at submit if it cannot either).
      if (mode == UploadMode::kAlways) {
        return absl::InvalidArgumentError(
            absl::StrCat("--upload always: ", files.status().message(), " on this machine"));
      }
      continue;
    }
    bool needed = mode == UploadMode::kAlways;
    for (const std::string& file : *files) needed = needed || !UnderAnyRoot(file, shared);
    if (!needed) continue;
    for (const std::string& file : *files) {
      std::error_code ec;
      const auto size = fs::file_size(file, ec);
      if (ec) return absl::NotFoundError(absl::StrCat(file, ": ", ec.message()));
      planned.push_back(
          {s, fs::absolute(file).lexically_normal().string(), static_cast<int64_t>(size), ""});
    }
  }
  if (planned.empty()) return planned;
  const std::string roots = shared.empty() ? std::string("none") : absl::StrJoin(shared, ", ");
  if (info.max_upload_bytes() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "corpus.sources[", planned.front().source, "]: ", planned.front().path,
        " is not under a directory the cluster's agents share (", roots,
        "), and this bertd accepts no uploads (--max-upload-bytes 0); put the corpus under a "
        "shared directory, or submit with --upload never if the agents see it at this path"));
  }
  for (const PlannedInput& in : planned) {
    if (in.size_bytes > info.max_upload_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "corpus.sources[", in.source, "]: ", in.path, " is ", FormatBytes(in.size_bytes), " (",
          in.size_bytes, " bytes), over this bertd's upload limit of ",
          FormatBytes(info.max_upload_bytes()), " (", info.max_upload_bytes(),
          " bytes, bertd --max-upload-bytes); split it, or put it under a directory the agents "
          "share (",
          roots, "). Nothing was uploaded or submitted"));
    }
  }
  return planned;
}

// ---------------------------------------------------------------- progress

void TransferProgress::Start(const std::string& verb, const std::string& name, int64_t total,
                             int64_t done) {
  verb_ = verb;
  name_ = name;
  total_ = total;
  done_ = start_done_ = done;
  started_ms_ = NowMs();
  drawn_ms_ = -1;
  if (terminal_) {
    Draw(true);
  } else {
    out_ << verb_ << " " << name_ << " (" << FormatBytes(total_)
         << (done > 0 ? absl::StrCat(", resuming at ", FormatBytes(done)) : "") << ")" << std::endl;
  }
}

void TransferProgress::Update(int64_t done) {
  done_ = done;
  if (terminal_) Draw(false);
}

void TransferProgress::Draw(bool force) {
  const int64_t now = NowMs();
  if (!force && drawn_ms_ >= 0 && now - drawn_ms_ < 100) return;
  drawn_ms_ = now;
  constexpr int kWidth = 24;
  const double fraction = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 1.0;
  const int filled = static_cast<int>(fraction * kWidth);
  const double seconds = std::max<int64_t>(1, now - started_ms_) / 1000.0;
  const double rate = double(done_ - start_done_) / seconds;
  out_ << "\r\033[K" << verb_ << " " << name_ << " [" << std::string(filled, '#')
       << std::string(kWidth - filled, ' ') << "] "
       << absl::StrFormat("%3d%% ", static_cast<int>(fraction * 100)) << FormatBytes(done_) << "/"
       << FormatBytes(total_) << "  " << FormatBytes(static_cast<int64_t>(rate)) << "/s"
       << std::flush;
}

void TransferProgress::Finish(const std::string& note) {
  if (terminal_) {
    Draw(true);
    out_ << "  " << note << std::endl;
  } else {
    out_ << verb_ << " " << name_ << ": " << note << std::endl;
  }
}

// ---------------------------------------------------------------- hashing, uploading

absl::Status HashInputs(std::vector<PlannedInput>& inputs, TransferProgress& progress) {
  std::string buffer(1 << 20, '\0');
  for (PlannedInput& in : inputs) {
    std::ifstream file(in.path, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat("cannot open ", in.path));
    const bool shown = progress.terminal();
    if (shown) progress.Start("hashing", in.path, in.size_bytes);
    Sha256 hasher;
    int64_t done = 0;
    while (file) {
      file.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      const std::streamsize n = file.gcount();
      if (n <= 0) break;
      hasher.Update(std::string_view(buffer.data(), static_cast<size_t>(n)));
      done += n;
      if (shown) progress.Update(done);
    }
    if (done != in.size_bytes) {
      return absl::DataLossError(absl::StrCat(in.path, " changed while it was read (", done,
                                              " bytes, ", in.size_bytes, " before)"));
    }
    in.sha256 = hasher.HexDigest();
    if (shown) progress.Finish(in.sha256.substr(0, 12));
  }
  return absl::OkStatus();
}

absl::StatusOr<UploadSummary> UploadInputs(BertClient& client,
                                           const std::vector<PlannedInput>& inputs,
                                           TransferProgress& progress) {
  UploadSummary summary;
  constexpr int kMaxAttempts = 4;
  for (const PlannedInput& in : inputs) {
    absl::Status last;
    bool done = false;
    bool held_whole = false;
    int64_t sent = 0;
    for (int attempt = 0; attempt < kMaxAttempts && !done; ++attempt) {
      if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
      absl::StatusOr<int64_t> held = client.GetInputUploadState(in.sha256);
      if (!held.ok()) {
        last = held.status();
        if (Retryable(last)) continue;
        break;
      }
      if (*held == in.size_bytes && attempt == 0) {
        // Already on bertd for this caller: not one byte is sent.
        held_whole = true;
        progress.Note("uploading", in.path, "already on bertd, nothing sent");
        done = true;
        break;
      }
      progress.Start("uploading", in.path, in.size_bytes, *held);
      const int64_t from = *held;
      absl::StatusOr<v1::Artifact> uploaded = client.UploadInput(
          in.path, in.sha256, in.size_bytes, from, [&](int64_t at) { progress.Update(at); });
      if (uploaded.ok()) {
        sent += in.size_bytes - from;
        progress.Finish(absl::StrCat(FormatBytes(in.size_bytes - from), " sent"));
        done = true;
        break;
      }
      last = uploaded.status();
      progress.Finish(absl::StrCat("interrupted: ", last.message()));
      if (last.code() == absl::StatusCode::kDataLoss) {
        return absl::DataLossError(absl::StrCat(in.path,
                                                " changed since it was hashed, or was "
                                                "damaged on the way (",
                                                last.message(), "); submit again"));
      }
      if (!Retryable(last)) break;
    }
    if (!done) return last;
    ++(held_whole ? summary.files_held : summary.files_sent);
    summary.bytes_sent += sent;
  }
  return summary;
}

}  // namespace bert::client
