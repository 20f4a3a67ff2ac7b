#include "storage/keys.h"

#include <cstdio>

namespace bert::storage::keys {
namespace {

std::string Padded(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(n));
  return buf;
}

std::string Join(std::string_view prefix, std::string_view a) {
  std::string out(prefix);
  out.append(a);
  return out;
}

}  // namespace

std::string Job(std::string_view job_id) { return Join(kJobPrefix, job_id); }

std::string Idempotency(std::string_view subject, std::string_view key) {
  std::string out = Join("idem/", subject);
  out.push_back('\0');
  out.append(key);
  return out;
}

std::string EventPrefix(std::string_view job_id) {
  std::string out = Join("event/", job_id);
  out.push_back('\0');
  return out;
}

std::string Event(std::string_view job_id, int64_t seq) { return EventPrefix(job_id) + Padded(seq); }

std::string MetricPrefix(std::string_view job_id) {
  std::string out = Join("metric/", job_id);
  out.push_back('\0');
  return out;
}

std::string Metric(std::string_view job_id, std::string_view name, int64_t seq) {
  std::string out = MetricPrefix(job_id);
  out.append(name);
  out.push_back('\0');
  return out + Padded(seq);
}

std::string CheckpointPrefix(std::string_view job_id) {
  std::string out = Join("ckpt/", job_id);
  out.push_back('\0');
  return out;
}

std::string Checkpoint(std::string_view job_id, int64_t step) {
  return CheckpointPrefix(job_id) + Padded(step);
}

std::string Agent(std::string_view agent_id) { return Join(kAgentPrefix, agent_id); }

std::string Artifact(std::string_view artifact_id) { return Join(kArtifactPrefix, artifact_id); }

std::string JobArtifactPrefix(std::string_view job_id) {
  return Join(kArtifactPrefix, job_id) + "/";
}

}  // namespace bert::storage::keys
