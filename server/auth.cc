#include "server/auth.h"

#include <openssl/crypto.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "grpcpp/security/auth_context.h"

namespace bert::server {
namespace {

std::optional<Role> ParseRole(std::string_view name) {
  if (name == "viewer") return Role::kViewer;
  if (name == "submitter") return Role::kSubmitter;
  if (name == "agent") return Role::kAgent;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

bool Satisfies(Role have, Role need) {
  if (have == Role::kAdmin) return true;
  if (need == Role::kViewer) return have == Role::kViewer || have == Role::kSubmitter;
  return have == need;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer: return "viewer";
    case Role::kSubmitter: return "submitter";
    case Role::kAgent: return "agent";
    case Role::kAdmin: return "admin";
  }
  return "unknown";
}

absl::Status CheckActsAs(const Principal& who, std::string_view agent_id) {
  if (!who.certificate_name.empty() && who.certificate_name != agent_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the client certificate of '", who.certificate_name, "' may not act as agent '",
        std::string(agent_id), "' (with mutual TLS an agent acts only as its certificate's name)"));
  }
  if (who.role == Role::kAdmin) return absl::OkStatus();
  if (who.role == Role::kAgent && !agent_id.empty()) {
    std::string_view subject = who.subject;
    if (subject == agent_id) return absl::OkStatus();
    // "cpu-*": a token shared by a pool of agents whose ids start with "cpu-".
    if (!subject.empty() && subject.back() == '*') {
      subject.remove_suffix(1);
      if (agent_id.size() > subject.size() && agent_id.substr(0, subject.size()) == subject) {
        return absl::OkStatus();
      }
    }
  }
  return absl::PermissionDeniedError(absl::StrCat(
      std::string(RoleName(who.role)), " '", who.subject, "' may not act as agent '",
      std::string(agent_id), "' (an agent token acts only as the agent id it names)"));
}

absl::StatusOr<TokenTable> TokenTable::Parse(std::string_view text, std::string_view source) {
  TokenTable table;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    if (auto hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    const std::string where = absl::StrCat(std::string(source), ":", line_no, ": ");
    if (fields.size() != 3) {
      return absl::InvalidArgumentError(absl::StrCat(where, "expected 'TOKEN ROLE SUBJECT', got ",
                                                     fields.size(), " fields"));
    }
    if (fields[0].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(where, "token is shorter than 16 characters"));
    }
    auto role = ParseRole(std::string_view(fields[1].data(), fields[1].size()));
    if (!role) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, "unknown role '", fields[1], "' (admin, submitter, viewer or agent)"));
    }
    table.Add(std::string(fields[0]), Principal{std::string(fields[2]), *role});
  }
  if (table.entries_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(source), ": no tokens"));
  }
  return table;
}

absl::StatusOr<TokenTable> TokenTable::Load(const std::string& path) {
  BERT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path);
}

void TokenTable::Add(std::string token, Principal principal) {
  entries_.emplace_back(std::move(token), std::move(principal));
}

std::optional<Principal> TokenTable::Find(std::string_view token) const {
  std::optional<Principal> found;
  for (const auto& [candidate, principal] : entries_) {
    if (candidate.size() == token.size() &&
        CRYPTO_memcmp(candidate.data(), token.data(), token.size()) == 0) {
      found = principal;
    }
  }
  return found;
}

