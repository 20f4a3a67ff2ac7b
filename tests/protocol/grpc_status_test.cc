#include "protocol/grpc_status.h"

#include <gtest/gtest.h>

namespace bert::protocol {
namespace {

TEST(GrpcStatusTest, OkIsOkBothWays) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, "upload x").ok());
}

TEST(GrpcStatusTest, EveryCodeKeepsItsNumberAndMessage) {
  for (int code = 1; code <= 16; ++code) {
    const absl::Status a(static_cast<absl::StatusCode>(code), "message 1");
    const grpc::Status g = ToGrpcStatus(a);
    EXPECT_EQ(static_cast<int>(g.error_code()), code);
    EXPECT_EQ(g.error_message(), "message 1");
    const absl::Status back = FromGrpcStatus(g);
    EXPECT_EQ(back, a) << code;
  }
  // Spot-check that the numbers mean the same thing on both sides.
  EXPECT_EQ(ToGrpcStatus(absl::NotFoundError("x")).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::DATA_LOSS, "y")).code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "z")).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(GrpcStatusTest, WhatPrefixesTheMessage) {
  const absl::Status s = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"), "upload j/x");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "upload j/x: connection refused");
}

}  // namespace
}  // namespace bert::protocol
