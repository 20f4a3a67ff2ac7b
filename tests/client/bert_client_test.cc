// BertClient against a real gRPC server on loopback (FakeJobService).
#include "client/bert_client.h"

#include <gtest/gtest.h>

#include "tests/client/fake_job_service.h"

namespace bert::client {
namespace {

using testing::FakeJobService;
using testing::FakeServer;

std::unique_ptr<BertClient> Connect(const std::string& address, const std::string& token = "") {
  ClientOptions options;
  options.address = address;
  options.token = token;
  options.timeout_ms = 5000;
  auto client = BertClient::Create(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(*client);
}

TEST(BertClientTest, UnaryCallsAndStatusCodes) {
  FakeJobService service;
  FakeServer server(&service);
  auto client = Connect(server.address());
  auto job = client->GetJob("job-1");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name(), "tiny");
  EXPECT_EQ(client->GetJob("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client->CancelJob("job-1", "").status().code(), absl::StatusCode::kFailedPrecondition);
  auto metrics = client->GetMetrics("job-1", {"train/loss"});
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->series(0).points_size(), 2);

  bert::v1::SubmitJobRequest request;
  request.set_spec_yaml("name: x\n");
  request.set_base_dir("/data");
  ASSERT_TRUE(client->SubmitJob(request).ok());
  ASSERT_EQ(service.submitted().size(), 1u);
  EXPECT_EQ(service.submitted()[0].base_dir(), "/data");
}

TEST(BertClientTest, SendsTheBearerToken) {
  FakeJobService service;
  service.RequireToken("s3cret");
  FakeServer server(&service);
  EXPECT_EQ(Connect(server.address())->GetJob("job-1").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Connect(server.address(), "wrong")->GetJob("job-1").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Connect(server.address(), "s3cret")->GetJob("job-1").ok());
}

TEST(BertClientTest, UnreachableServerIsUnavailable) {
  ClientOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  options.timeout_ms = 3000;
  auto client = BertClient::Create(options);
  ASSERT_TRUE(client.ok());
  const absl::Status status = (*client)->GetJob("job-1").status();
  EXPECT_TRUE(status.code() == absl::StatusCode::kUnavailable ||
              status.code() == absl::StatusCode::kDeadlineExceeded)
      << status;
}

TEST(BertClientTest, MissingTlsFileIsAnError) {
  ClientOptions options;
  options.tls_ca_file = "/nonexistent/ca.pem";
  auto client = BertClient::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(client.status().message().find("/nonexistent/ca.pem"), std::string::npos);
}

TEST(BertClientTest, WatchResumesAfterADroppedStreamWithoutGapsOrRepeats) {
  FakeJobService service;
  service.DropFirstStreamAfter(7);
  FakeServer server(&service);
  std::vector<int64_t> seqs;
  const absl::Status status =
      Connect(server.address())
          ->WatchJob("job-1", WatchOptions{}, [&](const bert::v1::Event& event) {
            seqs.push_back(event.seq());
            return true;
          });
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(static_cast<int64_t>(seqs.size()), service.event_count());
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i + 1));
  EXPECT_EQ(service.watch_after_seqs(), (std::vector<int64_t>{0, 7}));
}

TEST(BertClientTest, WatchStopsWhenTheCallbackSaysSo) {
  FakeJobService service;
  FakeServer server(&service);
  WatchOptions options;
  options.after_seq = 3;
  int calls = 0;
  ASSERT_TRUE(Connect(server.address())
                  ->WatchJob("job-1", options,
                             [&](const bert::v1::Event& event) {
                               EXPECT_EQ(event.seq(), 4);
                               return ++calls < 1;
                             })
                  .ok());
  EXPECT_EQ(calls, 1);
}

TEST(BertClientTest, WatchOfUnknownJobIsNotFoundWithoutRetrying) {
  FakeJobService service;
  FakeServer server(&service);
  const absl::Status status =
      Connect(server.address())->WatchJob("nope", WatchOptions{}, [](const auto&) { return true; });
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(service.watch_after_seqs().size(), 0u);
}

}  // namespace
}  // namespace bert::client
