// Helpers of the end-to-end batch tests: the real kbrun binary against the fake LLM
// server (tests/fake_llm_server.py) or the replay provider, on the test problems of
// tests/batch. Header-only, for the *_test.cc files of src/batch.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "llm/fake_server_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::batch_test {

using nlohmann::json;
using test_util::FakeLlmServer;

inline const fs::path kData = KBRUN_TEST_DATA_DIR;

inline std::string Response(const std::string& name) {
  return ReadFileOrThrow(kData / "batch/responses" / (name + ".txt"));
}

inline json Rule(const std::string& match, const std::string& text, const json& extra = json::object()) {
  json rule = {{"match", match}, {"response_text", text}};
  rule.update(extra);
  return rule;
}

inline std::map<std::string, std::string> Environment(bool with_key = true) {
  auto env = CurrentEnvironment();
  // The developer's own LLM settings must not leak into the test.
  for (const char* name : {"LLM_GATEWAY_KEY", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_PROVIDER", "LLM_BASE_URL",
                           "LLM_MODEL", "LLM_REPLAY", "LLM_REPLAY_LATENCY", "LLM_HEADERS", "KBRUN_LLM_CONFIG",
                           "NUM_SAMPLES", "KERNELBENCH_DIR", "KBRUN_PROMPTS_DIR"}) {
    env.erase(name);
  }
  if (with_key) env["LLM_GATEWAY_KEY"] = "test-key";
  return env;
}

inline std::vector<std::string> BatchArgv(const fs::path& results, const std::string& base_url, int first, int last,
                                          std::vector<std::string> extra) {
  std::vector<std::string> argv = {KBRUN_BINARY, "batch", std::to_string(first), std::to_string(last), "--problems-dir",
                                   (kData / "batch/problems").string(), "--results", results.string(), "--provider",
                                   "openai", "--base-url", base_url, "--model", "fake-model", "--max-retries", "0",
                                   "--prompts-dir", (kData / "../prompts").string(), "--device", "cpu", "--python",
                                   "/usr/bin/python3", "--correct-trials", "2", "--perf-trials", "5", "--warmup", "1",
                                   "--compile-jobs", "2",
                                   // Private build dirs beside the results: a killed batch leaves its
                                   // orphaned ones there, removed with the test's folder.
                                   "--work-dir", (results.parent_path() / "work").string(),
                                   // Plain PyTorch candidates are about as fast as the reference: a correct
                                   // sample is a success here (the speed feedback has its own unit test).
                                   "--target-speedup", "0",
                                   // Most answers here are plain PyTorch: the loop is under test, not the
                                   // library-kernel check, whose CPU figure swings on a loaded machine.
                                   "--allow-library-kernels"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

inline ProcessResult RunKbrun(const std::vector<std::string>& argv, std::map<std::string, std::string> env) {
  ProcessSpec spec;
  spec.argv = argv;
  spec.env = std::move(env);
  spec.timeout_s = 400;
  return RunProcess(spec);
}

// A kbrun run in the background, for tests that kill or interrupt it.
class Background {
 public:
  Background(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
             const fs::path& output) {
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
    std::vector<char*> argv, envp;
    std::vector<std::string> a = args;
    for (auto& s : a) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string out = output.string();
    pid_ = fork();
    if (pid_ == 0) {
      int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  void Signal(int sig) { kill(pid_, sig); }
  // Exit status (or 128 + signal); -1 when it is still running after `timeout_s`.
  int Wait(double timeout_s) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, read, closed): nothing
// listens on it, so a connection is refused, and a server started on it can bind it.
inline int UnusedLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  bool ok = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  if (fd >= 0) close(fd);
  if (!ok) throw std::runtime_error("UnusedLoopbackPort: no port on 127.0.0.1");
  return ntohs(addr.sin_port);
}

inline bool WaitFor(const std::function<bool()>& condition, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

inline json ReadJson(const fs::path& path) {
  auto text = ReadFile(path);
  if (!text) return nullptr;
  return json::parse(*text, nullptr, false);
}

inline std::vector<json> RequestsFor(const FakeLlmServer& server, const std::string& marker) {
  std::vector<json> out;
  for (const auto& r : server.Requests()) {
    if (Contains(r.value("prompt", ""), marker)) out.push_back(r);
  }
  return out;
}

inline std::vector<fs::path> FilesNamed(const fs::path& dir, const std::string& part) {
  std::vector<fs::path> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.path().filename().string().find(part) != std::string::npos) out.push_back(e.path());
  }
  return out;
}

// The replay provider instead of the HTTP server: a folder of answers, a simulated latency.
inline std::vector<std::string> ReplayArgv(const fs::path& results, const fs::path& replay, int first, int last,
                                           const std::vector<std::string>& extra) {
  std::vector<std::string> argv = BatchArgv(results, "", first, last, extra);
  for (const char* flag : {"--provider", "--base-url", "--model", "--max-retries"}) {
    auto it = std::find(argv.begin(), argv.end(), flag);
    argv.erase(it, it + 2);
  }
  argv.insert(argv.begin() + 2, {"--replay-dir", replay.string()});
  return argv;
}

}  // namespace kbrun::batch_test
