#include "engine/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/engine_error.h"
#include "formats/sha256.h"
#include "protocol/checkpoint_names.h"

namespace bert::engine {
namespace fs = std::filesystem;
namespace {

constexpr char kFormat[] = "bert-checkpoint";
constexpr int kFormatVersion = 1;

[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw EngineError(FailureCause::kInternal, path + ": " + what);
}

// strerror(err), said plainly when the disk (or the file size limit) is full.
std::string ErrnoText(int err) {
  const bool full = err == ENOSPC || err == EFBIG || err == EDQUOT;
  return std::string(full ? "disk full (" : "") + std::strerror(err) + (full ? ")" : "");
}

void FsyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) Fail(path, std::string("cannot open for fsync: ") + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) Fail(path, std::string("fsync failed: ") + ErrnoText(err));
}

// A file written through a POSIX descriptor, hashed as it goes, fsynced on Close().
class HashingFile {
 public:
  explicit HashingFile(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) Fail(path_, std::string("cannot create: ") + ErrnoText(errno));
  }
  ~HashingFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  size_t Write(const void* data, size_t size) {
    WriteOrRemember(data, size);
    ThrowIfFailed();
    return size;
  }
  // For libtorch's writer callback, which must not throw (an exception there
  // unwinds through its writer's destructor, which aborts the process): the
  // first error is kept, later writes are dropped, and ThrowIfFailed() reports it.
  size_t WriteOrRemember(const void* data, size_t size) {
    if (error_ != 0) return size;
    const char* p = static_cast<const char*>(data);
    size_t left = size;
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error_ = errno;
        return size;
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    sha_.Update(data, size);
    size_ += size;
    return size;
  }
  void ThrowIfFailed() const {
    if (error_ != 0) Fail(path_, std::string("write failed: ") + ErrnoText(error_));
  }
  nlohmann::json Close(const std::string& name) {
    if (::fsync(fd_) != 0) Fail(path_, std::string("fsync failed: ") + ErrnoText(errno));
    if (::close(fd_) != 0) Fail(path_, std::string("close failed: ") + ErrnoText(errno));
    fd_ = -1;
    return {{"name", name}, {"size_bytes", size_}, {"sha256", sha_.HexDigest()}};
  }
  uint64_t size() const { return size_; }

 private:
  std::string path_;
  int fd_ = -1;
  int error_ = 0;  // errno of the first failed write
  formats::Sha256 sha_;
  uint64_t size_ = 0;
};

nlohmann::json WriteArchive(const std::string& dir, const std::string& name,
                            const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  torch::serialize::OutputArchive archive;
  for (const auto& [key, tensor] : tensors) archive.write(key, tensor);
  HashingFile file(dir + "/" + name);
  archive.save_to([&](const void* data, size_t size) { return file.WriteOrRemember(data, size); });
  file.ThrowIfFailed();
  return file.Close(name);
}

nlohmann::json WriteText(const std::string& dir, const std::string& name, const std::string& text) {
  HashingFile file(dir + "/" + name);
  file.Write(text.data(), text.size());
  return file.Close(name);
}

nlohmann::json ConfigJson(const BertConfig& c) {
  return {{"vocab_size", c.vocab_size},
          {"hidden_size", c.hidden_size},
          {"num_hidden_layers", c.num_hidden_layers},
          {"num_attention_heads", c.num_attention_heads},
          {"intermediate_size", c.intermediate_size},
          {"max_position_embeddings", c.max_position_embeddings},
          {"type_vocab_size", c.type_vocab_size},
          {"hidden_dropout_prob", c.hidden_dropout_prob},
          {"attention_probs_dropout_prob", c.attention_probs_dropout_prob},
          {"layer_norm_eps", c.layer_norm_eps},
          {"initializer_range", c.initializer_range},
          {"pad_token_id", c.pad_token_id}};
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw EngineError(FailureCause::kArtifactCorrupt, path + ": cannot open");
  std::stringstream text;
  text << in.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw EngineError(FailureCause::kArtifactCorrupt, path + ": invalid JSON: " + e.what());
  }
}

// The tensors `keys` of the archive at `path`; with `exactly`, the archive may hold no others.
std::vector<std::pair<std::string, torch::Tensor>> ReadArchive(const std::string& path,
                                                               const std::vector<std::string>& keys,
                                                               bool exactly = false) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw EngineError(FailureCause::kArtifactCorrupt, path + ": cannot load: " + e.what_without_backtrace());
  }
  if (exactly && archive.keys().size() != keys.size()) {
    throw EngineError(FailureCause::kArtifactCorrupt, path + ": holds " + std::to_string(archive.keys().size()) +
                                                          " tensors, expected " + std::to_string(keys.size()));
  }
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const std::string& key : keys) {
    torch::Tensor t;
    if (!archive.try_read(key, t)) throw EngineError(FailureCause::kArtifactCorrupt, path + ": no tensor " + key);
    out.emplace_back(key, t);
  }
  return out;
}

