// bertctl's user-facing conventions, as users run the binary against
// FakeJobService: -o text|json|yaml|wide, the config file and its precedence,
// and the shell completion script.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "tests/client/fake_job_service.h"

namespace bert::client {
namespace {

namespace fs = std::filesystem;
using testing::FakeJobService;
using testing::FakeServer;
using ::testing::HasSubstr;
using ::testing::Not;

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Env(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}
std::string BertctlPath() { return Env("BERT_BIN_DIR", BERT_TEST_BIN_DIR) + "/bertctl"; }

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(BertctlPath())) GTEST_SKIP() << BertctlPath() << " is not built";
    dir_ = fs::temp_directory_path() / ("bertctl_cli_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "xdg" / "bertctl");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `command_line` (sh) with bertctl's settings cleared: no BERTCTL_*
  // variables, and XDG_CONFIG_HOME at this test's directory.
  CommandResult Run(const std::string& command_line, const std::string& env = "") {
    const std::string command =
        "env -u BERTCTL_SERVER -u BERTCTL_TOKEN -u BERTCTL_TOKEN_FILE -u BERTCTL_CONFIG "
        "-u BERTCTL_OUTPUT XDG_CONFIG_HOME=" +
        (dir_ / "xdg").string() + " " + env + " " + command_line + " >" +
        (dir_ / "out").string() + " 2>" + (dir_ / "err").string() + " </dev/null";
    const int status = std::system(command.c_str());
    CommandResult run;
    run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = Slurp(dir_ / "out");
    run.err = Slurp(dir_ / "err");
    return run;
  }
  CommandResult Bertctl(const std::string& args, const std::string& env = "") {
    return Run(BertctlPath() + " " + args, env);
  }
  void WriteConfig(const std::string& text) {
    std::ofstream(dir_ / "xdg" / "bertctl" / "config.yaml") << text;
  }

  fs::path dir_;
};

TEST_F(CliTest, YamlIsTheSameDataAsJson) {
  FakeJobService service;
  FakeServer server(&service);
  const std::string s = " --server " + server.address();
  for (const std::string verb : {"get job-1", "list", "agents", "checkpoints job-1",
                                 "metrics job-1"}) {
    const CommandResult json = Bertctl(verb + " -o json" + s);
    const CommandResult yaml = Bertctl(verb + " -o yaml" + s);
    ASSERT_EQ(json.exit_code, 0) << verb << json.err;
    ASSERT_EQ(yaml.exit_code, 0) << verb << yaml.err;
    // Every key of the JSON object is a key of the YAML map, in the same order.
    const nlohmann::ordered_json from_json = nlohmann::ordered_json::parse(json.out);
    const YAML::Node from_yaml = YAML::Load(yaml.out);
    ASSERT_TRUE(from_yaml.IsMap()) << verb << yaml.out;
    std::vector<std::string> json_keys;
    std::vector<std::string> yaml_keys;
    for (const auto& [key, value] : from_json.items()) json_keys.push_back(key);
    for (const auto& entry : from_yaml) yaml_keys.push_back(entry.first.as<std::string>());
    EXPECT_EQ(json_keys, yaml_keys) << verb;
  }
  const YAML::Node job = YAML::Load(Bertctl("get job-1 -o yaml" + s).out);
  EXPECT_EQ(job["id"].as<std::string>(), "job-1");
  EXPECT_EQ(job["state"].as<std::string>(), "SUCCEEDED");
  EXPECT_EQ(job["stages"].size(), 5u);
  EXPECT_DOUBLE_EQ(job["latest_metrics"]["train/loss"].as<double>(), 6.5);
  // Streams: one YAML document per log line.
  const CommandResult logs = Bertctl("logs job-1 -o yaml" + s);
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  const std::vector<YAML::Node> documents = YAML::LoadAll(logs.out);
  ASSERT_FALSE(documents.empty());
  EXPECT_EQ(documents[0]["stage"].as<std::string>(), "PRETRAIN") << logs.out;
}

TEST_F(CliTest, WideAddsColumns) {
  FakeJobService service;
  FakeServer server(&service);
  const std::string s = " --server " + server.address();
  CommandResult run = Bertctl("list -o wide" + s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  for (const char* column : {"DURATION", "STAGES", "ATTEMPTS", "AGENT", "CREATED"}) {
    EXPECT_THAT(run.out, HasSubstr(column));
  }
  EXPECT_THAT(run.out, HasSubstr(" 5/5 "));  // all five stages succeeded
  EXPECT_THAT(Bertctl("list" + s).out, Not(HasSubstr("ATTEMPTS")));

  run = Bertctl("agents -o wide" + s);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("RESOURCES"));
  EXPECT_THAT(run.out, HasSubstr("8 cpu, 17.2GB mem"));
  EXPECT_THAT(run.out, HasSubstr("zone=lab-1"));
  EXPECT_THAT(Bertctl("agents" + s).out, Not(HasSubstr("zone=lab-1")));
}

TEST_F(CliTest, AnUnknownOutputIsAUsageErrorNamingTheAllowedOnes) {
  CommandResult run = Bertctl("list -o xml --server 127.0.0.1:1");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("text,json,yaml,wide"));
  run = Bertctl("list --server 127.0.0.1:1", "BERTCTL_OUTPUT=xml");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("BERTCTL_OUTPUT: 'xml' is not one of text, json, yaml, wide"));
}

