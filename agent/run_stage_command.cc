#include "agent/run_stage_command.h"

#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/assignment_runner.h"
#include "agent/batching_reporter.h"
#include "agent/failure.h"
#include "agent/worker_front.h"
#include "common/atomic_file.h"
#include "common/loopback_port.h"
#include "nlohmann/json.hpp"
#include "protocol/stage_names.h"
#include "spec/job_spec.h"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

constexpr char kJobId[] = "local";

std::vector<v1::Artifact> LoadIndex(const std::string& path) {
  std::vector<v1::Artifact> out;
  auto text = ReadFile(path);
  if (!text.ok()) return out;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& item : j) {
    v1::Artifact a;
    if (google::protobuf::util::JsonStringToMessage(item.dump(), &a).ok()) out.push_back(a);
  }
  return out;
}

absl::Status SaveIndex(const std::string& path, const std::vector<v1::Artifact>& artifacts) {
  nlohmann::json j = nlohmann::json::array();
  for (const v1::Artifact& a : artifacts) {
    std::string s;
    google::protobuf::util::JsonPrintOptions o;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(a, &s, o);
    j.push_back(nlohmann::json::parse(s));
  }
  return WriteFileAtomically(path, j.dump(2) + "\n");
}

void PrintReports(const std::vector<v1::StageReport>& batch) {
  const bool tty = isatty(STDERR_FILENO);
  for (const v1::StageReport& r : batch) {
    std::string line;
    if (r.has_progress()) {
      const v1::Progress& p = r.progress();
      line = p.total() > 0 ? absl::StrFormat("progress %d/%d %s (%.0f%%)", p.done(), p.total(),
                                             p.unit(), 100.0 * p.done() / p.total())
                           : absl::StrFormat("progress %d %s", p.done(), p.unit());
      if (p.rate_per_second() > 0) absl::StrAppendFormat(&line, ", %.1f/s", p.rate_per_second());
      if (tty) {
        fprintf(stderr, "\r\033[K%s", line.c_str());
        continue;
      }
    } else if (r.has_metric()) {
      line = absl::StrFormat("metric %s = %g (step %d)", r.metric().name(), r.metric().value(),
                             r.metric().step());
    } else if (r.has_log()) {
      line = absl::StrCat(r.log().level(), ": ", r.log().message());
    } else if (r.has_checkpoint()) {
      line = absl::StrCat("checkpoint ", r.checkpoint().step(), " at ",
                          r.checkpoint().artifact().uri());
    }
    fprintf(stderr, "%s%s\n", tty ? "\r\033[K" : "", line.c_str());
  }
}

}  // namespace

int RunStageCommand(const RunStageOptions& options, const std::atomic<bool>& cancel) {
  const std::optional<v1::StageKind> stage =
      protocol::ParseStageName(absl::AsciiStrToLower(options.stage));
  if (!stage) {
    fprintf(stderr,
            "run-stage: unknown stage '%s' (prepare, tokenizer, preprocess, pretrain, export)\n",
            options.stage.c_str());
    return 2;
  }
  const v1::StageKind kind = *stage;
  if (options.shards < 1 || options.shard < 0 || options.shard > options.shards ||
      (options.shard == options.shards && options.shards == 1)) {
    fprintf(stderr, "run-stage: --shard must be in 0..%d (%d = the join, when --shards > 1)\n",
            options.shards - 1, options.shards);
    return 2;
  }
  auto yaml = ReadFile(options.spec_path);
  if (!yaml.ok()) {
    fprintf(stderr, "run-stage: %s\n", std::string(yaml.status().message()).c_str());
    return 2;
  }
  spec::ParseOptions parse;
  parse.base_dir = fs::absolute(options.spec_path).parent_path().string();
  spec::ParseResult parsed = spec::ParseJobSpec(*yaml, parse);
  if (!parsed.ok()) {
    fputs(spec::FormatErrors(options.spec_path, parsed.errors).c_str(), stderr);
    return 2;
  }

  const std::string work_dir = fs::absolute(options.work_dir).string();
  std::error_code ec;
  fs::create_directories(work_dir, ec);
  const std::string index_path = work_dir + "/artifacts.json";
  std::vector<v1::Artifact> index = LoadIndex(index_path);

  v1::Assignment assignment;
  v1::AssignmentRef* ref = assignment.mutable_ref();
  ref->set_job_id(kJobId);
  ref->set_stage(kind);
  ref->set_shard_index(options.shard);
  ref->set_attempt(1);
  assignment.set_shard_count(options.shards);
  *assignment.mutable_spec() = parsed.spec;
  assignment.set_artifact_root(work_dir);
  if (options.local_ranks > 1 && kind == v1::PRETRAIN) {
    absl::StatusOr<int> port = FreeLoopbackPort();
    if (!port.ok()) {
      fprintf(stderr, "run-stage: rendezvous port: %s\n", std::string(port.status().message()).c_str());
      return 1;
    }
    v1::Rendezvous* rv = assignment.mutable_rendezvous();
    rv->set_master_address("127.0.0.1");
    rv->set_master_port(*port);
    rv->set_world_size(options.local_ranks);
    rv->set_node_rank(0);
    rv->set_local_world_size(options.local_ranks);
  }
  for (const v1::Artifact& a : index) {
    if (a.produced_by() < kind || (a.produced_by() == kind && options.shard == options.shards)) {
      *assignment.add_inputs() = a;
    }
  }

  RunnerEnvironment env;
  env.work_dir = work_dir;
  env.shared_fs = true;
  absl::StatusOr<std::string> worker = StageWorkerPath(
      {options.worker_front, options.worker_path, options.python_worker_path}, options.device);
  if (!worker.ok()) {
    fprintf(stderr, "run-stage: %s\n", std::string(worker.status().message()).c_str());
    return 2;
  }
  env.worker_path = *worker;
  env.threads =
      options.threads > 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  env.device = options.device;
  env.data_roots = options.data_roots;

  BatchingReporter reporter(
      kind,
      [](std::vector<v1::StageReport> batch) -> absl::StatusOr<bool> {
        PrintReports(batch);
        return false;
      },
      std::chrono::milliseconds(250),
      [&](v1::CheckpointRecord* record) { PublishCheckpoint(assignment, env, record); });
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (cancel) reporter.Cancel();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto result = RunAssignment(assignment, env, reporter);
  reporter.Finish();
  done = true;
  watcher.join();
  if (!result.ok()) {
    fprintf(stderr, "run-stage %s failed (%s): %s\n", options.stage.c_str(),
            v1::FailureCause_Name(CauseOf(result.status())).c_str(),
            std::string(result.status().message()).c_str());
    return 1;
  }
  for (const v1::Artifact& out : *result) {
    std::erase_if(index, [&](const v1::Artifact& a) { return a.id() == out.id(); });
    index.push_back(out);
    printf("%s\t%s\t%lld bytes\tsha256 %s\n", out.name().c_str(), out.uri().c_str(),
           static_cast<long long>(out.size_bytes()), out.sha256().c_str());
  }
  if (absl::Status s = SaveIndex(index_path, index); !s.ok()) {
    fprintf(stderr, "run-stage: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace bert::agent