std::optional<Role> Authorizer::RequiredRole(std::string_view method) {
  static const std::map<std::string, Role, std::less<>> kTable = {
      {"/bert.v1.JobService/SubmitJob", Role::kSubmitter},
      {"/bert.v1.JobService/CancelJob", Role::kSubmitter},
      {"/bert.v1.JobService/ValidateSpec", Role::kViewer},
      {"/bert.v1.JobService/GetJob", Role::kViewer},
      {"/bert.v1.JobService/ListJobs", Role::kViewer},
      {"/bert.v1.JobService/WatchJob", Role::kViewer},
      {"/bert.v1.JobService/ListCheckpoints", Role::kViewer},
      {"/bert.v1.JobService/GetMetrics", Role::kViewer},
      {"/bert.v1.JobService/ListAgents", Role::kViewer},
      {"/bert.v1.JobService/ListJobArtifacts", Role::kViewer},
      {"/bert.v1.JobService/PullArtifact", Role::kViewer},
      {"/bert.v1.JobService/RetryJob", Role::kSubmitter},   // own jobs; admins all
      {"/bert.v1.JobService/PauseJob", Role::kSubmitter},
      {"/bert.v1.JobService/ResumeJob", Role::kSubmitter},
      {"/bert.v1.JobService/DeleteJob", Role::kSubmitter},
      {"/bert.v1.JobService/GetClusterInfo", Role::kSubmitter},       // before a submit
      {"/bert.v1.JobService/UploadInput", Role::kSubmitter},          // corpus files
      {"/bert.v1.JobService/GetInputUploadState", Role::kSubmitter},
      {"/bert.v1.AgentService/Register", Role::kAgent},
      {"/bert.v1.AgentService/Heartbeat", Role::kAgent},
      {"/bert.v1.AgentService/AcquireAssignment", Role::kAgent},
      {"/bert.v1.AgentService/ReportStage", Role::kAgent},
      {"/bert.v1.AgentService/CompleteStage", Role::kAgent},
      {"/bert.v1.AgentService/UploadArtifact", Role::kAgent},
      {"/bert.v1.AgentService/DownloadArtifact", Role::kAgent},
      {"/bert.v1.AgentService/GetUploadState", Role::kAgent},
      {"/bert.v1.AgentService/PublishRendezvous", Role::kAgent},
      {"/bert.v1.AgentService/AwaitRendezvous", Role::kAgent},
  };
  auto it = kTable.find(method);
  if (it == kTable.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<Principal> Authorizer::Authorize(std::string_view method,
                                                const grpc::ServerContext& context) const {
  const std::optional<Role> need = RequiredRole(method);
  if (!need) {
    return absl::PermissionDeniedError(absl::StrCat("no access rule for ", std::string(method)));
  }
  std::string certificate_name;
  if (*need == Role::kAgent && agent_client_cert_) {
    auto auth = context.auth_context();
    if (auth == nullptr || !auth->IsPeerAuthenticated()) {
      return absl::UnauthenticatedError("agents must present a client certificate (mutual TLS)");
    }
    const std::vector<grpc::string_ref> names = auth->FindPropertyValues("x509_common_name");
    if (names.size() != 1 || names[0].empty()) {
      return absl::UnauthenticatedError(
          "an agent's client certificate must carry one common name: its agent id");
    }
    certificate_name.assign(names[0].data(), names[0].size());
  }
  if (!tokens_) return Principal{"local", Role::kAdmin, std::move(certificate_name)};
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError("missing 'authorization: Bearer <token>' metadata");
  }
  std::string_view value(it->second.data(), it->second.size());
  constexpr std::string_view kBearer = "Bearer ";
  if (value.size() <= kBearer.size() || value.substr(0, kBearer.size()) != kBearer) {
    return absl::UnauthenticatedError("authorization metadata is not 'Bearer <token>'");
  }
  std::optional<Principal> who = tokens_->Find(value.substr(kBearer.size()));
  if (!who) return absl::UnauthenticatedError("unknown bearer token");
  if (!Satisfies(who->role, *need)) {
    return absl::PermissionDeniedError(absl::StrCat("role ", std::string(RoleName(who->role)), " of '",
                                                    who->subject, "' may not call ",
                                                    std::string(method), " (needs ",
                                                    std::string(RoleName(*need)), ")"));
  }
  who->certificate_name = std::move(certificate_name);
  return *who;
}

}  // namespace bert::server
