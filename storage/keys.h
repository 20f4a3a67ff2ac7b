// Key layout of the controller's RocksDB store: one key prefix per table.
//
//   meta/schema_version                      -> decimal schema version
//   job/<job_id>                             -> bert.v1.Job
//   idem/<subject>\0<idempotency_key>        -> job id
//   event/<job_id>\0<seq:020>                -> bert.v1.Event
//   metric/<job_id>\0<name>\0<seq:020>       -> bert.v1.MetricPoint
//   ckpt/<job_id>\0<step:020>                -> bert.v1.CheckpointRecord
//   agent/<agent_id>                         -> bert.v1.AgentInfo
//   artifact/<artifact_id>                   -> bert.v1.Artifact
//
// Numbers are zero-padded so that byte order is numeric order; '\0' separates
// components that may themselves contain '/'.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bert::storage::keys {

inline constexpr std::string_view kSchemaVersion = "meta/schema_version";
inline constexpr std::string_view kJobPrefix = "job/";
inline constexpr std::string_view kAgentPrefix = "agent/";
inline constexpr std::string_view kArtifactPrefix = "artifact/";

std::string Job(std::string_view job_id);
std::string Idempotency(std::string_view subject, std::string_view key);
std::string Event(std::string_view job_id, int64_t seq);
std::string EventPrefix(std::string_view job_id);
std::string Metric(std::string_view job_id, std::string_view name, int64_t seq);
std::string MetricPrefix(std::string_view job_id);
std::string Checkpoint(std::string_view job_id, int64_t step);
std::string CheckpointPrefix(std::string_view job_id);
std::string Agent(std::string_view agent_id);
std::string Artifact(std::string_view artifact_id);
// "artifact/<job_id>/": the artifacts a job's stages produced (artifact ids
// start with "<job>/", protocol/artifact_ids.h).
std::string JobArtifactPrefix(std::string_view job_id);

}  // namespace bert::storage::keys
