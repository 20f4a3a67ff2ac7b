#include "agent/worker_stages.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/data_roots.h"
#include "agent/export_publisher.h"
#include "agent/failure.h"
#include "agent/gang_rendezvous.h"
#include "agent/tensorboard_publisher.h"
#include "agent/worker_process.h"
#include "common/atomic_file.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "protocol/artifact_ids.h"
#include "protocol/checkpoint_names.h"
#include "protocol/model_source.h"
#include "protocol/rendezvous.h"
#include "protocol/worker_config.h"
#if BERT_AGENT_WITH_DATA_STAGES
#include "tokenizer/tokenizer.h"
#endif

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

// How often the pretrain stage re-uploads its TensorBoard logs while it trains.
constexpr std::chrono::seconds kTensorBoardUploadInterval{30};

// The step of a "checkpoint-<step>" name, or -1.
int64_t CheckpointStep(const std::string& name) {
  return protocol::ParseCheckpointStep(name).value_or(-1);
}

// The newest checkpoint directory under `dir`, or "".
std::string NewestCheckpoint(const fs::path& dir) {
  std::error_code ec;
  int64_t best = -1;
  std::string best_path;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory()) continue;
    const int64_t step = CheckpointStep(e.path().filename().string());
    if (step > best) {
      best = step;
      best_path = e.path().string();
    }
  }
  return best_path;
}

absl::Status CopyTree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::remove_all(to, ec);
  fs::create_directories(to.parent_path(), ec);
  const fs::path tmp = to.string() + ".tmp-copy";
  fs::remove_all(tmp, ec);
  fs::copy(from, tmp, fs::copy_options::recursive, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("copy ", from.string(), " to ", tmp.string(), ": ", ec.message()));
  fs::rename(tmp, to, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("rename ", tmp.string(), " to ", to.string(), ": ", ec.message()));
  return SyncDirectory(to.parent_path().string());
}

// Forwards to the stage's reporter; Cancelled() also once StopAll() was called,
// so one failed rank stops its siblings.
class GangReporter final : public ForwardingReporter {
 public:
  using ForwardingReporter::ForwardingReporter;
  bool Cancelled() const override { return stopped_ || next_.Cancelled(); }
  void StopAll() { stopped_ = true; }

 private:
  std::atomic<bool> stopped_{false};
};

absl::Status RunWorkerWithConfig(const StageContext& ctx, StageReporter& reporter,
                                 const std::string& subcommand, const nlohmann::json& config,
                                 const std::string& config_name = "", int threads = 0) {
  if (ctx.worker_path.empty() || !fs::exists(ctx.worker_path)) {
    return StageFailure(v1::INTERNAL,
                        absl::StrCat("the worker (bert-worker, or bert-worker-py: --worker-front) "
                                     "is not at '", ctx.worker_path, "'"));
  }
  const std::string config_path =
      (fs::path(ctx.output_dir) /
       (config_name.empty() ? subcommand + "-config.json" : config_name))
          .string();
  BERT_RETURN_IF_ERROR(WriteFileAtomically(config_path, config.dump(2)));
  WorkerOptions options;
  options.argv = {ctx.worker_path, subcommand, "--config", config_path};
  options.extra_env = {absl::StrCat("OMP_NUM_THREADS=", threads > 0 ? threads : ctx.threads)};
  options.cancel_grace = ctx.cancel_grace;
  return RunWorker(options, reporter);
}