// A checkpoint's files are untrusted (they may come from another agent through
// the controller): every size that shapes an allocation or a loop is bounded.
constexpr int64_t kMaxWorldSize = 65536;

// j[key] as an integer in [lo, hi]; throws EngineError naming the file and the field.
int64_t BoundedInt(const nlohmann::json& j, const char* key, int64_t lo, int64_t hi, const std::string& file) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) {
    throw EngineError(FailureCause::kArtifactCorrupt, file + ": " + key + ": missing or not an integer");
  }
  // A uint64 above INT64_MAX is out of range too (is_number_unsigned, get<int64_t> would wrap).
  if ((it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi)) ||
      it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
    throw EngineError(FailureCause::kArtifactCorrupt, file + ": " + key + ": " + it->dump() +
                                                          " is outside [" + std::to_string(lo) + ", " +
                                                          std::to_string(hi) + "]");
  }
  return it->get<int64_t>();
}

BertConfig ConfigFromJson(const nlohmann::json& j, const std::string& file) {
  if (!j.is_object()) throw EngineError(FailureCause::kArtifactCorrupt, file + ": not a JSON object");
  BertConfig c;
  // Bounds far above any BERT (bert-large: 30522 x 1024, 24 layers, 16 heads, 4096, 512, 2).
  c.vocab_size = BoundedInt(j, "vocab_size", 1, int64_t{1} << 22, file);
  c.hidden_size = BoundedInt(j, "hidden_size", 1, int64_t{1} << 16, file);
  c.num_hidden_layers = BoundedInt(j, "num_hidden_layers", 1, 1024, file);
  c.num_attention_heads = BoundedInt(j, "num_attention_heads", 1, c.hidden_size, file);
  c.intermediate_size = BoundedInt(j, "intermediate_size", 1, int64_t{1} << 18, file);
  c.max_position_embeddings = BoundedInt(j, "max_position_embeddings", 1, int64_t{1} << 20, file);
  c.type_vocab_size = BoundedInt(j, "type_vocab_size", 1, 1024, file);
  c.hidden_dropout_prob = j.value("hidden_dropout_prob", 0.1);
  c.attention_probs_dropout_prob = j.value("attention_probs_dropout_prob", 0.1);
  c.layer_norm_eps = j.value("layer_norm_eps", 1e-12);
  c.initializer_range = j.value("initializer_range", 0.02);
  c.pad_token_id = j.value("pad_token_id", 0);
  return c;
}

}  // namespace

namespace {
WrittenCheckpoint WriteCheckpointFiles(const std::string& checkpoints_dir,
                                       const std::string& tmp_dir, const std::string& final_dir,
                                       const CheckpointData& data);
}  // namespace

WrittenCheckpoint WriteCheckpoint(const std::string& checkpoints_dir, const CheckpointData& data) {
  const std::string final_dir = checkpoints_dir + "/" + protocol::CheckpointDirName(data.step);
  const std::string tmp_dir = checkpoints_dir + "/" + protocol::CheckpointTempDirName(data.step);
  std::error_code ec;
  fs::create_directories(checkpoints_dir, ec);
  if (ec) Fail(checkpoints_dir, "cannot create: " + ec.message());
  fs::remove_all(tmp_dir, ec);
  if (!fs::create_directory(tmp_dir, ec)) Fail(tmp_dir, "cannot create: " + ErrnoText(ec.value()));
  // A failed write (a full disk) leaves nothing behind: the temporary
  // directory is never taken for a checkpoint, and removing it frees its space.
  try {
    return WriteCheckpointFiles(checkpoints_dir, tmp_dir, final_dir, data);
  } catch (...) {
    fs::remove_all(tmp_dir, ec);
    throw;
  }
}

