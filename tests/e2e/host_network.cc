#include "tests/e2e/host_network.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bert::e2e {
namespace fs = std::filesystem;
namespace {

constexpr char kPrefix[] = "bertmh";
constexpr char kHub[] = "hub";

std::string FindIp() {
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    const std::string path = std::string(dir) + "/ip";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

// Runs argv (argv[0] a path) with output captured; its exit code, and the
// output in `*output`.
int Run(const std::vector<std::string>& argv, std::string* output) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *output = std::string("pipe2: ") + strerror(errno);
    return -1;
  }
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    execv(args[0], args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  output->clear();
  char buffer[512];
  ssize_t n;
  while ((n = read(pipe_fds[0], buffer, sizeof buffer)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) output->append(buffer, static_cast<size_t>(n));
  }
  close(pipe_fds[0]);
  if (pid < 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Deletes the namespaces left by test processes that are gone.
void DeleteStale(const std::string& ip) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kPrefix, 0) != 0) continue;
    const size_t dash = name.find('-');
    if (dash == std::string::npos) continue;
    const std::string pid_text = name.substr(sizeof(kPrefix) - 1, dash - (sizeof(kPrefix) - 1));
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid <= 0 || (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      std::string out;
      Run({ip, "netns", "delete", name}, &out);
    }
  }
}

}  // namespace

std::string HostNetwork::Unavailable() {
  if (geteuid() != 0) return "network namespaces need root (CI runs the tests as root)";
  const std::string ip = FindIp();
  if (ip.empty()) return "no `ip` (iproute2) in /usr/sbin, /sbin, /usr/bin or /bin";
  const std::string probe = std::string(kPrefix) + std::to_string(getpid()) + "-probe";
  std::string out;
  if (Run({ip, "netns", "add", probe}, &out) != 0) return "`ip netns add` failed: " + out;
  const int exec = Run({ip, "netns", "exec", probe, ip, "link", "set", "lo", "up"}, &out);
  std::string ignored;
  Run({ip, "netns", "delete", probe}, &ignored);
  if (exec != 0) return "`ip netns exec` failed: " + out;
  return "";
}

HostNetwork::HostNetwork(const std::vector<std::string>& hosts)
    : ip_(FindIp()), prefix_(std::string(kPrefix) + std::to_string(getpid()) + "-") {
  if (ip_.empty()) {
    error_ = "no `ip` binary";
    return;
  }
  DeleteStale(ip_);
  const std::string hub = Namespace(kHub);
  if (!Ip({"netns", "add", hub})) return;
  namespaces_.push_back(hub);
  if (!Ip({"-n", hub, "link", "add", "br0", "type", "bridge"}) ||
      !Ip({"-n", hub, "link", "set", "br0", "up"})) {
    return;
  }
  for (size_t i = 0; i < hosts.size(); ++i) {
    const std::string ns = Namespace(hosts[i]);
    const std::string address = "10.77.0." + std::to_string(i + 1);
    const std::string port = "p" + std::to_string(i);  // the bridge's end
    if (!Ip({"netns", "add", ns})) return;
    namespaces_.push_back(ns);
    if (!Ip({"-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns}) ||
        !Ip({"-n", hub, "link", "set", port, "master", "br0"}) ||
        !Ip({"-n", hub, "link", "set", port, "up"}) ||
        !Ip({"-n", ns, "addr", "add", address + "/24", "dev", "eth0"}) ||
        !Ip({"-n", ns, "link", "set", "eth0", "up"}) ||
        !Ip({"-n", ns, "link", "set", "lo", "up"})) {
      return;
    }
    addresses_[hosts[i]] = address;
  }
}

HostNetwork::~HostNetwork() {
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) {
    std::string out;
    Run({ip_, "netns", "delete", *it}, &out);
  }
}

std::vector<std::string> HostNetwork::Prefix(const std::string& host) const {
  return {ip_, "netns", "exec", Namespace(host)};
}

bool HostNetwork::Enter(const std::string& host) {
  const std::string path = "/run/netns/" + Namespace(host);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error_ = "open " + path + ": " + strerror(errno);
    return false;
  }
  const bool entered = setns(fd, CLONE_NEWNET) == 0;
  if (!entered) error_ = "setns " + path + ": " + strerror(errno);
  close(fd);
  return entered;
}

std::string HostNetwork::Namespace(const std::string& host) const { return prefix_ + host; }

bool HostNetwork::Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {ip_};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string out;
  if (Run(argv, &out) == 0) return true;
  std::ostringstream command;
  for (const std::string& a : argv) command << a << " ";
  error_ = command.str() + "failed: " + out;
  return false;
}

}  // namespace bert::e2e
