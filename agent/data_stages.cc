#include "agent/data_stages.h"

#include <filesystem>
#include <map>
#include <optional>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "agent/data_roots.h"
#include "agent/failure.h"
#include "common/status_macros.h"
#include "data/prepare.h"
#include "data/prepared_corpus.h"
#include "data/preprocess.h"
#include "protocol/artifact_ids.h"
#include "protocol/failure_cause.h"
#include "tokenizer/wordpiece_trainer.h"

namespace bert::agent {
namespace fs = std::filesystem;
namespace {

// Library errors keep their message, prefixed with `what`; the cause follows
// the code (protocol/failure_cause.h), except that a cancelled sink is the
// user's cancel.
absl::Status AsStageFailure(const absl::Status& s, ProgressSink& sink, absl::string_view what) {
  if (s.ok()) return s;
  if (sink.Cancelled() || s.code() == absl::StatusCode::kCancelled) {
    return StageFailure(v1::CANCELLED_BY_USER, "cancelled");
  }
  return protocol::AsStageFailure(s, what);
}

// Gathers every shard's "parts-<i>" input into dir/parts (hard links when
// possible, else copies).
absl::Status GatherParts(const StageContext& ctx, v1::StageKind kind, const fs::path& dir) {
  std::error_code ec;
  const fs::path parts = dir / "parts";
  fs::create_directories(parts, ec);
  int found = 0;
  for (const StageInput* in : ctx.InputsFrom(kind)) {
    if (!protocol::IsPartsArtifactName(in->artifact.name())) continue;
    ++found;
    for (const auto& e : fs::recursive_directory_iterator(in->path, ec)) {
      if (!e.is_regular_file()) continue;
      const fs::path dest = parts / fs::relative(e.path(), in->path);
      fs::create_directories(dest.parent_path(), ec);
      fs::remove(dest, ec);
      fs::create_hard_link(e.path(), dest, ec);
      if (ec) fs::copy_file(e.path(), dest, fs::copy_options::overwrite_existing, ec);
      if (ec) {
        return StageFailure(v1::INTERNAL,
                            absl::StrCat("gather ", e.path().string(), ": ", ec.message()));
      }
    }
  }
  if (found != ctx.shard_count) {
    return StageFailure(v1::INTERNAL, absl::StrCat("join: ", found, " parts inputs for ",
                                                   ctx.shard_count, " shards"));
  }
  return absl::OkStatus();
}

// The prepared corpus among the inputs, or an error.
absl::StatusOr<std::string> CorpusDir(const StageContext& ctx) {
  for (const StageInput* in : ctx.InputsFrom(v1::PREPARE)) {
    if (in->artifact.name() == protocol::kCorpusArtifact) return in->path;
  }
  return StageFailure(v1::SPEC_ERROR, "no prepared corpus among the inputs");
}

// The job's uploaded corpus files by source (ctx.input_files), each at the
// path of its verified "inputs/<sha256>" input; read in place of the
// source's spec paths (data/input_plan.h InputPolicy::supplied).
absl::StatusOr<std::map<int, std::vector<data::InputPolicy::SuppliedFile>>> UploadedSources(
    const StageContext& ctx) {
  std::map<std::string, std::string> path_of;  // sha256 -> local path
  for (const StageInput& in : ctx.inputs) {
    if (std::optional<std::string> sha = protocol::ParseInputArtifactId(in.artifact.id())) {
      path_of[*sha] = in.path;
    }
  }
  std::map<int, std::vector<data::InputPolicy::SuppliedFile>> supplied;
  for (const v1::InputFile& file : ctx.input_files) {
    if (file.source_index() < 0 || file.source_index() >= ctx.spec.corpus().sources_size()) {
      return StageFailure(v1::SPEC_ERROR,
                          absl::StrCat("uploaded file ", file.path(), " names corpus.sources[",
                                       file.source_index(), "], which the spec does not have"));
    }
    auto it = path_of.find(file.sha256());
    if (it == path_of.end()) {
      return StageFailure(v1::INTERNAL, absl::StrCat("uploaded file ", file.path(), " (",
                                                     file.sha256(), ") is not among the inputs"));
    }
    supplied[file.source_index()].push_back({it->second, file.path()});
  }
  return supplied;
}

class PrepareStage final : public Stage {
 public:
  absl::StatusOr<std::vector<StageOutput>> Run(const StageContext& ctx,
                                               StageReporter& reporter) override {
    const fs::path out(ctx.output_dir);
    if (ctx.is_join()) {
      const fs::path dir = out / "corpus";
      BERT_RETURN_IF_ERROR(GatherParts(ctx, v1::PREPARE, dir));
      BERT_RETURN_IF_ERROR(Finalize(ctx, dir, reporter));
      return std::vector<StageOutput>{{std::string(protocol::kCorpusArtifact), dir.string()}};
    }
    data::PrepareOptions options;
    options.worker_index = ctx.ref.shard_index();
    options.num_workers = ctx.shard_count;
    options.threads = ctx.threads;
    options.input_policy.roots = ctx.data_roots;
    BERT_ASSIGN_OR_RETURN(options.input_policy.supplied, UploadedSources(ctx));
    if (ctx.shard_count == 1) {
      const fs::path dir = out / "corpus";
      BERT_RETURN_IF_ERROR(
          AsStageFailure(data::PrepareWorker(ctx.spec.corpus(), dir.string(), options, reporter),
                         reporter, "prepare"));
      BERT_RETURN_IF_ERROR(Finalize(ctx, dir, reporter));
      return std::vector<StageOutput>{{std::string(protocol::kCorpusArtifact), dir.string()}};
    }
    const fs::path dir = out / "work";
    BERT_RETURN_IF_ERROR(
        AsStageFailure(data::PrepareWorker(ctx.spec.corpus(), dir.string(), options, reporter),
                       reporter, "prepare"));
    return std::vector<StageOutput>{
        {protocol::PartsArtifactName(ctx.ref.shard_index()), (dir / "parts").string()}};
  }