namespace {
WrittenCheckpoint WriteCheckpointFiles(const std::string& checkpoints_dir,
                                       const std::string& tmp_dir, const std::string& final_dir,
                                       const CheckpointData& data) {
  std::error_code ec;
  nlohmann::json files = nlohmann::json::array();
  files.push_back(WriteArchive(tmp_dir, "model.pt", data.model));
  files.push_back(WriteArchive(tmp_dir, "optimizer.pt", data.optimizer));
  std::vector<std::pair<std::string, torch::Tensor>> rng;
  for (size_t r = 0; r < data.rng_states.size(); ++r) rng.emplace_back("rank" + std::to_string(r), data.rng_states[r]);
  files.push_back(WriteArchive(tmp_dir, "rng.pt", rng));
  if (!data.cuda_rng_states.empty()) {
    if (data.cuda_rng_states.size() != data.rng_states.size()) {
      Fail(tmp_dir, "cuda_rng.pt: " + std::to_string(data.cuda_rng_states.size()) + " CUDA generator states for " +
                        std::to_string(data.rng_states.size()) + " ranks");
    }
    std::vector<std::pair<std::string, torch::Tensor>> cuda_rng;
    for (size_t r = 0; r < data.cuda_rng_states.size(); ++r) {
      cuda_rng.emplace_back("rank" + std::to_string(r), data.cuda_rng_states[r]);
    }
    files.push_back(WriteArchive(tmp_dir, "cuda_rng.pt", cuda_rng));
  }
  files.push_back(WriteText(tmp_dir, "config.json", ConfigJson(data.config).dump(2) + "\n"));
  nlohmann::json state = data.trainer_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(data.trainer_json);
  state["step"] = data.step;
  state["consumed_samples"] = data.consumed_samples;
  state["world_size"] = data.world_size;
  state["seed"] = data.seed;
  state["model_tensors"] = nlohmann::json::array();
  for (const auto& [key, t] : data.model) state["model_tensors"].push_back(key);
  files.push_back(WriteText(tmp_dir, "trainer_state.json", state.dump(2) + "\n"));

  WrittenCheckpoint written;
  written.step = data.step;
  written.path = final_dir;
  for (const auto& f : files) written.size_bytes += f["size_bytes"].get<uint64_t>();
  const nlohmann::json manifest = {
      {"format", kFormat}, {"format_version", kFormatVersion}, {"step", data.step}, {"files", files}};
  const nlohmann::json manifest_entry = WriteText(tmp_dir, "manifest.json", manifest.dump(2) + "\n");
  written.manifest_sha256 = manifest_entry["sha256"];
  written.size_bytes += manifest_entry["size_bytes"].get<uint64_t>();
  FsyncPath(tmp_dir, true);

  if (fs::exists(final_dir, ec)) fs::remove_all(final_dir, ec);
  fs::rename(tmp_dir, final_dir, ec);
  if (ec) Fail(final_dir, "cannot rename from " + tmp_dir + ": " + ErrnoText(ec.value()));
  FsyncPath(checkpoints_dir, true);
  return written;
}
}  // namespace

bool VerifyCheckpoint(const std::string& dir, std::string* why) {
  try {
    const nlohmann::json m = ReadJson(dir + "/manifest.json");
    if (m.value("format", "") != kFormat || m.value("format_version", 0) != kFormatVersion) {
      *why = "manifest.json: not a version 1 bert-checkpoint";
      return false;
    }
    if (!m.at("files").is_array()) {
      *why = "manifest.json: files is not an array";
      return false;
    }
    for (const auto& f : m.at("files")) {
      const std::string name = f.at("name");
      // A plain file name: a manifest never makes the reader look outside `dir`.
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
          name.find('\0') != std::string::npos) {
        *why = "manifest.json: files[].name '" + name.substr(0, 64) + "' is not a plain file name";
        return false;
      }
      uint64_t size = 0;
      std::error_code ec;
      if (!fs::exists(dir + "/" + name, ec)) {
        *why = name + ": missing";
        return false;
      }
      const formats::Result<std::string> sha = formats::Sha256File(dir + "/" + name, &size);
      if (!sha.ok()) {
        *why = sha.error().message;
        return false;
      }
      if (size != f.at("size_bytes").get<uint64_t>()) {
        *why = name + ": " + std::to_string(size) + " bytes, manifest says " + f.at("size_bytes").dump() +
               " (truncated)";
        return false;
      }
      if (*sha != f.at("sha256").get<std::string>()) {
        *why = name + ": SHA-256 does not match the manifest (corrupt)";
        return false;
      }
    }
    return true;
  } catch (const std::exception& e) {
    *why = e.what();
    return false;
  }
}

BertConfig ReadCheckpointConfig(const std::string& dir) {
  try {
    return ConfigFromJson(ReadJson(dir + "/config.json"), dir + "/config.json");
  } catch (const nlohmann::json::exception& e) {
    throw EngineError(FailureCause::kArtifactCorrupt, dir + "/config.json: " + e.what());
  }
}