// The job spec's model and training settings (defaults already filled by the
// spec library), this host's device and the gang's rendezvous, as CONFIG.json
// for `bert-worker pretrain`; the rank fields are set per local rank.
protocol::WorkerPretrainConfig PretrainConfig(const StageContext& ctx,
                                              const std::string& dataset_dir,
                                              int64_t vocab_size) {
  protocol::WorkerPretrainConfig config;
  config.dataset_dir = dataset_dir;
  config.output_dir = ctx.output_dir;
  config.device = ctx.device;
  config.threads = ctx.threads;

  const v1::ModelSpec& m = ctx.spec.model();
  protocol::WorkerModelConfig& model = config.model;
  model.vocab_size = vocab_size;
  // A warm start's architecture is its source's (the worker reads it): the
  // sizes are written only when the spec knows them (bertd read the model's
  // config.json or the job it names), and the worker checks they agree.
  if (m.from().empty() || m.hidden_size() > 0) {
    model.hidden_size = m.hidden_size();
    model.num_hidden_layers = m.num_hidden_layers();
    model.num_attention_heads = m.num_attention_heads();
    model.intermediate_size = m.intermediate_size();
    model.max_position_embeddings = m.max_position_embeddings();
    model.type_vocab_size = m.type_vocab_size();
    model.hidden_dropout_prob = m.hidden_dropout_prob();
    model.attention_probs_dropout_prob = m.attention_probs_dropout_prob();
  }
  if (!m.initialization().empty()) model.initialization = m.initialization();

  const v1::TrainingSpec& t = ctx.spec.training();
  protocol::WorkerTrainingConfig& training = config.training;
  training.max_steps = t.max_steps();
  training.per_device_batch_size = t.per_device_batch_size();
  training.learning_rate = t.learning_rate();
  training.warmup_steps = t.warmup_steps();
  training.warmup_ratio = t.warmup_ratio();
  training.weight_decay = t.weight_decay();
  training.gradient_accumulation_steps = t.gradient_accumulation_steps();
  training.max_grad_norm = t.max_grad_norm();
  training.mlm_probability = t.mlm_probability();
  training.precision = t.precision();
  training.save_steps = t.save_steps();
  training.save_total_limit = t.save_total_limit();
  training.logging_steps = t.logging_steps();
  training.eval_steps = t.eval_steps();
  training.seed = t.seed();
  training.peak_flops = t.peak_tflops() * 1e12;  // 0: the engine's table (GPUs) or measurement (CPU)

  const v1::Rendezvous& rv = ctx.rendezvous;
  protocol::WorkerDistributedConfig& distributed = config.distributed;
  distributed.backend = ctx.device == "cuda" ? "nccl" : (ctx.device == "hpu" ? "hccl" : "gloo");
  distributed.world_size = std::max(1, rv.world_size());
  if (!rv.master_address().empty()) distributed.master_addr = rv.master_address();
  if (rv.master_port() > 0) distributed.master_port = rv.master_port();
  if (protocol::SpansHosts(rv)) distributed.local_addr = ctx.host_address;
  return config;
}

// Whether `in` is a checkpoint of this job to resume from: not the warm
// start's (another job's checkpoint, named by model.from, which gives only its
// weights).
bool IsOwnCheckpoint(const StageContext& ctx, const StageInput& in) {
  if (CheckpointStep(in.artifact.name()) < 0) return false;
  const std::optional<protocol::ParsedArtifactId> id = protocol::ParseArtifactId(in.artifact.id());
  return id.has_value() && id->job_id == ctx.ref.job_id();
}

// The local path of the warm start's weights (protocol/model_source.h), ""
// without model.from; SPEC_ERROR when the controller did not give it.
absl::StatusOr<std::string> WarmStartPath(const StageContext& ctx) {
  const std::string& from = ctx.spec.model().from();
  if (from.empty()) return std::string();
  const std::string id = protocol::WarmStartWeightsId(ctx.ref.job_id(), from);
  for (const StageInput& in : ctx.inputs) {
    if (!id.empty() && in.artifact.id() == id) return in.path;
  }
  return StageFailure(v1::SPEC_ERROR, absl::StrCat("pretrain: model.from '", from, "': the input ",
                                                   id.empty() ? "(malformed reference)" : id,
                                                   " was not given to this piece"));
}

