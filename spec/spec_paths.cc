#include "spec/spec_paths.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/atomic_file.h"
#include "formats/hf_bert_config.h"
#include "protocol/model_source.h"
#ifdef BERT_SPEC_WITH_TOKENIZER
#include "tokenizer/tokenizer.h"
#endif

namespace bert::spec {
namespace {

namespace fs = std::filesystem;

bool HasGlobCharacters(const std::string& path) {
  return path.find_first_of("*?[") != std::string::npos;
}

// Number of files `pattern` matches; directories count as one each.
size_t CountMatches(const std::string& pattern) {
  glob_t matches{};
  const int rc = glob(pattern.c_str(), GLOB_NOSORT, nullptr, &matches);
  const size_t count = rc == 0 ? matches.gl_pathc : 0;
  globfree(&matches);
  return count;
}

void CheckSourcePath(const std::string& field, const std::string& path, SpecErrorList* errors) {
  std::error_code ec;
  if (HasGlobCharacters(path)) {
    if (CountMatches(path) == 0) errors->Add(field, absl::StrCat("'", path, "' matches no file"));
    return;
  }
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    errors->Add(field, absl::StrCat("'", path, "' does not exist"));
  } else if (fs::is_directory(status) && fs::is_empty(path, ec)) {
    errors->Add(field, absl::StrCat("directory '", path, "' is empty"));
  }
}

// Bounds on the files a spec check reads (bertd runs these checks for any
// caller with a token): far above any real tokenizer or manifest.
constexpr int64_t kMaxTokenizerFileBytes = 32 << 20;
constexpr int64_t kMaxConfigFileBytes = 1 << 20;
constexpr int64_t kMaxManifestBytes = 16 << 20;

// "" when `path` is a regular file of at most `max_bytes` (found by stat
// alone: nothing is opened, so a FIFO or device cannot block or feed the
// reader), else why not.
std::string CheckSmallRegularFile(const std::string& path, int64_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return absl::StrCat("'", path, "': ", std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::StrCat("'", path, "' is not a regular file");
  }
  if (st.st_size > max_bytes) {
    return absl::StrCat("'", path, "' is ", st.st_size, " bytes, more than the ", max_bytes,
                        " a spec check reads");
  }
  return "";
}

// Reads a regular file of at most `max_bytes`, never blocking on a FIFO and
// never reading past the bound even if the file grows meanwhile.
absl::StatusOr<std::string> ReadSmallRegularFile(const std::string& path, int64_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > max_bytes) {
    ::close(fd);
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a regular file of at most ", max_bytes, " bytes"));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t got = ::read(fd, text.data() + done, text.size() - done);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  text.resize(done);
  return text;
}

// "" when the files Tokenizer::Load would read for `from` are all small
// regular files, else why not. Mirrors Load's choice of file.
std::string CheckTokenizerFiles(const std::string& from) {
  std::error_code ec;
  fs::path file(from);
  if (fs::is_directory(from, ec)) {
    if (fs::exists(file / "tokenizer.json", ec)) {
      return CheckSmallRegularFile((file / "tokenizer.json").string(), kMaxTokenizerFileBytes);
    }
    if (!fs::exists(file / "vocab.txt", ec)) return "";  // Load says what is missing
    file /= "vocab.txt";
  }
  if (std::string why = CheckSmallRegularFile(file.string(), kMaxTokenizerFileBytes); !why.empty()) {
    return why;
  }
  const fs::path config = file.parent_path() / "tokenizer_config.json";
  if (file.extension() != ".json" && fs::exists(fs::symlink_status(config, ec))) {
    return CheckSmallRegularFile(config.string(), kMaxConfigFileBytes);
  }
  return "";
}

void LoadTokenizer(const std::string& field, bert::v1::TokenizerSpec* tokenizer,
                   SpecErrorList* errors) {
  std::error_code ec;
  if (!fs::exists(tokenizer->from(), ec)) {
    errors->Add(field, absl::StrCat("'", tokenizer->from(), "' does not exist"));
    return;
  }
  if (const std::string why = CheckTokenizerFiles(tokenizer->from()); !why.empty()) {
    errors->Add(field, absl::StrCat("not a tokenizer: ", why));
    return;
  }
#ifdef BERT_SPEC_WITH_TOKENIZER
  auto loaded = bert::tokenizer::Tokenizer::Load(tokenizer->from());
  if (!loaded.ok()) {
    errors->Add(field, absl::StrCat("cannot load tokenizer: ", loaded.status().message()));
    return;
  }
  tokenizer->set_vocab_size(static_cast<int32_t>(loaded->vocab_size()));
  tokenizer->set_lowercase(loaded->lowercase());
#endif
}

// Reads the packed dataset's manifest (docs/dataset-format.md).
void LoadDataset(const FieldLocations& at, bert::v1::JobSpec* spec, SpecErrorList* errors) {
  const std::string field = "preprocess.from_dataset";
  const std::string manifest_path =
      (fs::path(spec->preprocess().from_dataset()) / "manifest.json").string();
  auto text = ReadSmallRegularFile(manifest_path, kMaxManifestBytes);
  if (!text.ok()) {
    errors->Add(field, absl::StrCat("not a packed dataset: cannot read ", manifest_path, ": ",
                                    text.status().message()));
    return;
  }
  const nlohmann::json manifest = nlohmann::json::parse(*text, nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object() ||
      manifest.value("format", "") != "bert-packed-dataset" || !manifest.contains("seq_len") ||
      !manifest["seq_len"].is_number_integer()) {
    errors->Add(field, absl::StrCat(manifest_path, " is not a bert-packed-dataset manifest"));
    return;
  }
  const int64_t seq_len = manifest["seq_len"].get<int64_t>();
  bert::v1::PreprocessSpec* preprocess = spec->mutable_preprocess();
  if (at.Has("preprocess.max_seq_length") && preprocess->max_seq_length() != seq_len) {
    errors->Add("preprocess.max_seq_length",
                absl::StrCat("is ", preprocess->max_seq_length(), " but the dataset's blocks are ",
                             seq_len, " tokens"));
  }
  preprocess->set_max_seq_length(static_cast<int32_t>(seq_len));
  if (manifest.contains("shuffle_seed") && manifest["shuffle_seed"].is_number_unsigned()) {
    preprocess->set_shuffle_seed(manifest["shuffle_seed"].get<uint64_t>());
  }
  if (manifest.contains("vocab_size") && manifest["vocab_size"].is_number_integer() &&
      spec->tokenizer().vocab_size() > 0 &&
      manifest["vocab_size"].get<int64_t>() != spec->tokenizer().vocab_size()) {
    errors->Add("tokenizer.from",
                absl::StrCat("this tokenizer has ", spec->tokenizer().vocab_size(),
                             " tokens but the dataset was built with ",
                             manifest["vocab_size"].get<int64_t>()));
  }
}

// model.from as a directory: a Hugging Face BERT model (formats/hf_bert_config.h
// decides what the engine loads). Its architecture fills the spec's model
// sizes, and its dropouts unless the spec sets them.
// Returns false (with errors added) when it is not one; `*vocab_size` is
// config.json's.
bool LoadWarmStartModel(const FieldLocations& at, bert::v1::JobSpec* spec, SpecErrorList* errors,
                        int64_t* vocab_size) {
  const std::string field = "model.from";
  const std::string& dir = spec->model().from();
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    errors->Add(field, absl::StrCat("'", dir, "' does not exist"));
    return false;
  }
  if (!fs::is_directory(dir, ec)) {
    errors->Add(field, absl::StrCat("'", dir,
                                    "' is not a directory (a Hugging Face model directory: config.json, "
                                    "model.safetensors, vocab.txt or tokenizer.json)"));
    return false;
  }
  bert::formats::Result<bert::formats::HfBertConfig> config = bert::formats::ReadHfBertConfig(dir);
  if (!config.ok()) {
    errors->Add(field, absl::StrCat("not a BERT model the engine loads: ", config.error().message));
    return false;
  }
  const std::string weights = (fs::path(dir) / bert::formats::kHfWeightsFile).string();
  struct stat st;
  if (::stat(weights.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    errors->Add(field, absl::StrCat("'", dir, "' has no ", bert::formats::kHfWeightsFile,
                                    " (the weights, in the safetensors format; a pytorch_model.bin "
                                    "is not read: convert it with save_pretrained)"));
    return false;
  }
  if (!fs::exists(fs::path(dir) / "vocab.txt", ec) && !fs::exists(fs::path(dir) / "tokenizer.json", ec)) {
    errors->Add(field, absl::StrCat("'", dir, "' has neither vocab.txt nor tokenizer.json: the job "
                                    "pre-trains with the model's own tokenizer"));
    return false;
  }
  bert::v1::ModelSpec* model = spec->mutable_model();
  model->set_hidden_size(static_cast<int32_t>(config->hidden_size));
  model->set_num_hidden_layers(static_cast<int32_t>(config->num_hidden_layers));
  model->set_num_attention_heads(static_cast<int32_t>(config->num_attention_heads));
  model->set_intermediate_size(static_cast<int32_t>(config->intermediate_size));
  model->set_max_position_embeddings(static_cast<int32_t>(config->max_position_embeddings));
  model->set_type_vocab_size(static_cast<int32_t>(config->type_vocab_size));
  if (!at.Has("model.hidden_dropout_prob")) model->set_hidden_dropout_prob(config->hidden_dropout_prob);
  if (!at.Has("model.attention_probs_dropout_prob")) {
    model->set_attention_probs_dropout_prob(config->attention_probs_dropout_prob);
  }
  *vocab_size = config->vocab_size;
  return true;
}

}  // namespace

