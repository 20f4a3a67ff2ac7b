#include "protocol/failure_cause.h"

#include <gtest/gtest.h>

#include <map>

namespace bert::protocol {
namespace {

// The whole code -> cause table, pinned: a change here changes which failures
// the controller retries (server/retry_policy.cc).
TEST(FailureCauseTest, EveryCodeMapsToOneCause) {
  const std::map<absl::StatusCode, v1::FailureCause> expected = {
      {absl::StatusCode::kOk, v1::FAILURE_CAUSE_UNSPECIFIED},
      {absl::StatusCode::kCancelled, v1::CANCELLED_BY_USER},
      {absl::StatusCode::kUnknown, v1::INTERNAL},
      {absl::StatusCode::kInvalidArgument, v1::DATA_ERROR},
      {absl::StatusCode::kDeadlineExceeded, v1::INTERNAL},
      {absl::StatusCode::kNotFound, v1::DATA_ERROR},
      {absl::StatusCode::kAlreadyExists, v1::INTERNAL},
      {absl::StatusCode::kPermissionDenied, v1::INTERNAL},
      {absl::StatusCode::kResourceExhausted, v1::OUT_OF_MEMORY},
      {absl::StatusCode::kFailedPrecondition, v1::DATA_ERROR},
      {absl::StatusCode::kAborted, v1::INTERNAL},
      {absl::StatusCode::kOutOfRange, v1::DATA_ERROR},
      {absl::StatusCode::kUnimplemented, v1::INTERNAL},
      {absl::StatusCode::kInternal, v1::INTERNAL},
      {absl::StatusCode::kUnavailable, v1::INTERNAL},
      {absl::StatusCode::kDataLoss, v1::ARTIFACT_CORRUPT},
      {absl::StatusCode::kUnauthenticated, v1::INTERNAL},
  };
  ASSERT_EQ(expected.size(), 17u);  // every absl::StatusCode
  for (const auto& [code, cause] : expected) {
    EXPECT_EQ(CauseForCode(code), cause) << absl::StatusCodeToString(code);
    if (code == absl::StatusCode::kOk) continue;
    EXPECT_EQ(CauseOf(absl::Status(code, "plain")), cause) << absl::StatusCodeToString(code);
  }
}

TEST(FailureCauseTest, StageFailureCarriesItsCauseAndAFittingCode) {
  const std::map<v1::FailureCause, absl::StatusCode> expected = {
      {v1::SPEC_ERROR, absl::StatusCode::kInvalidArgument},
      {v1::DATA_ERROR, absl::StatusCode::kInvalidArgument},
      {v1::AGENT_LOST, absl::StatusCode::kAborted},
      {v1::WORKER_CRASHED, absl::StatusCode::kAborted},
      {v1::OUT_OF_MEMORY, absl::StatusCode::kResourceExhausted},
      {v1::ARTIFACT_CORRUPT, absl::StatusCode::kDataLoss},
      {v1::CANCELLED_BY_USER, absl::StatusCode::kCancelled},
      {v1::PAUSED_BY_USER, absl::StatusCode::kCancelled},
      {v1::RETRIES_EXHAUSTED, absl::StatusCode::kInternal},
      {v1::INTERNAL, absl::StatusCode::kInternal},
      {v1::DEPENDENCY_FAILED, absl::StatusCode::kInternal},
  };
  for (const auto& [cause, code] : expected) {
    const absl::Status s = StageFailure(cause, "why");
    EXPECT_EQ(s.code(), code) << v1::FailureCause_Name(cause);
    EXPECT_EQ(s.message(), "why");
    EXPECT_EQ(CauseOf(s), cause) << v1::FailureCause_Name(cause);  // the payload, not the code
  }
}

TEST(FailureCauseTest, OkHasNoCause) {
  EXPECT_EQ(CauseOf(absl::OkStatus()), v1::FAILURE_CAUSE_UNSPECIFIED);
}

TEST(FailureCauseTest, AsStageFailurePrefixesAndKeepsACarriedCause) {
  EXPECT_TRUE(AsStageFailure(absl::OkStatus(), "prepare").ok());

  const absl::Status missing =
      AsStageFailure(absl::NotFoundError("corpus/x.txt: no such file"), "prepare");
  EXPECT_EQ(CauseOf(missing), v1::DATA_ERROR);
  EXPECT_EQ(missing.message(), "prepare: corpus/x.txt: no such file");

  const absl::Status crashed =
      AsStageFailure(StageFailure(v1::WORKER_CRASHED, "signal 9"), "pretrain");
  EXPECT_EQ(CauseOf(crashed), v1::WORKER_CRASHED);
  EXPECT_EQ(crashed.message(), "pretrain: signal 9");
}

}  // namespace
}  // namespace bert::protocol