// A gang across hosts resumes only from what every host holds: the
// checkpoints bertd offered (recorded, so verified at upload). A newer one
// left here by an earlier attempt whose record never reached bertd would make
// this host's ranks resume at another step than the others', so it goes.
absl::Status SetAsideUnofferedCheckpoints(const StageContext& ctx, const fs::path& checkpoints,
                                          StageReporter& reporter) {
  int64_t offered = -1;
  for (const StageInput* in : ctx.InputsFrom(v1::PRETRAIN)) {
    if (IsOwnCheckpoint(ctx, *in)) offered = std::max(offered, CheckpointStep(in->artifact.name()));
  }
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(checkpoints, ec)) {
    const std::string name = e.path().filename().string();
    if (CheckpointStep(name) <= offered) continue;
    fs::remove_all(e.path(), ec);
    if (ec) {
      return StageFailure(v1::INTERNAL, absl::StrCat("pretrain: remove ", e.path().string(), ": ",
                                                     ec.message()));
    }
    reporter.Log("warning", absl::StrCat("setting aside ", name,
                                         ": bertd never recorded it, and every host of the gang "
                                         "must resume from the same checkpoint"));
  }
  return absl::OkStatus();
}

// Runs this host's ranks of a training gang, one bert-worker per local device
// (`local_world_size` of them), each with its global rank and device index.
// When one rank fails the others are stopped (they would wait in collectives
// otherwise), and the first real failure is returned.
absl::Status RunLocalRanks(const StageContext& ctx, StageReporter& reporter,
                           const protocol::WorkerPretrainConfig& config) {
  const v1::Rendezvous& rv = ctx.rendezvous;
  const int world = std::max(1, rv.world_size());
  const int local = std::clamp(rv.local_world_size(), 1, world);
  auto rank_config = [&](int local_rank) {
    protocol::WorkerPretrainConfig c = config;
    c.distributed.rank = world > 1 ? rv.node_rank() * local + local_rank : 0;
    c.distributed.local_rank = local_rank;
    if (local > 1 && ctx.device == "cpu") c.threads = std::max(1, ctx.threads / local);
    return c;
  };
  if (local == 1) {
    return RunWorkerWithConfig(ctx, reporter, "pretrain", protocol::ToJson(rank_config(0)));
  }

  GangReporter gang(reporter);
  std::vector<absl::Status> results(local);
  std::vector<std::thread> ranks;
  for (int i = 0; i < local; ++i) {
    ranks.emplace_back([&, i] {
      const protocol::WorkerPretrainConfig c = rank_config(i);
      results[i] = RunWorkerWithConfig(ctx, gang, "pretrain", protocol::ToJson(c),
                                       absl::StrCat("pretrain-config.rank", i, ".json"),
                                       c.threads);
      // A paused rank stopped with the others at the same step: nothing to stop.
      if (!results[i].ok() && CauseOf(results[i]) != v1::PAUSED_BY_USER) gang.StopAll();
    });
  }
  for (std::thread& t : ranks) t.join();
  // A rank stopped because another failed reports a cancellation; prefer the cause.
  for (const absl::Status& s : results) {
    if (!s.ok() && CauseOf(s) != v1::CANCELLED_BY_USER) return s;
  }
  for (const absl::Status& s : results) BERT_RETURN_IF_ERROR(s);
  return absl::OkStatus();
}