TEST_F(CliTest, ConfigFileGivesServerTokenAndOutputUnderFlagAndEnvironment) {
  FakeJobService service;
  service.RequireToken("s3cret");
  FakeServer server(&service);
  std::ofstream(dir_ / "xdg" / "bertctl" / "token") << "s3cret\n";
  // token_file is relative to the config file's directory.
  WriteConfig("server: " + server.address() + "\ntoken_file: token\noutput: json\n");
  CommandResult run = Bertctl("get job-1");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["id"], "job-1");  // output: json
  // The flag beats the file.
  EXPECT_THAT(Bertctl("get job-1 -o text").out, HasSubstr("state      succeeded"));
  // The environment beats the file, and the flag beats the environment.
  EXPECT_EQ(Bertctl("get job-1 --timeout-ms 3000", "BERTCTL_SERVER=127.0.0.1:1").exit_code, 3);
  EXPECT_EQ(Bertctl("get job-1 --server " + server.address(), "BERTCTL_SERVER=127.0.0.1:1")
                .exit_code,
            0);
  EXPECT_EQ(Bertctl("get job-1", "BERTCTL_TOKEN=wrong").exit_code, 5);

  // `config view`: the effective settings, where each came from, no token.
  WriteConfig("server: " + server.address() + "\ntoken: s3cret\n");
  run = Bertctl("config view", "BERTCTL_OUTPUT=yaml");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, Not(HasSubstr("s3cret")));
  const YAML::Node view = YAML::Load(run.out);
  EXPECT_EQ(view["config_file"].as<std::string>(),
            (dir_ / "xdg" / "bertctl" / "config.yaml").string());
  std::map<std::string, std::pair<std::string, std::string>> settings;
  for (const YAML::Node& setting : view["settings"]) {
    settings[setting["key"].as<std::string>()] = {setting["value"].as<std::string>(),
                                                  setting["source"].as<std::string>()};
  }
  const std::string file = (dir_ / "xdg" / "bertctl" / "config.yaml").string();
  EXPECT_EQ(settings["server"], std::make_pair(server.address(), file + ":1"));
  EXPECT_EQ(settings["token"], std::make_pair(std::string("<redacted>"), file + ":2"));
  EXPECT_EQ(settings["output"], std::make_pair(std::string("yaml"), std::string("env BERTCTL_OUTPUT")));
  EXPECT_EQ(Bertctl("get job-1").exit_code, 0);

  // --config and BERTCTL_CONFIG name another file.
  std::ofstream(dir_ / "other.yaml") << "server: 127.0.0.1:1\n";
  EXPECT_EQ(Bertctl("get job-1 --timeout-ms 3000 --config " + (dir_ / "other.yaml").string())
                .exit_code,
            3);
  EXPECT_EQ(Bertctl("get job-1 --timeout-ms 3000",
                    "BERTCTL_CONFIG=" + (dir_ / "other.yaml").string())
                .exit_code,
            3);
}

