#include "server/controller.h"

#include <filesystem>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/server_builder.h"

namespace bert::server {

namespace {

// Drops the reflection plugin (registered process-wide once any controller
// serves without tokens) from one server.
class NoReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return plugin->name() == "proto_server_reflection";
    });
  }
};

}  // namespace

bool IsLoopbackAddress(const std::string& host_port) {
  return absl::StartsWith(host_port, "127.") || absl::StartsWith(host_port, "localhost:") ||
         absl::StartsWith(host_port, "[::1]:");
}

absl::StatusOr<std::unique_ptr<Controller>> Controller::Start(
    ControllerOptions options, std::shared_ptr<metrics::ControllerMetrics> metrics) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("--data-dir: required");
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!options.tls_client_ca.empty() && options.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  const bool tls = !options.tls_cert.empty();
  if (!IsLoopbackAddress(options.listen) && !options.allow_insecure &&
      (!tls || options.tokens_file.empty())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--listen ", options.listen,
        " is not loopback: serving it needs --tls-cert/--tls-key and --tokens-file "
        "(or --allow-insecure to accept the risk)"));
  }
  std::unique_ptr<Controller> c(new Controller());
  c->options_ = options;
  c->metrics_ = std::move(metrics);
  std::error_code ec;
  const std::string artifact_root =
      std::filesystem::absolute(options.data_dir + "/artifacts", ec).lexically_normal().string();
  std::filesystem::create_directories(options.data_dir + "/db", ec);
  std::filesystem::create_directories(artifact_root, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", options.data_dir, ": ", ec.message()));
  BERT_ASSIGN_OR_RETURN(c->store_, storage::Store::Open(options.data_dir + "/db"));

  c->bus_ = std::make_unique<EventBus>(options.watches);
  JobManagerOptions jm;
  jm.lease_ttl = options.lease_ttl;
  jm.restart_grace = options.restart_grace;
  jm.finished_job_retention = options.finished_job_retention;
  jm.heartbeat_interval = options.heartbeat_interval;
  jm.artifact_root = artifact_root;
  jm.check_spec_paths = options.check_spec_paths;
  if (!options.shared_output_root.empty() &&
      !std::filesystem::path(options.shared_output_root).is_absolute()) {
    return absl::InvalidArgumentError(absl::StrCat("--shared-output-root ",
                                                   options.shared_output_root,
                                                   ": must be an absolute path"));
  }
  jm.shared_output_root = options.shared_output_root;
  BERT_ASSIGN_OR_RETURN(c->manager_, JobManager::Create(c->store_.get(), c->bus_.get(), &c->clock_, jm,
                                                        c->metrics_.get()));

  std::optional<TokenTable> tokens;
  if (!options.tokens_file.empty()) {
    BERT_ASSIGN_OR_RETURN(TokenTable table, TokenTable::Load(options.tokens_file));
    tokens = std::move(table);
  }
  if (tokens) {
    for (auto& [token, who] : options.extra_tokens) tokens->Add(token, who);
  }
  c->authorizer_ = std::make_unique<Authorizer>(std::move(tokens), !options.tls_client_ca.empty());
  c->guard_ = std::make_unique<RpcGuard>(c->authorizer_.get(), c->metrics_.get());
  c->artifacts_ = std::make_unique<ArtifactStore>(artifact_root);
  std::vector<std::string> roots = {artifact_root};
  for (const std::string& root : options.shared_artifact_roots) {
    if (!std::filesystem::path(root).is_absolute()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shared-artifact-root ", root, ": must be an absolute path"));
    }
    roots.push_back(root);
  }
  c->admission_ = std::make_unique<ArtifactAdmission>(std::move(roots));
  c->job_service_ = std::make_unique<JobServiceImpl>(c->manager_.get(), c->store_.get(), c->bus_.get(),
                                                     c->guard_.get());
  c->job_service_->ServeArtifacts(c->artifacts_.get(), c->admission_.get());
  if (options.max_upload_bytes < 0) {
    return absl::InvalidArgumentError("--max-upload-bytes: must not be negative");
  }
  v1::ClusterInfo cluster;
  for (const std::string& root : options.shared_input_roots) {
    if (!std::filesystem::path(root).is_absolute()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--shared-input-root ", root, ": must be an absolute path"));
    }
    cluster.add_shared_input_roots(std::filesystem::path(root).lexically_normal().string());
  }
  cluster.set_spec_dir_shared(options.spec_dir_shared);
  cluster.set_max_upload_bytes(options.max_upload_bytes);
  cluster.set_shared_output_root(options.shared_output_root);
  c->inputs_ = std::make_unique<InputStore>(c->artifacts_.get(), c->store_.get(), &c->clock_,
                                            options.max_upload_bytes);
  c->job_service_->ServeInputs(c->inputs_.get(), std::move(cluster));
  c->agent_service_ = std::make_unique<AgentServiceImpl>(
      c->manager_.get(), c->store_.get(), c->artifacts_.get(), c->admission_.get(), c->guard_.get(),
      c->metrics_.get());

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (tls) {
    grpc::SslServerCredentialsOptions ssl(options.tls_client_ca.empty()
                                              ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                              : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    BERT_ASSIGN_OR_RETURN(std::string cert, ReadFile(options.tls_cert));
    BERT_ASSIGN_OR_RETURN(std::string key, ReadFile(options.tls_key));
    ssl.pem_key_cert_pairs.push_back({key, cert});
    if (!options.tls_client_ca.empty()) {
      BERT_ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_client_ca));
    }
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  // Health stays open (it says only SERVING or not); reflection describes the
  // whole API, so it is served only where every caller is trusted: without a
  // tokens file (loopback only, see above). The plugin is process-wide, so it
  // is removed from this builder's plugins when tokens are on.
  grpc::EnableDefaultHealthCheckService(true);
  const bool reflection = !c->authorizer_->enabled();
  if (reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (!reflection) builder.SetOption(std::make_unique<NoReflection>());
  builder.AddListeningPort(options.listen, creds, &c->port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(c->job_service_.get());
  builder.RegisterService(c->agent_service_.get());
  c->server_ = builder.BuildAndStart();
  if (c->server_ == nullptr || c->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }
  c->ticker_ = std::thread([raw = c.get()] { raw->TickLoop(); });
  c->collector_ = std::thread([raw = c.get()] { raw->CollectLoop(); });
  return c;
}

void Controller::TickLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.tick_interval)) {
    absl::Status status = manager_->Tick();
    if (!status.ok()) std::cerr << "bertd: lease check failed: " << status << std::endl;
  }
}

void Controller::CollectLoop() {
  while (!stop_.WaitForNotificationWithTimeout(options_.collect_interval)) {
    absl::StatusOr<int> deleted = manager_->CollectGarbage();
    if (!deleted.ok()) std::cerr << "bertd: collector pass failed: " << deleted.status() << std::endl;
  }
}

void Controller::Shutdown(absl::Duration grace) {
  if (shut_down_.exchange(true)) return;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace));
  if (ticker_.joinable()) ticker_.join();
  if (collector_.joinable()) collector_.join();
}

Controller::~Controller() { Shutdown(); }

}  // namespace bert::server