class PretrainStage final : public Stage {
 public:
  absl::StatusOr<std::vector<StageOutput>> Run(const StageContext& ctx,
                                               StageReporter& reporter) override {
    const StageInput* dataset = nullptr;
    for (const StageInput* in : ctx.InputsFrom(v1::PREPROCESS)) {
      if (dataset == nullptr || in->artifact.name() == "dataset") dataset = in;
    }
    std::string dataset_dir = dataset ? dataset->path : ctx.spec.preprocess().from_dataset();
    if (dataset_dir.empty()) return StageFailure(v1::SPEC_ERROR, "pretrain: no dataset input");
    if (dataset == nullptr) {
      BERT_RETURN_IF_ERROR(
          CheckUnderDataRoots("preprocess.from_dataset", dataset_dir, ctx.data_roots));
    }
    auto manifest_text = ReadFile((fs::path(dataset_dir) / "manifest.json").string());
    if (!manifest_text.ok()) {
      return StageFailure(
          v1::ARTIFACT_CORRUPT,
          absl::StrCat("pretrain: dataset ", dataset_dir, ": ", manifest_text.status().message()));
    }
    nlohmann::json manifest = nlohmann::json::parse(*manifest_text, nullptr, false);
    if (manifest.is_discarded() || !manifest.contains("vocab_size") ||
        !manifest["vocab_size"].is_number_integer()) {
      return StageFailure(v1::ARTIFACT_CORRUPT, absl::StrCat("pretrain: ", dataset_dir,
                                                             "/manifest.json has no vocab_size"));
    }

    // Warm start (model.from): the input that holds the initial weights.
    BERT_ASSIGN_OR_RETURN(const std::string init_from, WarmStartPath(ctx));

    // A retry on another host starts from the checkpoint the controller kept.
    const fs::path checkpoints = fs::path(ctx.output_dir) / "checkpoints";
    std::error_code ec;
    fs::create_directories(checkpoints, ec);
    for (const StageInput* in : ctx.InputsFrom(v1::PRETRAIN)) {
      if (!IsOwnCheckpoint(ctx, *in)) continue;
      const fs::path dest = checkpoints / in->artifact.name();
      if (!fs::exists(dest) && fs::path(in->path) != dest) {
        BERT_RETURN_IF_ERROR(CopyTree(in->path, dest));
        reporter.Log("info", absl::StrCat("resuming from ", in->artifact.name()));
      }
    }

    const bool spans_hosts = protocol::SpansHosts(ctx.rendezvous);
    if (spans_hosts) BERT_RETURN_IF_ERROR(SetAsideUnofferedCheckpoints(ctx, checkpoints, reporter));

    // Where the gang meets: node 0 picks the port on this host, the others
    // learn it through bertd (protocol/rendezvous.h).
    StageContext gang = ctx;
    BERT_ASSIGN_OR_RETURN(
        gang.rendezvous,
        ResolveRendezvous(ctx.ref, ctx.rendezvous, ctx.rendezvous_channel,
                          [&reporter] { return reporter.Cancelled(); },
                          absl::Seconds(protocol::WorkerDistributedConfig{}.timeout_seconds)));
    if (spans_hosts) {
      reporter.Log("info", absl::StrCat("gang rendezvous at ", gang.rendezvous.master_address(), ":",
                                        gang.rendezvous.master_port(), " as node ",
                                        gang.rendezvous.node_rank()));
    }
    protocol::WorkerPretrainConfig config =
        PretrainConfig(gang, dataset_dir, manifest["vocab_size"].get<int64_t>());
    config.init_from = init_from;
    // TensorBoard logs reach bertd as they are written (rank 0 writes them,
    // on node 0's host), and once more when the workers are done.
    std::unique_ptr<TensorBoardPublisher> tensorboard;
    if (ctx.publish_artifact && ctx.rendezvous.node_rank() == 0) {
      tensorboard = std::make_unique<TensorBoardPublisher>(
          (fs::path(ctx.output_dir) / "runs").string(),
          (fs::path(ctx.output_dir) / std::string(protocol::kTensorBoardArtifact)).string(),
          kTensorBoardUploadInterval,
          [&ctx](const std::string& path) {
            return ctx.publish_artifact(std::string(protocol::kTensorBoardArtifact), path);
          },
          [&reporter](const std::string& message) { reporter.Log("warning", message); });
    }
    absl::Status ran = RunLocalRanks(gang, reporter, config);
    if (tensorboard != nullptr && !reporter.Cancelled()) tensorboard->Finish();
    tensorboard.reset();
    BERT_RETURN_IF_ERROR(ran);

    // Rank 0 writes the checkpoints, on node 0's host: the other hosts' pieces
    // produce nothing of their own.
    if (spans_hosts && ctx.rendezvous.node_rank() != 0) return std::vector<StageOutput>{};
    const std::string last = NewestCheckpoint(checkpoints);
    if (last.empty()) {
      return StageFailure(v1::WORKER_CRASHED,
                          "pretrain: the worker succeeded but left no checkpoint");
    }
    return std::vector<StageOutput>{{fs::path(last).filename().string(), last}};
  }
};

