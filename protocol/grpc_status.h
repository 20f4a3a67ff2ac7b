// absl::Status <-> grpc::Status, the one place the two meet. The code numbers
// are the same in both (google.rpc.Code); the message travels unchanged.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace bert::protocol {

// OK for OK; otherwise the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

// OK for OK; otherwise the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// As above, with the message prefixed by "<what>: " (e.g. "upload j/prepare/corpus: ...").
absl::Status FromGrpcStatus(const grpc::Status& status, absl::string_view what);

}  // namespace bert::protocol
