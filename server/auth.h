// Who may call what: bearer tokens with roles, checked for every call in one
// place (RpcGuard calls Authorize first thing).
//
// Roles: viewer (read jobs, events, metrics, agents), submitter (viewer +
// validate, submit, cancel its own jobs), agent (the AgentService), admin
// (everything). The tokens file has one "TOKEN ROLE SUBJECT" per line; '#'
// starts a comment. Without a tokens file every caller is admin "local" (only
// allowed on loopback, see bertd's flags).
//
// An agent token's SUBJECT is the agent id it may act as: every AgentService
// call that names an agent id (or a piece that agent runs) is checked with
// CheckActsAs. Admin may act as any agent. A subject ending in '*' ("cpu-*")
// names every agent id with that prefix: a token shared by a pool of agents,
// which can then act as one another (prefer one token per agent).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"

namespace bert::server {

enum class Role { kViewer, kSubmitter, kAgent, kAdmin };

std::string_view RoleName(Role role);

struct Principal {
  Principal() = default;
  Principal(std::string subject, Role role, std::string certificate_name = "")
      : subject(std::move(subject)), role(role), certificate_name(std::move(certificate_name)) {}

  std::string subject;
  Role role = Role::kViewer;
  // With mutual TLS, the common name of the caller's verified certificate on
  // an AgentService call: the only agent id it may act as (CheckActsAs),
  // whatever its token allows. Empty: no certificate binding.
  std::string certificate_name;
};

// Immutable after construction; thread-safe to read.
class TokenTable {
 public:
  // `source` names the text in errors ("tokens.txt:3: unknown role 'root'").
  static absl::StatusOr<TokenTable> Parse(std::string_view text, std::string_view source);
  static absl::StatusOr<TokenTable> Load(const std::string& path);

  // Adds a token (e.g. the embedded agent's, generated at startup).
  void Add(std::string token, Principal principal);
  // Constant-time in the token's contents.
  std::optional<Principal> Find(std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, Principal>> entries_;
};

// OK when `who` may act as agent `agent_id`: an admin, or an agent token
// whose subject is `agent_id` (or a "prefix-*" matching it); and, with a
// certificate name, only when it is `agent_id`. PERMISSION_DENIED naming
// both otherwise.
absl::Status CheckActsAs(const Principal& who, std::string_view agent_id);

// Thread-safe after construction.
class Authorizer {
 public:
  // `tokens` nullopt: authentication is off and every caller is admin "local".
  // `agent_client_cert`: AgentService callers must also present a verified
  // client certificate (mutual TLS).
  Authorizer(std::optional<TokenTable> tokens, bool agent_client_cert)
      : tokens_(std::move(tokens)), agent_client_cert_(agent_client_cert) {}

  // The role `method` ("/bert.v1.JobService/SubmitJob") needs; nullopt for an unknown method.
  static std::optional<Role> RequiredRole(std::string_view method);

  // UNAUTHENTICATED without a valid "authorization: Bearer TOKEN",
  // PERMISSION_DENIED when the token's role is not enough.
  absl::StatusOr<Principal> Authorize(std::string_view method, const grpc::ServerContext& context) const;
  // True when callers must present a token (a tokens file is configured).
  bool enabled() const { return tokens_.has_value(); }

 private:
  std::optional<TokenTable> tokens_;
  bool agent_client_cert_;
};

}  // namespace bert::server
