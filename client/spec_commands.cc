// bertctl validate and submit: the spec is checked locally first, with the
// same library bertd runs on receipt.
#include <filesystem>
#include <iostream>
#include <iterator>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/cli_context.h"
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
            << (spec.tokenizer().from().empty()
                    ? absl::StrCat("train WordPiece, vocab ", spec.tokenizer().vocab_size(),
                                   spec.tokenizer().lowercase() ? ", lowercase" : ", cased")
                    : absl::StrCat("from ", spec.tokenizer().from()))
            << "\n"
            << "  model      " << model.preset() << ": hidden " << model.hidden_size()
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
  if (GlobalCli().json()) {
    std::cout << ToJson(response);
  } else if (response.errors().empty()) {
    PrintSummary(file.display_name, response.normalized());
  } else {
    std::cerr << spec::FormatErrors(file.display_name,
                                    {response.errors().begin(), response.errors().end()});
  }
  if (!response.errors().empty()) ExitWith(kExitUsage);
}

void RunSubmit(const SubmitOptions& options) {
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
  auto response = ConnectOrFail()->SubmitJob(request);
  if (!response.ok()) {
    // bertd names the spec "job.yaml" in its errors; say which file it was.
    Fail(absl::Status(response.status().code(),
                      absl::StrReplaceAll(response.status().message(),
                                          {{"job.yaml:", file.display_name + ":"}})));
  }
  if (GlobalCli().json() && !options.watch) {
    std::cout << ToJson(*response);
    return;
  }
  if (!GlobalCli().json()) {
    std::cout << (response->already_existed() ? "job already exists: " : "submitted job ")
              << response->job().id() << " (" << response->job().name() << ")" << std::endl;
  }
  if (options.watch) {
    WatchCommandOptions watch;
    watch.job_id = response->job().id();
    watch.plain = options.plain;
    RunWatch(watch);
  }
}

}  // namespace bert::client