std::pair<BertConfig, std::vector<std::pair<std::string, torch::Tensor>>> ReadCheckpointModel(
    const std::string& dir) {
  BertConfig config = ReadCheckpointConfig(dir);
  const nlohmann::json state = ReadJson(dir + "/trainer_state.json");
  try {
    return {config, ReadArchive(dir + "/model.pt", state.at("model_tensors").get<std::vector<std::string>>())};
  } catch (const nlohmann::json::exception& e) {
    throw EngineError(FailureCause::kArtifactCorrupt, dir + "/trainer_state.json: " + e.what());
  }
}

CheckpointData ReadCheckpoint(const std::string& dir) {
  CheckpointData data;
  data.config = ReadCheckpointConfig(dir);
  const nlohmann::json state = ReadJson(dir + "/trainer_state.json");
  try {
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    data.step = BoundedInt(state, "step", 0, kMax, dir + "/trainer_state.json");
    data.consumed_samples = BoundedInt(state, "consumed_samples", 0, kMax, dir + "/trainer_state.json");
    // world_size bounds a loop and the rng states read below.
    data.world_size = BoundedInt(state, "world_size", 1, kMaxWorldSize, dir + "/trainer_state.json");
    data.seed = state.at("seed").get<uint64_t>();
    data.trainer_json = state.dump();
    data.model = ReadArchive(dir + "/model.pt", state.at("model_tensors").get<std::vector<std::string>>());
  } catch (const nlohmann::json::exception& e) {
    throw EngineError(FailureCause::kArtifactCorrupt, dir + "/trainer_state.json: " + e.what());
  }
  data.optimizer = ReadArchive(dir + "/optimizer.pt", {"params", "exp_avg", "exp_avg_sq", "step"});
  std::vector<std::string> rng_keys;
  for (int64_t r = 0; r < data.world_size; ++r) rng_keys.push_back("rank" + std::to_string(r));
  // world_size agrees with the files present: rng.pt holds one state per rank, no more.
  for (auto& [key, t] : ReadArchive(dir + "/rng.pt", rng_keys, /*exactly=*/true)) data.rng_states.push_back(t);
  // Only CUDA runs write it (and no checkpoint before them): absent, the run resumes with CPU states only.
  if (std::error_code ec; fs::exists(dir + "/cuda_rng.pt", ec)) {
    for (auto& [key, t] : ReadArchive(dir + "/cuda_rng.pt", rng_keys, /*exactly=*/true)) {
      data.cuda_rng_states.push_back(t);
    }
  }
  return data;
}

std::vector<std::pair<int64_t, std::string>> ListCheckpoints(const std::string& checkpoints_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    const std::optional<int64_t> step = protocol::ParseCheckpointStep(entry.path().filename().string());
    if (!step || !entry.is_directory()) continue;
    out.emplace_back(*step, entry.path().string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

std::optional<std::string> NewestValidCheckpoint(const std::string& checkpoints_dir,
                                                 std::vector<std::string>* skipped) {
  for (const auto& [step, path] : ListCheckpoints(checkpoints_dir)) {
    std::string why;
    if (VerifyCheckpoint(path, &why)) return path;
    if (skipped != nullptr) skipped->push_back(path + ": " + why);
  }
  return std::nullopt;
}

void PruneCheckpoints(const std::string& checkpoints_dir, int64_t keep) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoints_dir, ec)) {
    if (protocol::IsCheckpointTempDirName(entry.path().filename().string())) fs::remove_all(entry.path(), ec);
  }
  if (keep <= 0) return;
  const auto all = ListCheckpoints(checkpoints_dir);
  for (size_t i = static_cast<size_t>(keep); i < all.size(); ++i) fs::remove_all(all[i].second, ec);
}

CheckpointWriter::CheckpointWriter(std::string checkpoints_dir, int64_t save_total_limit,
                                   std::function<void(const WrittenCheckpoint&)> on_written)
    : dir_(std::move(checkpoints_dir)), save_total_limit_(save_total_limit), on_written_(std::move(on_written)) {}

CheckpointWriter::~CheckpointWriter() {
  if (thread_.joinable()) thread_.join();
}

void CheckpointWriter::Submit(CheckpointData data) {
  Wait();
  thread_ = std::thread([this, data = std::move(data)] {
    try {
      const WrittenCheckpoint written = WriteCheckpoint(dir_, data);
      // Old checkpoints go only once the new one is complete.
      PruneCheckpoints(dir_, save_total_limit_);
      if (on_written_) on_written_(written);
    } catch (...) {
      error_ = std::current_exception();
    }
  });
}

void CheckpointWriter::Wait() {
  if (thread_.joinable()) thread_.join();
  if (error_) {
    std::exception_ptr error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

}  // namespace bert::engine