 private:
  static absl::Status Finalize(const StageContext& ctx, const fs::path& dir,
                               StageReporter& reporter) {
    data::FinalizePrepareOptions options;
    options.threads = ctx.threads;
    auto corpus = data::FinalizePrepare(dir.string(), ctx.shard_count, options, reporter);
    if (!corpus.ok()) return AsStageFailure(corpus.status(), reporter, "prepare finalize");
    reporter.Log("info", absl::StrCat("prepared corpus: ", corpus->shards.size(), " shards"));
    return absl::OkStatus();
  }
};

class TokenizerStage final : public Stage {
 public:
  absl::StatusOr<std::vector<StageOutput>> Run(const StageContext& ctx,
                                               StageReporter& reporter) override {
    BERT_ASSIGN_OR_RETURN(std::string corpus_dir, CorpusDir(ctx));
    auto corpus = data::PreparedCorpus::Load(corpus_dir);
    if (!corpus.ok()) return AsStageFailure(corpus.status(), reporter, "tokenizer");
    std::vector<std::string> files;
    for (size_t i = 0; i < corpus->shards.size(); ++i) files.push_back(corpus->ShardPath(i));

    const v1::TokenizerSpec& spec = ctx.spec.tokenizer();
    tokenizer::WordPieceTrainerOptions options;
    if (spec.vocab_size() > 0) options.vocab_size = static_cast<size_t>(spec.vocab_size());
    options.min_frequency = static_cast<uint64_t>(std::max(0, spec.min_frequency()));
    options.special_tokens.assign(spec.special_tokens().begin(), spec.special_tokens().end());
    if (options.special_tokens.empty()) {
      options.special_tokens = tokenizer::WordPieceTrainerOptions::BertSpecialTokens();
    }
    if (spec.limit_alphabet() > 0)
      options.limit_alphabet = static_cast<size_t>(spec.limit_alphabet());
    options.lowercase = spec.lowercase();
    options.threads = ctx.threads;
    auto trained = tokenizer::TrainFromFiles(files, options, reporter);
    if (!trained.ok()) return AsStageFailure(trained.status(), reporter, "tokenizer");
    const fs::path dir = fs::path(ctx.output_dir) / "tokenizer";
    std::error_code ec;
    fs::remove_all(dir, ec);
    BERT_RETURN_IF_ERROR(AsStageFailure(trained->Save(dir.string()), reporter, "save tokenizer"));
    reporter.Log("info", absl::StrCat("tokenizer: ", trained->vocab_size(), " tokens"));
    return std::vector<StageOutput>{{std::string(protocol::kTokenizerArtifact), dir.string()}};
  }
};

class PreprocessStage final : public Stage {
 public:
  absl::StatusOr<std::vector<StageOutput>> Run(const StageContext& ctx,
                                               StageReporter& reporter) override {
    BERT_ASSIGN_OR_RETURN(std::string corpus_dir, CorpusDir(ctx));
    std::string tokenizer_path;
    for (const StageInput* in : ctx.InputsFrom(v1::TOKENIZER)) tokenizer_path = in->path;
    if (tokenizer_path.empty()) {
      tokenizer_path = ctx.spec.tokenizer().from();
      if (tokenizer_path.empty()) return StageFailure(v1::SPEC_ERROR, "preprocess: no tokenizer");
      BERT_RETURN_IF_ERROR(CheckUnderDataRoots("tokenizer.from", tokenizer_path, ctx.data_roots));
    }

    const fs::path out(ctx.output_dir);
    if (ctx.is_join()) {
      const fs::path dir = out / "dataset";
      BERT_RETURN_IF_ERROR(GatherParts(ctx, v1::PREPROCESS, dir));
      BERT_RETURN_IF_ERROR(Finalize(ctx, corpus_dir, tokenizer_path, dir, reporter));
      return std::vector<StageOutput>{{std::string(protocol::kDatasetArtifact), dir.string()}};
    }
    data::PreprocessOptions options;
    options.worker_index = ctx.ref.shard_index();
    options.num_workers = ctx.shard_count;
    options.threads = ctx.threads;
    const fs::path dir = ctx.shard_count == 1 ? out / "dataset" : out / "work";
    BERT_RETURN_IF_ERROR(
        AsStageFailure(data::PreprocessWorker(corpus_dir, tokenizer_path, ctx.spec.preprocess(),
                                              dir.string(), options, reporter),
                       reporter, "preprocess"));
    if (ctx.shard_count > 1) {
      return std::vector<StageOutput>{
          {protocol::PartsArtifactName(ctx.ref.shard_index()), (dir / "parts").string()}};
    }
    BERT_RETURN_IF_ERROR(Finalize(ctx, corpus_dir, tokenizer_path, dir, reporter));
    return std::vector<StageOutput>{{std::string(protocol::kDatasetArtifact), dir.string()}};
  }

 private:
  static absl::Status Finalize(const StageContext& ctx, const std::string& corpus_dir,
                               const std::string& tokenizer_path, const fs::path& dir,
                               StageReporter& reporter) {
    data::FinalizePreprocessOptions options;
    options.threads = ctx.threads;
    auto manifest = data::FinalizePreprocess(corpus_dir, tokenizer_path, ctx.spec.preprocess(),
                                             dir.string(), ctx.shard_count, options, reporter);
    if (!manifest.ok()) return AsStageFailure(manifest.status(), reporter, "preprocess finalize");
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Stage> MakePrepareStage() { return std::make_unique<PrepareStage>(); }
std::unique_ptr<Stage> MakeTokenizerStage() { return std::make_unique<TokenizerStage>(); }
std::unique_ptr<Stage> MakePreprocessStage() { return std::make_unique<PreprocessStage>(); }

}  // namespace bert::agent
