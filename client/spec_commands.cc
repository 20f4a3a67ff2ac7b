// bertctl validate and submit: the spec is checked locally first, with the
// same library bertd runs on receipt.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/cli_context.h"
#include "client/input_uploader.h"
#include "client/pull_command.h"
#include "client/job_command_impl.h"
#include "client/text_format.h"
#include "common/atomic_file.h"
#include "spec/job_spec.h"

namespace bert::client {
namespace {

namespace fs = std::filesystem;

struct SpecFile {
  std::string display_name;  // for error lines: "job.yaml"
  std::string yaml;
  std::string base_dir;  // absolute directory of the file (cwd for stdin)
};

SpecFile ReadSpecFile(const std::string& file) {
  SpecFile spec;
  std::error_code ec;
  if (file == "-") {
    spec.display_name = "<stdin>";
    spec.yaml.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    spec.base_dir = fs::current_path(ec).string();
    return spec;
  }
  auto text = bert::ReadFile(file);
  if (!text.ok()) Fail(kExitUsage, absl::StrCat("cannot read spec: ", text.status().message()));
  spec.display_name = file;
  spec.yaml = std::move(*text);
  spec.base_dir = fs::absolute(fs::path(file), ec).parent_path().lexically_normal().string();
  return spec;
}

spec::ParseResult ParseLocally(const SpecFile& file, bool check_paths) {
  spec::ParseOptions options;
  options.base_dir = file.base_dir;
  options.check_paths = check_paths;
  return spec::ParseJobSpec(file.yaml, options);
}

std::string StagesLine(const bert::v1::JobSpec& spec) {
  std::vector<std::string> names;
  for (bert::v1::StageKind kind : spec::PlannedStages(spec)) names.push_back(StageName(kind));
  return absl::StrJoin(names, " -> ");
}

void PrintSummary(const std::string& name, const bert::v1::JobSpec& spec) {
  const auto& model = spec.model();
  const auto& training = spec.training();
  const auto& resources = spec.resources();
  const int64_t global_batch = static_cast<int64_t>(training.per_device_batch_size()) *
                               resources.devices() * resources.hosts() *
                               training.gradient_accumulation_steps();
  std::cout << name << ": valid\n"
            << "  job        " << spec.name() << "\n"
            << "  stages     " << StagesLine(spec) << "\n"
            << "  tokenizer  "
            << (!spec.tokenizer().from().empty() ? absl::StrCat("from ", spec.tokenizer().from())
                : !model.from().empty()
                    ? absl::StrCat("the model's (", model.from(), ")")
                    : absl::StrCat("train WordPiece, vocab ", spec.tokenizer().vocab_size(),
                                   spec.tokenizer().lowercase() ? ", lowercase" : ", cased"))
            << "\n"
            << "  model      "
            << (model.from().empty() ? model.preset() : absl::StrCat("from ", model.from()))
            << (model.from().empty() || model.hidden_size() > 0 ? "" : " (sizes from its config.json)")
            << ": hidden " << model.hidden_size()
            << ", layers " << model.num_hidden_layers() << ", heads " << model.num_attention_heads()
            << ", intermediate " << model.intermediate_size() << "\n"
            << "  data       blocks of " << spec.preprocess().max_seq_length()
            << " tokens, shuffle seed " << spec.preprocess().shuffle_seed() << ", validation "
            << spec.preprocess().validation_fraction() << "\n"
            << "  training   " << training.max_steps() << " steps, "
            << training.per_device_batch_size() << " per device (global batch " << global_batch
            << "), lr " << training.learning_rate() << ", " << training.precision() << "\n"
            << "  resources  " << resources.hosts() << " x " << resources.devices() << " "
            << resources.accelerator() << " in pool '" << resources.train_pool() << "'\n";
}

}  // namespace

void RunValidate(const SpecFileOptions& options) {
  const SpecFile file = ReadSpecFile(options.file);
  spec::ParseResult result = ParseLocally(file, options.check_paths);
  bert::v1::ValidateSpecResponse response;
  if (options.remote && result.ok()) {
    bert::v1::ValidateSpecRequest request;
    request.set_spec_yaml(file.yaml);
    request.set_base_dir(file.base_dir);
    auto remote = ConnectOrFail()->ValidateSpec(request);
    if (!remote.ok()) Fail(remote.status());
    response = std::move(*remote);
  } else {
    for (const auto& error : result.errors) *response.add_errors() = error;
    if (result.ok()) *response.mutable_normalized() = result.spec;
  }
  if (PrintStructured(response)) {
  } else if (response.errors().empty()) {
    PrintSummary(file.display_name, response.normalized());
  } else {
    std::cerr << spec::FormatErrors(file.display_name,
                                    {response.errors().begin(), response.errors().end()});
  }
  if (!response.errors().empty()) ExitWith(kExitUsage);
}

namespace {

// Uploads the corpus files of `spec` the cluster cannot see (input_uploader.h)
// and returns them, hashed; Fail()s before any byte is sent when one is over
// bertd's limit. Progress goes to stderr, so `-o json` output stays clean.
std::vector<PlannedInput> UploadCorpus(BertClient& client, const SubmitOptions& options,
                                       const SpecFile& file, const bert::v1::JobSpec& spec) {
  absl::StatusOr<UploadMode> mode = ParseUploadMode(options.upload);
  if (!mode.ok()) Fail(mode.status());
  if (*mode == UploadMode::kNever) return {};
  absl::StatusOr<bert::v1::ClusterInfo> info = client.GetClusterInfo();
  if (!info.ok()) {
    // A bertd from before uploads: submit the paths as they are.
    if (info.status().code() == absl::StatusCode::kUnimplemented && *mode == UploadMode::kAuto) {
      return {};
    }
    Fail(info.status());
  }
  absl::StatusOr<std::vector<PlannedInput>> planned =
      PlanUploads(spec, file.base_dir, *info, *mode);
  if (!planned.ok()) Fail(kExitUsage, std::string(planned.status().message()));
  if (planned->empty()) return {};
  TransferProgress progress(std::cerr, isatty(STDERR_FILENO) != 0);
  if (absl::Status hashed = HashInputs(*planned, progress); !hashed.ok()) Fail(hashed);
  absl::StatusOr<UploadSummary> summary = UploadInputs(client, *planned, progress);
  if (!summary.ok()) {
    std::cerr << "bertctl: the upload stopped; submitting again resumes it\n";
    Fail(summary.status());
  }
  std::cerr << "inputs: " << planned->size() << " file" << (planned->size() == 1 ? "" : "s")
            << ", " << FormatBytes(summary->bytes_sent) << " sent (" << summary->files_sent
            << " uploaded, " << summary->files_held << " already on bertd)" << std::endl;
  return *std::move(planned);
}

}  // namespace

void RunSubmit(const SubmitOptions& options) {
  if (!options.pull.empty() && !options.watch) Fail(kExitUsage, "--pull needs --watch");
  const SpecFile file = ReadSpecFile(options.spec.file);
  const spec::ParseResult result = ParseLocally(file, options.spec.check_paths);
  if (!result.ok()) {
    std::cerr << spec::FormatErrors(file.display_name, result.errors)
              << "bertctl: the spec is invalid; nothing was submitted\n";
    ExitWith(kExitUsage);
  }
  bert::v1::SubmitJobRequest request;
  request.set_spec_yaml(file.yaml);
  request.set_base_dir(file.base_dir);
  request.set_idempotency_key(options.idempotency_key);
  std::unique_ptr<BertClient> client = ConnectOrFail();
  for (const PlannedInput& in : UploadCorpus(*client, options, file, result.spec)) {
    bert::v1::InputFile* input = request.add_input_files();
    input->set_source_index(in.source);
    input->set_path(in.path);
    input->set_sha256(in.sha256);
    input->set_size_bytes(in.size_bytes);
  }
  auto response = client->SubmitJob(request);
  if (!response.ok()) {
    // bertd names the spec "job.yaml" in its errors; say which file it was.
    Fail(absl::Status(response.status().code(),
                      absl::StrReplaceAll(response.status().message(),
                                          {{"job.yaml:", file.display_name + ":"}})));
  }
  if (!options.watch && PrintStructured(*response)) return;
  if (!GlobalCli().structured()) {
    std::cout << (response->already_existed() ? "job already exists: " : "submitted job ")
              << response->job().id() << " (" << response->job().name() << ")" << std::endl;
  }
  if (options.watch) {
    WatchCommandOptions watch;
    watch.job_id = response->job().id();
    watch.plain = options.plain;
    RunWatch(watch);  // returns only when the job succeeded
    PullModelAfterWatch(*client, response->job().id(), options.pull, result.spec.output().dir());
  }
}

}  // namespace bert::client
