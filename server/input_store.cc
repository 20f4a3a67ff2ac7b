#include "server/input_store.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "protocol/artifact_ids.h"
#include "server/time_util.h"
#include "storage/store_batch.h"

namespace bert::server {
namespace fs = std::filesystem;
namespace {

absl::Status CheckSha256(const std::string& sha256) {
  if (!protocol::IsSha256Hex(sha256)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sha256 '", sha256.substr(0, 80), "': expected 64 lowercase hex digits"));
  }
  return absl::OkStatus();
}

bool UploadedBy(const v1::Artifact& artifact, const std::string& subject) {
  return std::find(artifact.uploaded_by().begin(), artifact.uploaded_by().end(), subject) !=
         artifact.uploaded_by().end();
}

std::string HumanBytes(int64_t bytes) {
  if (bytes >= (int64_t{1} << 30)) return absl::StrCat(bytes >> 30, " GiB");
  if (bytes >= (int64_t{1} << 20)) return absl::StrCat(bytes >> 20, " MiB");
  return absl::StrCat(bytes, " bytes");
}

}  // namespace

bool JobNamesInput(const v1::Job& job, const std::string& sha256) {
  return std::any_of(job.input_files().begin(), job.input_files().end(),
                     [&](const v1::InputFile& f) { return f.sha256() == sha256; });
}

absl::StatusOr<std::optional<v1::Artifact>> InputStore::Find(const std::string& sha256) const {
  BERT_RETURN_IF_ERROR(CheckSha256(sha256));
  const std::string id = protocol::InputArtifactId(sha256);
  BERT_ASSIGN_OR_RETURN(std::optional<v1::Artifact> record, store_->GetArtifact(id));
  if (!record) return std::nullopt;
  std::error_code ec;
  const auto size = fs::file_size(artifacts_->PathOf(id), ec);
  if (ec || static_cast<int64_t>(size) != record->size_bytes()) return std::nullopt;
  return record;
}

absl::StatusOr<int64_t> InputStore::HeldBytes(const std::string& sha256,
                                              const std::string& subject) const {
  BERT_ASSIGN_OR_RETURN(std::optional<v1::Artifact> held, Find(sha256));
  if (held && UploadedBy(*held, subject)) return held->size_bytes();
  BERT_ASSIGN_OR_RETURN(auto partial,
                        artifacts_->HeldBytes(protocol::InputArtifactId(sha256), sha256));
  auto it = partial.find("");
  return it == partial.end() ? 0 : it->second;
}

InputStore::Upload::~Upload() {
  if (in_flight_ && inputs_ != nullptr) inputs_->EndUpload(sha256_);
}

void InputStore::EndUpload(const std::string& sha256) {
  absl::MutexLock lock(&mu_);
  in_flight_.erase(sha256);
}

absl::StatusOr<InputStore::Upload> InputStore::Begin(const v1::Artifact& header,
                                                     const std::string& subject) {
  BERT_RETURN_IF_ERROR(CheckSha256(header.sha256()));
  const std::string id = protocol::InputArtifactId(header.sha256());
  if (!header.id().empty() && header.id() != id) {
    return absl::InvalidArgumentError(absl::StrCat(
        "artifact.id '", header.id(), "': an input's id is inputs/<its sha256>, here ", id));
  }
  if (header.is_directory()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input ", id, ": a directory; inputs are files (upload each file of a directory)"));
  }
  if (header.size_bytes() < 0) return absl::InvalidArgumentError("artifact.size_bytes: negative");
  if (max_upload_bytes_ <= 0) {
    return absl::FailedPreconditionError(
        "this bertd accepts no uploads (--max-upload-bytes 0): put the corpus under a directory "
        "its agents share (bertctl's GetClusterInfo lists them)");
  }
  if (header.size_bytes() > max_upload_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "input ", id, ": ", header.size_bytes(), " bytes (", HumanBytes(header.size_bytes()),
        ") is over this bertd's upload limit of ", max_upload_bytes_, " bytes (",
        HumanBytes(max_upload_bytes_), ", --max-upload-bytes)"));
  }
  Upload upload;
  upload.inputs_ = this;
  upload.sha256_ = header.sha256();
  upload.subject_ = subject;
  BERT_ASSIGN_OR_RETURN(std::optional<v1::Artifact> held, Find(header.sha256()));
  if (held && held->size_bytes() != header.size_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("input ", id, ": ", header.size_bytes(),
                                                   " bytes, but content of this sha256 is ",
                                                   held->size_bytes(), " bytes"));
  }
  if (held && UploadedBy(*held, subject)) {
    upload.held_ = std::move(held);
    return upload;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!in_flight_.insert(header.sha256()).second) {
      return absl::AbortedError(absl::StrCat(
          "input ", id, ": another upload of the same content is in progress; retry shortly"));
    }
  }
  upload.in_flight_ = true;
  v1::Artifact bytes_header;
  bytes_header.set_id(id);
  bytes_header.set_size_bytes(header.size_bytes());
  bytes_header.set_sha256(header.sha256());
  BERT_ASSIGN_OR_RETURN(ArtifactStore::Upload bytes,
                        ArtifactStore::Upload::Begin(artifacts_, bytes_header));
  upload.bytes_.emplace(std::move(bytes));
  return upload;
}

