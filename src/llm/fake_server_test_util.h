// FakeLlmServer: runs tests/fake_llm_server.py (a real HTTP server on 127.0.0.1)
// for the lifetime of the object. Header-only so that any *_test.cc can use it.
//
//   kbrun::test_util::FakeLlmServer server(R"([{"response_text": "```python\n...\n```"}])");
//   config.base_url = server.base_url();           // "http://127.0.0.1:PORT/v1"
//   ...
//   EXPECT_EQ(server.Requests().size(), 1u);        // one JSON object per request received
//
// The scenario format is documented at the top of tests/fake_llm_server.py.
// Construct it on a thread that outlives it: the server is killed when that thread ends.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/text.h"

#ifndef KBRUN_TEST_DATA_DIR
#error "fake_server_test_util.h is for tests: KBRUN_TEST_DATA_DIR must be defined"
#endif

namespace kbrun::test_util {

class FakeLlmServer {
 public:
  // `scenario_json`: the JSON list of rules. The server exits by itself after `max_seconds`.
  explicit FakeLlmServer(const std::string& scenario_json, double max_seconds = 120) {
    dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-fake-llm-");
    WriteFileAtomic(dir_ / "scenario.json", scenario_json);
    const std::string script = std::string(KBRUN_TEST_DATA_DIR) + "/fake_llm_server.py";
    std::vector<std::string> args = {"python3",       script,
                                     "--scenario",    (dir_ / "scenario.json").string(),
                                     "--port-file",   (dir_ / "port").string(),
                                     "--log",         (dir_ / "requests.jsonl").string(),
                                     "--max-seconds", std::to_string(max_seconds)};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out_path = (dir_ / "server.out").string();

    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("FakeLlmServer: fork failed");
    if (pid_ == 0) {
      // Child: only async-signal-safe calls until exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test process
      int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execvp(argv[0], argv.data());
      _exit(127);
    }
    // Wait for the port file (the server writes it once it listens).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto text = ReadFile(dir_ / "port"); text && !Trim(*text).empty()) {
        port_ = std::stoi(Trim(*text));
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        std::string output = ReadFile(out_path).value_or("");
        Cleanup();
        throw std::runtime_error("FakeLlmServer: the server exited at start: " + output);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    Cleanup();
    throw std::runtime_error("FakeLlmServer: no port file after 20 s");
  }

  ~FakeLlmServer() { Cleanup(); }
  FakeLlmServer(const FakeLlmServer&) = delete;
  FakeLlmServer& operator=(const FakeLlmServer&) = delete;

  int port() const { return port_; }
  // The OpenAI / Anthropic base URL: append nothing, the providers add /chat/completions or /messages.
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  // Every request received so far, in order: {"path", "headers", "auth_present", "body", "prompt", "rule", "time"}.
  std::vector<nlohmann::json> Requests() const {
    std::vector<nlohmann::json> out;
    for (const auto& line : SplitLines(ReadFile(dir_ / "requests.jsonl").value_or(""))) {
      if (!Trim(line).empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }
  // A private folder, removed with the server: a convenient place for a test's files.
  const fs::path& dir() const { return dir_; }

 private:
  void Cleanup() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      bool reaped = false;
      for (int i = 0; i < 100 && !reaped; ++i) {  // up to 1 s for a clean exit
        reaped = waitpid(pid_, &status, WNOHANG) == pid_;
        if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (!reaped) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      }
      pid_ = -1;
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace kbrun::test_util
