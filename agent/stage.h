// The one interface every stage runs behind: inputs are local, verified
// artifacts; outputs are files or directories the stage leaves under its
// output directory; progress, logs, metrics and checkpoints go to a
// StageReporter, which also carries cancellation.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/stage_reporter.h"
#include "bert/v1/agent_service.pb.h"
#include "bert/v1/job.pb.h"
#include "bert/v1/spec.pb.h"

namespace bert::agent {

class RendezvousChannel;  // agent/gang_rendezvous.h

struct StageInput {
  v1::Artifact artifact;
  std::string path;  // on local disk (or the shared filesystem), verified
};

struct StageContext {
  v1::AssignmentRef ref;
  int shard_count = 1;        // a join piece has ref.shard_index == shard_count
  v1::JobSpec spec;           // normalised
  v1::Rendezvous rendezvous;  // PRETRAIN only; master_port may be left to choose
  // bertd's side of the gang rendezvous (agent/gang_rendezvous.h); null without bertd.
  RendezvousChannel* rendezvous_channel = nullptr;
  // The address other hosts reach this one at (bert-agent --address); "": unknown.
  std::string host_address;
  std::vector<StageInput> inputs;
  std::string output_dir;   // exists; the same directory for every attempt of this piece
  std::string worker_path;  // bert-worker, for the stages that need libtorch
  int threads = 1;
  std::string device = "cpu";  // "cpu", "cuda" or "hpu"
  std::chrono::milliseconds cancel_grace{10000};
  // The only directories corpus inputs may be read from (--data-root); empty:
  // unconfined. PREPARE enforces it (data/input_plan.h InputPolicy).
  std::vector<std::string> data_roots;
  // PREPARE: the job's corpus files uploaded from the submitting machine
  // (Assignment.input_files); each is among `inputs` as "inputs/<sha256>".
  // A source listed here reads exactly these files instead of its paths.
  std::vector<v1::InputFile> input_files;
  // Uploads a file or directory of this piece as its artifact `name`
  // ("<job>/<stage>/<name>") while the stage runs, e.g. the pretrain stage's
  // TensorBoard logs; null without a controller (run-stage).
  std::function<absl::Status(const std::string& name, const std::string& path)> publish_artifact;

  bool is_join() const { return ref.shard_index() >= shard_count && shard_count > 1; }
  // Inputs produced by `kind`, in their given order.
  std::vector<const StageInput*> InputsFrom(v1::StageKind kind) const;
};

struct StageOutput {
  std::string name;  // the artifact's name: "corpus-00000", "tokenizer", "dataset", ...
  std::string path;  // a file or directory under StageContext::output_dir
};

// Runs one piece of one stage. Failures are StageFailure statuses (agent/failure.h).
class Stage {
 public:
  virtual ~Stage() = default;
  virtual absl::StatusOr<std::vector<StageOutput>> Run(const StageContext& context,
                                                       StageReporter& reporter) = 0;
};

// The stage that runs `kind`; UNIMPLEMENTED for kinds this build cannot run.
absl::StatusOr<std::unique_ptr<Stage>> MakeStage(v1::StageKind kind);

}  // namespace bert::agent