// The export reads a tokenizer directory (tokenizer.json and vocab.txt). A
// tokenizer.from that names one file (a tokenizer.json or a vocab.txt), or a
// directory with only one of them (a warm start's model directory with just
// vocab.txt), is loaded and saved whole into the stage's directory first.
absl::StatusOr<std::string> TokenizerDir(const std::string& path, const StageContext& ctx) {
  std::error_code ec;
  if (fs::is_directory(path, ec) && fs::exists(fs::path(path) / "tokenizer.json", ec) &&
      fs::exists(fs::path(path) / "vocab.txt", ec)) {
    return path;
  }
#if BERT_AGENT_WITH_DATA_STAGES
  absl::StatusOr<tokenizer::Tokenizer> loaded = tokenizer::Tokenizer::Load(path);
  if (!loaded.ok()) {
    return StageFailure(v1::DATA_ERROR, absl::StrCat("export: tokenizer ", path, ": ",
                                                     loaded.status().message()));
  }
  const fs::path dir = fs::path(ctx.output_dir) / "tokenizer";
  fs::remove_all(dir, ec);
  if (absl::Status saved = loaded->Save(dir.string()); !saved.ok()) {
    return StageFailure(v1::INTERNAL, absl::StrCat("export: saving the tokenizer of ", path,
                                                   " to ", dir.string(), ": ", saved.message()));
  }
  return dir.string();
#else
  if (fs::is_directory(path, ec)) return path;
  return fs::path(path).parent_path().string();  // the directory the file came from
#endif
}

class ExportStage final : public Stage {
 public:
  absl::StatusOr<std::vector<StageOutput>> Run(const StageContext& ctx,
                                               StageReporter& reporter) override {
    const StageInput* checkpoint = nullptr;
    for (const StageInput* in : ctx.InputsFrom(v1::PRETRAIN)) {
      if (checkpoint == nullptr ||
          CheckpointStep(in->artifact.name()) > CheckpointStep(checkpoint->artifact.name())) {
        checkpoint = in;
      }
    }
    if (checkpoint == nullptr) return StageFailure(v1::SPEC_ERROR, "export: no checkpoint input");
    std::string tokenizer_dir;
    for (const StageInput* in : ctx.InputsFrom(v1::TOKENIZER)) tokenizer_dir = in->path;
    if (tokenizer_dir.empty() && !ctx.spec.tokenizer().from().empty()) {
      tokenizer_dir = ctx.spec.tokenizer().from();
      BERT_RETURN_IF_ERROR(CheckUnderDataRoots("tokenizer.from", tokenizer_dir, ctx.data_roots));
    }
    if (tokenizer_dir.empty()) return StageFailure(v1::SPEC_ERROR, "export: no tokenizer input");
    BERT_ASSIGN_OR_RETURN(tokenizer_dir, TokenizerDir(tokenizer_dir, ctx));
    // Refuse an output.dir that is not ours before spending the export's time.
    const std::string& out = ctx.spec.output().dir();
    if (!out.empty()) BERT_RETURN_IF_ERROR(CheckExportTarget(out, ctx.ref.job_id()));

    const fs::path model = fs::path(ctx.output_dir) / "model";
    std::error_code ec;
    fs::remove_all(model, ec);  // a previous attempt's partial output
    protocol::WorkerExportConfig config;
    config.checkpoint_dir = checkpoint->path;
    config.tokenizer_dir = tokenizer_dir;
    config.output_dir = model.string();
    if (absl::Status s = RunWorkerWithConfig(ctx, reporter, "export", protocol::ToJson(config));
        !s.ok()) {
      fs::remove_all(model, ec);  // a partial model (a full disk) is not kept
      return s;
    }
    if (!fs::is_directory(model)) {
      return StageFailure(v1::WORKER_CRASHED, "export: the worker succeeded but wrote no model");
    }
    if (!out.empty()) {
      BERT_RETURN_IF_ERROR(PublishExport(model.string(), out, ctx.ref.job_id()));
      reporter.Log("info", absl::StrCat("model written to ", out));
    }
    return std::vector<StageOutput>{{"model", model.string()}};
  }
};

}  // namespace

std::unique_ptr<Stage> MakePretrainStage() { return std::make_unique<PretrainStage>(); }
std::unique_ptr<Stage> MakeExportStage() { return std::make_unique<ExportStage>(); }

}  // namespace bert::agent