std::string AbsolutePath(const std::string& path, const std::string& base_dir) {
  fs::path p(path);
  if (path == "~" || path.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    if (home != nullptr) p = fs::path(home) / path.substr(path.size() > 1 ? 2 : 1);
  }
  if (p.is_relative()) {
    std::error_code ec;
    fs::path base = base_dir.empty() ? fs::current_path(ec) : fs::path(base_dir);
    if (base.is_relative()) base = fs::current_path(ec) / base;
    p = base / p;
  }
  std::string out = p.lexically_normal().string();
  // "a/b/" -> "a/b" (but keep "/").
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

void ResolvePaths(const ParseOptions& options, const FieldLocations& locations,
                  bert::v1::JobSpec* spec, SpecErrorList* errors) {
  const std::string& base = options.base_dir;
  bert::v1::CorpusSpec* corpus = spec->mutable_corpus();
  for (int i = 0; i < corpus->sources_size(); ++i) {
    bert::v1::SourceSpec* source = corpus->mutable_sources(i);
    for (int j = 0; j < source->paths_size(); ++j) {
      if (source->paths(j).empty()) continue;
      const std::string field = absl::StrCat("corpus.sources[", i, "].paths[", j, "]");
      source->set_paths(j, AbsolutePath(source->paths(j), base));
      if (options.check_paths && !options.uploaded_sources.contains(i)) {
        CheckSourcePath(field, source->paths(j), errors);
      }
    }
  }
  // A warm start's directory first: when it is not a model, its tokenizer
  // (tokenizer.from, spec_defaults) is not looked at.
  bert::v1::ModelSpec* model = spec->mutable_model();
  bool model_ok = true;
  int64_t model_vocab = 0;
  if (!model->from().empty() && !bert::protocol::IsJobModelReference(model->from())) {
    model->set_from(AbsolutePath(model->from(), base));
    if (options.check_paths) model_ok = LoadWarmStartModel(locations, spec, errors, &model_vocab);
  }
  bert::v1::TokenizerSpec* tokenizer = spec->mutable_tokenizer();
  if (!tokenizer->from().empty()) {
    tokenizer->set_from(AbsolutePath(tokenizer->from(), base));
    const bool the_models = tokenizer->from() == model->from();
    if (options.check_paths && (model_ok || !the_models)) {
      LoadTokenizer(the_models ? "model.from" : "tokenizer.from", tokenizer, errors);
    }
    // The tokenizer must fit the warm start's embeddings.
    if (model_vocab > 0 && tokenizer->vocab_size() > model_vocab) {
      errors->Add(the_models ? "model.from" : "tokenizer.from",
                  absl::StrCat("the tokenizer has ", tokenizer->vocab_size(),
                               " tokens but the model's config.json says vocab_size ", model_vocab,
                               ": the embeddings have no row for the others"));
    }
  }
  bert::v1::PreprocessSpec* preprocess = spec->mutable_preprocess();
  if (!preprocess->from_dataset().empty()) {
    preprocess->set_from_dataset(AbsolutePath(preprocess->from_dataset(), base));
    if (options.check_paths) LoadDataset(locations, spec, errors);
  }
  bert::v1::OutputSpec* output = spec->mutable_output();
  if (!output->dir().empty()) {
    output->set_dir(AbsolutePath(output->dir(), base));
    std::error_code ec;
    if (options.check_paths && fs::exists(output->dir(), ec) &&
        !fs::is_directory(output->dir(), ec)) {
      errors->Add("output.dir",
                  absl::StrCat("'", output->dir(), "' exists and is not a directory"));
    }
  }
}

}  // namespace bert::spec
