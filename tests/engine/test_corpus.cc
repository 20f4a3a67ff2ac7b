#include "tests/engine/test_corpus.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_map>

#include "formats/sha256.h"

namespace bert::engine::testing {
namespace fs = std::filesystem;

std::vector<std::string> LoadEnglishLines(size_t max_lines) {
  std::vector<std::string> candidates;
  if (const char* shared = std::getenv("BERT_SHARED_DIR"))
    candidates.push_back(std::string(shared) + "/corpus/brown.txt");
  const char* source = std::getenv("BERT_SOURCE_DIR");
  candidates.push_back(std::string(source ? source : ".") +
                       "/tests/engine/testdata/brown_excerpt.txt");
  for (const std::string& path : candidates) {
    std::ifstream in(path);
    if (!in) continue;
    std::vector<std::string> lines;
    std::string line;
    while (lines.size() < max_lines && std::getline(in, line)) {
      if (!line.empty()) lines.push_back(line);
    }
    if (!lines.empty()) return lines;
  }
  return {};
}

int64_t WordVocab::Id(const std::string& word) const {
  static thread_local const WordVocab* cached = nullptr;
  static thread_local std::unordered_map<std::string, int64_t> index;
  if (cached != this) {
    index.clear();
    for (size_t i = 0; i < tokens.size(); ++i) index[tokens[i]] = static_cast<int64_t>(i);
    cached = this;
  }
  const auto it = index.find(word);
  return it == index.end() ? 1 : it->second;
}

static std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  std::istringstream in(line);
  std::string w;
  while (in >> w) {
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
    words.push_back(w);
  }
  return words;
}

WordVocab BuildWordVocab(const std::vector<std::string>& lines, size_t size) {
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& line : lines)
    for (const auto& w : Words(line)) ++counts[w];
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  WordVocab vocab;
  vocab.tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (const auto& [w, n] : sorted) {
    if (vocab.tokens.size() >= size) break;
    vocab.tokens.push_back(w);
  }
  return vocab;
}

static std::string WriteShard(const std::string& path, const std::vector<uint16_t>& ids) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(ids.data()),
            static_cast<std::streamsize>(ids.size() * 2));
  out.close();
  formats::Sha256 sha;
  sha.Update(ids.data(), ids.size() * 2);
  return sha.HexDigest();
}

int64_t WritePackedDataset(const std::string& dir, const std::vector<std::string>& lines,
                           const WordVocab& vocab, int64_t seq_len, int64_t validation_blocks) {
  std::vector<uint16_t> stream;
  for (const auto& line : lines) {
    stream.push_back(2);
    for (const auto& w : Words(line)) stream.push_back(static_cast<uint16_t>(vocab.Id(w)));
    stream.push_back(3);
  }
  return WritePackedIds(dir, stream, static_cast<int64_t>(vocab.tokens.size()),
                        static_cast<int64_t>(lines.size()), seq_len, validation_blocks);
}

int64_t WritePackedIds(const std::string& dir, const std::vector<uint16_t>& stream,
                       int64_t vocab_size, int64_t documents, int64_t seq_len,
                       int64_t validation_blocks) {
  fs::create_directories(dir);
  const int64_t blocks = static_cast<int64_t>(stream.size()) / seq_len;
  std::vector<int64_t> order(static_cast<size_t>(blocks));
  for (int64_t i = 0; i < blocks; ++i) order[i] = i;
  std::mt19937_64 rng(34);
  std::shuffle(order.begin(), order.end(), rng);
  const int64_t train_blocks = blocks - validation_blocks;
  std::vector<uint16_t> train, validation;
  for (int64_t i = 0; i < blocks; ++i) {
    auto& out = i < train_blocks ? train : validation;
    out.insert(out.end(), stream.begin() + order[i] * seq_len,
               stream.begin() + (order[i] + 1) * seq_len);
  }
  // Two training shards, to exercise the cross-shard lookup.
  const int64_t half = train_blocks / 2;
  std::vector<uint16_t> train0(train.begin(), train.begin() + half * seq_len),
      train1(train.begin() + half * seq_len, train.end());
  nlohmann::json manifest = {
      {"format", "bert-packed-dataset"},
      {"format_version", 1},
      {"dtype", "uint16"},
      {"seq_len", seq_len},
      {"vocab_size", vocab_size},
      {"tokenizer_sha256", ""},
      {"special_token_ids", {{"pad", 0}, {"unk", 1}, {"cls", 2}, {"sep", 3}, {"mask", 4}}},
      {"shuffle_seed", 34},
      {"splits",
       {{"train",
         {{"blocks", train_blocks},
          {"shards",
           {{{"file", "train-00000.bin"},
             {"blocks", half},
             {"sha256", WriteShard(dir + "/train-00000.bin", train0)}},
            {{"file", "train-00001.bin"},
             {"blocks", train_blocks - half},
             {"sha256", WriteShard(dir + "/train-00001.bin", train1)}}}}}},
        {"validation",
         {{"blocks", validation_blocks},
          {"shards",
           {{{"file", "validation-00000.bin"},
             {"blocks", validation_blocks},
             {"sha256", WriteShard(dir + "/validation-00000.bin", validation)}}}}}}}},
      {"stats",
       {{"documents", documents},
        {"tokens", stream.size()},
        {"tokens_truncated", 0},
        {"tokens_dropped_remainder", static_cast<int64_t>(stream.size()) - blocks * seq_len}}}};
  std::ofstream(dir + "/manifest.json") << manifest.dump(2) << "\n";
  return train_blocks;
}

namespace {

// This process's directory of scratch directories, removed when it exits
// (normally, or after a failed assertion; a forked child that execs or
// _exits never runs it).
const fs::path& ProcessScratchRoot() {
  static const fs::path* root = [] {
    const char* tmp = std::getenv("TEST_TMPDIR");
    auto* path = new fs::path(fs::path(tmp ? tmp : fs::temp_directory_path().string()) /
                              ("bert-engine-test-" + std::to_string(::getpid())));
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(ProcessScratchRoot(), ec);
    });
    return path;
  }();
  return *root;
}

}  // namespace

std::string MakeTempDir(const std::string& name) {
  const fs::path dir = ProcessScratchRoot() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

int RunProcess(const std::vector<std::string>& argv, std::string* out) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  std::fflush(stdout);  // else the child flushes our buffered output again
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror("execv");
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0) {
    if (out != nullptr) out->append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string BinaryPath(const std::string& name) {
  if (const char* bin = std::getenv("BERT_BIN_DIR")) return std::string(bin) + "/" + name;
  return (fs::canonical("/proc/self/exe").parent_path().parent_path() / "bin" / name).string();
}

}  // namespace bert::engine::testing
