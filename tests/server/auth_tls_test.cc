// Security over a real loopback gRPC server: bearer tokens and roles
// (UNAUTHENTICATED / PERMISSION_DENIED), TLS, mutual TLS for agents,
// oversized requests, the token file parser, and the health service.
#include <filesystem>
#include <fstream>

#include "bert/v1/agent_service.grpc.pb.h"
#include "bert/v1/job_service.grpc.pb.h"
#include "common/atomic_file.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "server/controller.h"
#include "tests/server/test_pki.h"
#include "tests/testing/temp_dir.h"

namespace bert::server {
namespace {

constexpr char kTokens[] =
    "# token role subject\n"
    "admin-token-0123456789 admin root\n"
    "submit-token-0123456789 submitter alice\n"
    "submit-token-bob-012345 submitter bob\n"
    "viewer-token-0123456789 viewer carol\n"
    "agent-token-01234567890 agent agent-1\n";

constexpr char kSpec[] = R"(name: secure
corpus:
  sources:
    - paths: [data/*.txt]
      format: text
model:
  preset: bert-tiny
output:
  dir: out
)";

class AuthTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFileAtomically((dir_ / "tokens.txt").string(), kTokens).ok());
  }
  void TearDown() override {
    controller_.reset();
  }

  void StartController(bool tls, bool mutual) {
    ControllerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = (dir_ / "data").string();
    options.tokens_file = (dir_ / "tokens.txt").string();
    options.check_spec_paths = false;
    options.max_message_bytes = 1 << 20;
    if (tls) {
      ASSERT_TRUE(testing::MakeTestPki(dir_.string(), &pki_)) << "openssl failed";
      options.tls_cert = pki_.server_cert;
      options.tls_key = pki_.server_key;
      if (mutual) options.tls_client_ca = pki_.ca_cert;
    }
    auto c = Controller::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = std::move(c).value();
    address_ = "127.0.0.1:" + std::to_string(controller_->port());
  }

  std::shared_ptr<grpc::Channel> Channel(bool tls, bool client_cert = false) {
    if (!tls) return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *ReadFile(pki_.ca_cert);
    if (client_cert) {
      ssl.pem_cert_chain = *ReadFile(pki_.client_cert);
      ssl.pem_private_key = *ReadFile(pki_.client_key);
    }
    return grpc::CreateChannel(address_, grpc::SslCredentials(ssl));
  }

  static void Auth(grpc::ClientContext* context, const std::string& token) {
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
  }

  grpc::Status Submit(v1::JobService::Stub& stub, const std::string& token, v1::SubmitJobResponse* out) {
    grpc::ClientContext context;
    Auth(&context, token);
    v1::SubmitJobRequest request;
    request.set_spec_yaml(kSpec);
    return stub.SubmitJob(&context, request, out);
  }

  const bert::testing::TempDir temp_dir_{"auth_"};  // removed after the members below
  const std::filesystem::path dir_ = temp_dir_.path();
  testing::TestPki pki_;
  std::unique_ptr<Controller> controller_;
  std::string address_;
};

TEST_F(AuthTlsTest, TokensAndRolesAreCheckedOnEveryCall) {
  StartController(false, false);
  auto jobs = v1::JobService::NewStub(Channel(false));
  v1::SubmitJobResponse submitted;
  EXPECT_EQ(Submit(*jobs, "", &submitted).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Submit(*jobs, "wrong-token-0123456789", &submitted).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Submit(*jobs, "viewer-token-0123456789", &submitted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Submit(*jobs, "agent-token-01234567890", &submitted).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  grpc::Status ok = Submit(*jobs, "submit-token-0123456789", &submitted);
  ASSERT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_EQ(submitted.job().submitted_by(), "alice");

  {  // viewers read
    grpc::ClientContext context;
    Auth(&context, "viewer-token-0123456789");
    v1::GetJobRequest request;
    request.set_job_id(submitted.job().id());
    v1::Job job;
    EXPECT_TRUE(jobs->GetJob(&context, request, &job).ok());
  }
  {  // another submitter may not cancel alice's job
    grpc::ClientContext context;
    Auth(&context, "submit-token-bob-012345");
    v1::CancelJobRequest request;
    request.set_job_id(submitted.job().id());
    v1::Job job;
    EXPECT_EQ(jobs->CancelJob(&context, request, &job).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  auto agents = v1::AgentService::NewStub(Channel(false));
  {  // a submitter is not an agent
    grpc::ClientContext context;
    Auth(&context, "submit-token-0123456789");
    v1::RegisterRequest request;
    request.mutable_agent()->set_id("x");
    request.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse response;
    EXPECT_EQ(agents->Register(&context, request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {  // an agent token registers only as the agent id it names
    grpc::ClientContext context;
    Auth(&context, "agent-token-01234567890");
    v1::RegisterRequest request;
    request.mutable_agent()->set_id("x");
    request.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse response;
    EXPECT_EQ(agents->Register(&context, request, &response).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext context;
    Auth(&context, "agent-token-01234567890");
    v1::RegisterRequest request;
    request.mutable_agent()->set_id("agent-1");
    request.mutable_agent()->add_pools("cpu");
    v1::RegisterResponse response;
    EXPECT_TRUE(agents->Register(&context, request, &response).ok());
  }
  {  // an oversized request is refused without harm
    grpc::ClientContext context;
    Auth(&context, "admin-token-0123456789");
    v1::SubmitJobRequest request;
    request.set_spec_yaml(std::string(2 << 20, 'x'));
    v1::SubmitJobResponse response;
    EXPECT_EQ(jobs->SubmitJob(&context, request, &response).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  {  // a bad spec names the field, line and column
    grpc::ClientContext context;
    Auth(&context, "admin-token-0123456789");
    v1::SubmitJobRequest request;
    request.set_spec_yaml("name: x\nmodel:\n  preset: bert-tiny\n  hiden_size: 3\n");
    v1::SubmitJobResponse response;
    grpc::Status s = jobs->SubmitJob(&context, request, &response);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("model.hiden_size"), std::string::npos) << s.error_message();
    EXPECT_NE(s.error_message().find(":4:"), std::string::npos) << s.error_message();
  }
}

TEST_F(AuthTlsTest, HealthServiceAnswersWithoutAToken) {
  StartController(false, false);
  grpc::GenericStub stub(Channel(false));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty(std::string(""));
  grpc::ByteBuffer request(&empty, 1);  // HealthCheckRequest{} is empty on the wire
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   std::lock_guard<std::mutex> lock(mu);
                   status = s;
                   done = true;
                   cv.notify_all();
                 });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

TEST_F(AuthTlsTest, TlsAndMutualTlsForAgents) {
  StartController(true, true);
  // Plaintext against the TLS port does not get through.
  {
    auto plain = v1::JobService::NewStub(Channel(false));
    v1::SubmitJobResponse response;
    EXPECT_EQ(Submit(*plain, "submit-token-0123456789", &response).error_code(),
              grpc::StatusCode::UNAVAILABLE);
  }
  auto jobs = v1::JobService::NewStub(Channel(true));
  v1::SubmitJobResponse submitted;
  grpc::Status s = Submit(*jobs, "submit-token-0123456789", &submitted);
  ASSERT_TRUE(s.ok()) << s.error_message();

  v1::RegisterRequest request;
  request.mutable_agent()->set_id("agent-1");
  request.mutable_agent()->add_pools("cpu");
  v1::RegisterResponse response;
  {
    auto agents = v1::AgentService::NewStub(Channel(true, false));
    grpc::ClientContext context;
    Auth(&context, "agent-token-01234567890");
    EXPECT_EQ(agents->Register(&context, request, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    auto agents = v1::AgentService::NewStub(Channel(true, true));
    grpc::ClientContext context;
    Auth(&context, "agent-token-01234567890");
    grpc::Status registered = agents->Register(&context, request, &response);
    EXPECT_TRUE(registered.ok()) << registered.error_message();
  }
  // The certificate (CN=agent-1) binds the agent id too: not even an admin
  // token acts as another agent through it.
  for (const char* token : {"admin-token-0123456789", "agent-token-01234567890"}) {
    auto agents = v1::AgentService::NewStub(Channel(true, true));
    grpc::ClientContext context;
    Auth(&context, token);
    v1::RegisterRequest other = request;
    other.mutable_agent()->set_id("agent-2");
    grpc::Status refused = agents->Register(&context, other, &response);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED) << token;
    EXPECT_NE(refused.error_message().find("client certificate of 'agent-1'"), std::string::npos)
        << refused.error_message();
  }
}

TEST(TokenTableTest, ParseErrorsNameTheLine) {
  auto bad_role = TokenTable::Parse("abcdefghijklmnop0 root me\n", "tokens.txt");
  ASSERT_FALSE(bad_role.ok());
  EXPECT_NE(bad_role.status().message().find("tokens.txt:1: unknown role 'root'"), std::string::npos);
  auto short_token = TokenTable::Parse("# c\n\nshort admin me\n", "t");
  ASSERT_FALSE(short_token.ok());
  EXPECT_NE(short_token.status().message().find("t:3:"), std::string::npos);
  auto ok = TokenTable::Parse("abcdefghijklmnop0 viewer me # comment\n", "t");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->Find("abcdefghijklmnop0")->subject, "me");
  EXPECT_FALSE(ok->Find("abcdefghijklmnop1").has_value());
  EXPECT_EQ(Authorizer::RequiredRole("/bert.v1.JobService/SubmitJob"), Role::kSubmitter);
  EXPECT_FALSE(Authorizer::RequiredRole("/bert.v1.JobService/Nope").has_value());
}

TEST(ControllerOptionsTest, RefusesAnOpenPortWithoutTlsAndTokens) {
  ControllerOptions options;
  options.listen = "0.0.0.0:0";
  options.data_dir = ::testing::TempDir() + "/open_port";
  auto c = Controller::Start(options);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace bert::server

namespace bert::server {
namespace {

TEST(CheckActsAsTest, AnAgentTokenNamesItsAgentIdOrAPrefixPool) {
  EXPECT_TRUE(CheckActsAs({"a1", Role::kAgent}, "a1").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"a1", Role::kAgent}, "a2")));
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"a1", Role::kAgent}, "")));
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"a1", Role::kAgent}, "a11")));
  EXPECT_TRUE(CheckActsAs({"cpu-*", Role::kAgent}, "cpu-7").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"cpu-*", Role::kAgent}, "cpu-")));
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"cpu-*", Role::kAgent}, "gpu-1")));
  EXPECT_TRUE(CheckActsAs({"root", Role::kAdmin}, "anything").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"alice", Role::kSubmitter}, "alice")));
  // A certificate name binds even where the token is broader.
  EXPECT_TRUE(CheckActsAs({"cpu-*", Role::kAgent, "cpu-7"}, "cpu-7").ok());
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"cpu-*", Role::kAgent, "cpu-7"}, "cpu-8")));
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"root", Role::kAdmin, "cpu-7"}, "cpu-8")));
  EXPECT_TRUE(absl::IsPermissionDenied(CheckActsAs({"a1", Role::kAgent, "a2"}, "a2")));
}

}  // namespace
}  // namespace bert::server