TEST_F(CliTest, ABadConfigFileNamesFileLineAndKey) {
  const std::string file = (dir_ / "xdg" / "bertctl" / "config.yaml").string();
  WriteConfig("server: 127.0.0.1:1\nsevrer: x\n");
  CommandResult run = Bertctl("list");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr(file + ":2: sevrer: unknown key (known: server, token,"));
  WriteConfig("# comment\n\noutput: xml\n");
  run = Bertctl("list");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr(file + ":3: output: 'xml' is not one of text, json, yaml, wide"));
  WriteConfig("server:\n  - a\n");
  run = Bertctl("list");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr(file + ":2: server: must be a single value"));
  WriteConfig("server: [a\n");
  run = Bertctl("list");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr(file + ":2:1: "));
  WriteConfig("token_file: missing.token\n");
  run = Bertctl("list");
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("token_file " + (dir_ / "xdg" / "bertctl").string() +
                                 "/missing.token (from " + file + ":1): no such file"));
  run = Bertctl("list --config " + (dir_ / "nope.yaml").string());
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr((dir_ / "nope.yaml").string() + ": no such file"));
}

TEST_F(CliTest, BashCompletionParsesAndCompletesVerbsFlagsAndJobIds) {
  const CommandResult script = Bertctl("completion bash");
  ASSERT_EQ(script.exit_code, 0) << script.err;
  std::ofstream(dir_ / "completion.bash") << script.out;
  CommandResult run = Run("bash -n " + (dir_ / "completion.bash").string());
  EXPECT_EQ(run.exit_code, 0) << run.err;

  // Every verb `bertctl --help` lists is completed after "bertctl ".
  const CommandResult help = Bertctl("--help");
  std::vector<std::string> verbs;
  std::stringstream in(help.out);
  bool listing = false;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Subcommands:", 0) == 0) {
      listing = true;
    } else if (listing && line.size() > 2 && line.rfind("  ", 0) == 0 && line[2] != ' ') {
      std::stringstream words(line);
      std::string verb;
      words >> verb;
      verbs.push_back(verb);
    } else if (listing && !line.empty()) {
      break;
    }
  }
  ASSERT_GE(verbs.size(), 15u) << help.out;
  // complete.sh SCRIPT CWORD WORDS...: what the script offers for WORDS[CWORD].
  std::ofstream(dir_ / "complete.sh")
      << "source \"$1\"; COMP_CWORD=$2; shift 2; COMP_WORDS=(\"" << BertctlPath()
      << "\" \"$@\"); _bertctl; printf '%s\\n' \"${COMPREPLY[@]}\"\n";
  const std::string complete =
      "bash " + (dir_ / "complete.sh").string() + " " + (dir_ / "completion.bash").string() + " ";
  run = Run(complete + "1 \"\"");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  run.out = "\n" + run.out;
  for (const std::string& verb : verbs) {
    EXPECT_THAT(run.out, HasSubstr("\n" + verb + "\n")) << verb << " is not completed";
  }
  EXPECT_THAT(run.out, Not(HasSubstr("__complete-jobs")));
  // A verb's flags, -o's values, a nested verb.
  EXPECT_THAT(Run(complete + "2 logs --f").out, HasSubstr("--follow"));
  EXPECT_EQ(Run(complete + "2 logs --reco").out, "--reconnect-timeout\n");
  EXPECT_EQ(Run(complete + "2 -o ya").out, "yaml\n");
  EXPECT_EQ(Run(complete + "2 config \"\"").out, "view\n");

  // Job ids come from bertd (bertctl __complete-jobs) for verbs that take one.
  FakeJobService service;
  FakeServer server(&service);
  EXPECT_EQ(Run(complete + "2 get \"\"", "BERTCTL_SERVER=" + server.address()).out, "job-1\n");
  EXPECT_EQ(Run(complete + "3 logs -f job", "BERTCTL_SERVER=" + server.address()).out, "job-1\n");
  // The server flag of the line is passed on.
  EXPECT_EQ(Run(complete + "4 --server " + server.address() + " checkpoints j").out, "job-1\n");
  EXPECT_EQ(Run(complete + "2 agents \"\"", "BERTCTL_SERVER=" + server.address()).out, "\n");

  const CommandResult zsh = Bertctl("completion zsh");
  EXPECT_EQ(zsh.exit_code, 0);
  EXPECT_THAT(zsh.out, HasSubstr("#compdef bertctl"));
  EXPECT_THAT(zsh.out, HasSubstr("bashcompinit"));
  EXPECT_EQ(Bertctl("completion fish").exit_code, 2);
}

}  // namespace
}  // namespace bert::client
