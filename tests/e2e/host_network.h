// Hosts for end-to-end tests on one machine: each host is a network namespace
// of its own with one address, all joined by a bridge that lives in a further
// namespace of the test's (no interface or route of the machine's own network
// changes; traffic flows only between these namespaces). Programs run on a
// host through `ip netns exec` (Prefix). Needs root and iproute2.
//
// The namespaces are named "bertmh<pid>-<host>"; the destructor deletes them,
// and the constructor first deletes any left by a test process that died.
// Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace bert::e2e {

class HostNetwork {
 public:
  // Why hosts cannot be made here ("" when they can): not root, no `ip`, or
  // the kernel refuses a network namespace.
  static std::string Unavailable();

  // Hosts named `hosts` (short names: letters, digits, '-'), at 10.77.0.<i+1>
  // in order. ok() is false (and error() says why) when a step failed.
  explicit HostNetwork(const std::vector<std::string>& hosts);
  HostNetwork(const HostNetwork&) = delete;
  HostNetwork& operator=(const HostNetwork&) = delete;
  ~HostNetwork();

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  const std::string& Address(const std::string& host) const { return addresses_.at(host); }
  // The argv prefix that runs a program on `host`.
  std::vector<std::string> Prefix(const std::string& host) const;
  // Moves the calling thread (and threads it starts later) onto `host`'s
  // network. Call before anything opens sockets or starts gRPC's threads.
  bool Enter(const std::string& host);

 private:
  std::string Namespace(const std::string& host) const;
  // Runs `ip ARGS...`; false (and error_ set) when it fails.
  bool Ip(const std::vector<std::string>& args);

  std::string ip_;      // path of the ip binary
  std::string prefix_;  // "bertmh<pid>-"
  std::map<std::string, std::string> addresses_;
  std::vector<std::string> namespaces_;  // created, to delete
  std::string error_;
};

}  // namespace bert::e2e
