// BertClient's upload of corpus files from this machine (JobService
// GetClusterInfo, GetInputUploadState, UploadInput).
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "client/bert_client.h"
#include "common/sha256.h"
#include "protocol/artifact_ids.h"
#include "protocol/grpc_status.h"

namespace bert::client {
namespace {
constexpr size_t kUploadChunkBytes = 1 << 20;
}  // namespace

absl::StatusOr<bert::v1::ClusterInfo> BertClient::GetClusterInfo() {
  bert::v1::ClusterInfo info;
  auto context = NewContext(false);
  absl::Status status = protocol::FromGrpcStatus(
      stub_->GetClusterInfo(context.get(), bert::v1::GetClusterInfoRequest(), &info));
  if (!status.ok()) return status;
  return info;
}

absl::StatusOr<int64_t> BertClient::GetInputUploadState(const std::string& sha256) {
  bert::v1::GetUploadStateRequest request;
  request.set_artifact_id(protocol::InputArtifactId(sha256));
  request.set_sha256(sha256);
  bert::v1::GetUploadStateResponse response;
  auto context = NewContext(false);
  absl::Status status =
      protocol::FromGrpcStatus(stub_->GetInputUploadState(context.get(), request, &response));
  if (!status.ok()) return status;
  int64_t held = 0;
  for (const auto& file : response.files()) {
    if (file.relative_path().empty()) held = file.bytes();
  }
  return held;
}

absl::StatusOr<bert::v1::Artifact> BertClient::UploadInput(
    const std::string& path, const std::string& sha256, int64_t size_bytes, int64_t offset,
    const std::function<void(int64_t)>& progress) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  offset = std::clamp<int64_t>(offset, 0, size_bytes);
  in.seekg(offset);
  bert::v1::Artifact header;
  header.set_id(protocol::InputArtifactId(sha256));
  header.set_size_bytes(size_bytes);
  header.set_sha256(sha256);

  auto context = NewContext(true);
  bert::v1::Artifact result;
  auto writer = stub_->UploadInput(context.get(), &result);
  std::string buffer(kUploadChunkBytes, '\0');
  bool first = true;
  bool stream_ok = true;
  while (stream_ok) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0 && !first) break;  // the header goes even with no bytes to send
    bert::v1::ArtifactChunk chunk;
    chunk.set_artifact_id(header.id());
    if (first) *chunk.mutable_artifact() = header;
    first = false;
    chunk.set_offset(offset);
    chunk.set_data(buffer.data(), n);
    chunk.set_chunk_sha256(Sha256Hex(chunk.data()));
    stream_ok = writer->Write(chunk);  // false: bertd ended the stream (its status says why)
    offset += static_cast<int64_t>(n);
    if (stream_ok && progress) progress(offset);
    if (n < buffer.size()) break;
  }
  writer->WritesDone();
  absl::Status status = protocol::FromGrpcStatus(writer->Finish(), absl::StrCat("upload ", path));
  if (!status.ok()) return status;
  return result;
}

}  // namespace bert::client