absl::StatusOr<v1::Artifact> InputStore::Upload::Finish() {
  if (held_) return *held_;
  BERT_ASSIGN_OR_RETURN(v1::Artifact published, bytes_->Finish());
  return inputs_->Record(std::move(published), subject_);
}

absl::StatusOr<v1::Artifact> InputStore::Record(v1::Artifact artifact, const std::string& subject) {
  // The uploaders so far stay (the content is the same, the hash was checked).
  BERT_ASSIGN_OR_RETURN(std::optional<v1::Artifact> before, store_->GetArtifact(artifact.id()));
  if (before && before->sha256() == artifact.sha256()) {
    *artifact.mutable_uploaded_by() = before->uploaded_by();
    if (before->has_created_at()) *artifact.mutable_created_at() = before->created_at();
  }
  if (!UploadedBy(artifact, subject)) artifact.add_uploaded_by(subject);
  artifact.set_name("input");
  artifact.set_produced_by(v1::STAGE_KIND_UNSPECIFIED);
  if (!artifact.has_created_at()) *artifact.mutable_created_at() = ToProto(clock_->Now());
  storage::StoreBatch batch;
  batch.PutArtifact(artifact);
  BERT_RETURN_IF_ERROR(store_->Write(batch));
  return artifact;
}

absl::Status InputStore::CheckSubmitted(
    const google::protobuf::RepeatedPtrField<v1::InputFile>& files, const std::string& subject,
    bool admin) const {
  if (files.size() > kMaxInputFilesPerJob) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input_files: ", files.size(), " files, over the limit of ", kMaxInputFilesPerJob,
        " per job; pack small files into fewer larger ones (e.g. one .gz per shard)"));
  }
  for (int i = 0; i < files.size(); ++i) {
    const v1::InputFile& f = files[i];
    const std::string what = absl::StrCat("input_files[", i, "] (", f.path().substr(0, 256), ")");
    if (f.path().empty() || f.path().front() != '/' || f.path().size() > 4096) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": path must be absolute, at most 4096 bytes"));
    }
    if (f.source_index() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": source_index is negative"));
    }
    if (absl::Status s = CheckSha256(f.sha256()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": ", s.message()));
    }
    BERT_ASSIGN_OR_RETURN(std::optional<v1::Artifact> held, Find(f.sha256()));
    if (!held || (!admin && !UploadedBy(*held, subject))) {
      return absl::FailedPreconditionError(
          absl::StrCat(what, ": bertd holds no upload of content ", f.sha256(), " by '", subject,
                       "'; upload it first (bertctl submit does)"));
    }
    if (held->size_bytes() != f.size_bytes()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": size_bytes ", f.size_bytes(),
                                                     ", but the uploaded content is ",
                                                     held->size_bytes(), " bytes"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::set<std::string>> InputStore::ReferencedInputs(const storage::Store& store) {
  std::set<std::string> referenced;
  BERT_RETURN_IF_ERROR(store.ForEachJob([&](const v1::Job& job) {
    for (const v1::InputFile& f : job.input_files()) referenced.insert(f.sha256());
    return true;
  }));
  return referenced;
}

absl::Status InputStore::Remove(const std::string& sha256) {
  BERT_RETURN_IF_ERROR(CheckSha256(sha256));
  const std::string id = protocol::InputArtifactId(sha256);
  {
    absl::MutexLock lock(&mu_);
    if (in_flight_.contains(sha256)) {
      return absl::AbortedError(absl::StrCat("input ", id, " is being uploaded; not removed"));
    }
  }
  const std::string path = artifacts_->PathOf(id);
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) return PosixError("remove", path, ec.value());
  BERT_RETURN_IF_ERROR(SyncDirectory(fs::path(path).parent_path().string()));
  storage::StoreBatch batch;
  batch.DeleteArtifact(id);
  return store_->Write(batch);
}

}  // namespace bert::server
