// Runs one assignment on this host: makes its inputs local and verified
// (a shared-filesystem path used in place, else a download through the
// controller), runs the stage, and publishes its outputs (recorded in place on
// a shared filesystem, else uploaded). The same code serves the agent and
// `bert-agent run-stage`.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/artifact_transfer.h"
#include "agent/gang_rendezvous.h"
#include "agent/stage_reporter.h"
#include "bert/v1/agent_service.pb.h"
#include "metrics/agent_metrics.h"

namespace bert::agent {

struct RunnerEnvironment {
  std::string work_dir;     // this agent's private directory
  bool shared_fs = false;   // artifact_root is visible here
  std::string worker_path;  // bert-worker
  int threads = 1;
  std::string device = "cpu";
  std::chrono::milliseconds cancel_grace{10000};
  std::vector<std::string> data_roots;       // where corpus inputs may be read; empty: anywhere
  bool spec_dir_root = false;                // also each job's spec directory (data_roots.h)
  ArtifactTransfer* transfer = nullptr;      // null without a controller; not owned
  metrics::AgentMetrics* metrics = nullptr;  // artifact bytes moved; null: none; not owned
  RendezvousChannel* rendezvous = nullptr;   // gang ports through bertd; null: none; not owned
  std::string address;                       // other hosts reach this one here ("": unknown)
};

// Where this piece writes: "<root>/<job>/<stage>/shard-<i>", root being the
// controller's artifact root on a shared filesystem, else "<work_dir>/jobs".
std::string OutputDirFor(const v1::Assignment& assignment, const RunnerEnvironment& env);

// Runs it; the artifacts to hand to CompleteStage (ids as in
// protocol/artifact_ids.h OutputArtifactId), or a StageFailure.
absl::StatusOr<std::vector<v1::Artifact>> RunAssignment(const v1::Assignment& assignment,
                                                        const RunnerEnvironment& env,
                                                        StageReporter& reporter);

// Fills a checkpoint record from a worker: its job, artifact id, size and
// sha256 (recomputed here with the manifest rule) and, without a shared
// filesystem, uploads it so a replacement agent elsewhere can resume.
void PublishCheckpoint(const v1::Assignment& assignment, const RunnerEnvironment& env,
                       v1::CheckpointRecord* record);

}  // namespace bert::agent
