// `kbrun batch --evaluator` end to end on the CPU: a real `kbrun serve` on a free port of
// 127.0.0.1 (the test problems of tests/batch), the fake LLM server (tests/fake_llm_server.py),
// and the real kbrun binary: the same verdicts as a local batch, a wrong token, refused flags,
// and a service killed mid-batch then restarted, the batch resumed without submitting again.
#include <signal.h>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <stdexcept>

#include "batch/batch_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using namespace batch_test;
using nlohmann::json;
using test_util::FakeLlmServer;

const std::string kToken = "remote-e2e-token-5f1d9c";

// A kbrun serve on the CPU in `dir` (state dir, token file, compile cache, log).
class Service {
 public:
  Service(const fs::path& dir, int port, int compile_pool = 2) : dir_(dir), port_(port) {
    WriteFileAtomic(dir_ / "token", kToken + "\n");
    Start(compile_pool);
  }
  ~Service() { Stop(SIGTERM); }

  void Start(int compile_pool = 2) {
    std::vector<std::string> argv = {KBRUN_BINARY,
                                     "serve",
                                     "--listen",
                                     fmt::format("127.0.0.1:{}", port_),
                                     "--token-file",
                                     (dir_ / "token").string(),
                                     "--state-dir",
                                     (dir_ / "state").string(),
                                     "--device",
                                     "cpu",
                                     "--python",
                                     "/usr/bin/python3",
                                     "--compile-pool",
                                     std::to_string(compile_pool),
                                     "--compile-cache",
                                     (dir_ / "cache").string(),
                                     "--allow-library-kernels"};
    log_ = dir_ / fmt::format("serve-{}.log", ++starts_);
    process_ = std::make_unique<Background>(argv, Environment(false), log_);
    up_ = WaitFor([&] { return Contains(ReadFile(log_).value_or(""), "listening on"); }, 120);
  }
  void Stop(int sig) {
    if (!process_) return;
    process_->Signal(sig);
    process_->Wait(60);
    process_.reset();
  }
  bool up() const { return up_; }
  std::string url() const { return fmt::format("http://127.0.0.1:{}", port_); }
  fs::path token_file() const { return dir_ / "token"; }
  std::string Log() const { return ReadFile(log_).value_or("(no log)"); }
  // Evaluations the service accepted: one folder each in its state dir.
  size_t Accepted() const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "state")) {
      if (e.is_directory() && e.path().filename().string()[0] != '.') ++n;
    }
    return n;
  }

 private:
  fs::path dir_, log_;
  int port_ = 0, starts_ = 0;
  bool up_ = false;
  std::unique_ptr<Background> process_;
};

// The batch's argv for the service: the local flags the service cannot honour are dropped.
std::vector<std::string> RemoteArgv(std::vector<std::string> argv, const Service& service,
                                    std::vector<std::string> extra = {}) {
  for (const char* flag : {"--device", "--python", "--compile-jobs", "--work-dir"}) {
    auto it = std::find(argv.begin(), argv.end(), flag);
    if (it != argv.end()) argv.erase(it, it + 2);
  }
  argv.erase(std::remove(argv.begin(), argv.end(), "--allow-library-kernels"), argv.end());
  argv.insert(argv.end(), {"--evaluator", service.url(), "--evaluator-token-file", service.token_file().string()});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

// problem/result_N.json -> status, over a results tree.
std::map<std::string, std::string> Verdicts(const fs::path& results) {
  std::map<std::string, std::string> out;
  for (const auto& f : FilesNamed(results, "result_")) {
    if (f.extension() != ".json") continue;
    out[f.parent_path().filename().string() + "/" + f.filename().string()] = ReadJson(f).value("status", "?");
  }
  return out;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = 0; (at = text.find(needle, at)) != std::string::npos; at += needle.size()) ++n;
  return n;
}

// The same square and negate, each taking a second to construct (in the service's compile phase):
// with one compile thread the service then still holds evaluations when the test kills it.
std::string Slow(const std::string& response) {
  const std::string init = "super().__init__()";
  std::string text = response;
  size_t at = text.find(init);
  if (at == std::string::npos) throw std::logic_error("no __init__ in the response");
  return text.insert(at + init.size(), "\n        import time\n        time.sleep(1.0)");
}

json SlowScenario() {
  return json::array({
      Rule("MARKER_FOUR", Slow(Response("square"))),
      Rule("MARKER_FIVE", Slow(Response("negate"))),
  });
}

json Scenario() {
  return json::array({
      Rule("max abs diff", Response("add_twice_fixed")),  // only a reflection prompt holds the mismatch
      Rule("MARKER_TWO", Response("add_twice_wrong")),
      Rule("MARKER_THREE", "I am sorry, but I cannot help with that."),
      Rule("MARKER_FOUR", Response("square")),
      Rule("MARKER_FIVE", Response("negate")),
  });
}

// Problems 2-5 locally and through the service: the same samples, the same verdicts; the
// reflection of problem 2 was built from the service's result; the summary and the report
// say where evaluation ran, and the token is nowhere in the results tree or the output.
TEST(RemoteEvaluatorE2E, SameVerdictsAsALocalBatch) {
  FakeLlmServer server(Scenario().dump(), 600);
  Service service(server.dir() / "service", UnusedLoopbackPort());
  ASSERT_TRUE(service.up()) << service.Log();
  auto base = BatchArgv(server.dir() / "local", server.base_url(), 2, 5, {"--samples", "1", "--attempts", "2"});
  ProcessResult local = RunKbrun(base, Environment());
  ASSERT_EQ(local.exit_code, 0) << local.output;

  fs::path results = server.dir() / "remote";
  auto argv = RemoteArgv(BatchArgv(results, server.base_url(), 2, 5, {"--samples", "1", "--attempts", "2"}), service);
  ProcessResult remote = RunKbrun(argv, Environment());
  ASSERT_EQ(remote.exit_code, 0) << remote.output << "\n" << service.Log();

  auto want = Verdicts(server.dir() / "local");
  EXPECT_EQ(Verdicts(results), want);
  EXPECT_EQ(want.at("2_AddTwice/result_1.json"), "incorrect");
  EXPECT_EQ(want.at("2_AddTwice/result_2.json"), "correct");
  EXPECT_EQ(want.at("4_Square/result_1.json"), "correct");
  EXPECT_EQ(want.at("3_Hopeless/result_1.json"), "no_code");

  json r = ReadJson(results / "2_AddTwice/result_2.json");
  EXPECT_EQ(r["eval"]["status"], "correct");
  EXPECT_EQ(r["remote"]["evaluator"], service.url());
  EXPECT_TRUE(r["remote"]["id"].is_string());
  EXPECT_GT(r["stages"]["remote"]["seconds"].get<double>(), 0);
  EXPECT_TRUE(r["stages"]["gpu"].is_null());
  EXPECT_TRUE(fs::exists(results / "2_AddTwice" / "remote_2.json"));
  EXPECT_EQ(service.Accepted(), 4u);  // 2_AddTwice x2, 4_Square, 5_Negate; no_code is not sent

  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "finished");
  EXPECT_EQ(summary["config"]["evaluator"], service.url());
  EXPECT_TRUE(summary["config"]["gpu_lanes"].empty());
  EXPECT_TRUE(
      Contains(ReadFile(results / "detailed_report.txt").value_or(""), "Evaluated remotely by " + service.url()));
  json report = ReadJson(results / "detailed_report.json");
  EXPECT_EQ(report["config"]["evaluator"], service.url());
  EXPECT_EQ(report["overall"]["stage_counts"]["remote"], 4);
  EXPECT_EQ(report["overall"]["stage_counts"]["gpu"], 0);
  EXPECT_TRUE(Contains(remote.output, "evaluated by " + service.url()));
  EXPECT_FALSE(Contains(remote.output, kToken));
  for (const auto& e : fs::recursive_directory_iterator(results)) {
    if (e.is_regular_file()) {
      EXPECT_FALSE(Contains(ReadFile(e.path()).value_or(""), kToken)) << e.path();
    }
  }
}

// A wrong token: exit 77 before any LLM call; flags the service cannot honour and a missing
// token are refused before anything else.
TEST(RemoteEvaluatorE2E, WrongTokenAndRefusedFlagsFailClearly) {
  FakeLlmServer server(Scenario().dump(), 300);
  Service service(server.dir() / "service", UnusedLoopbackPort());
  ASSERT_TRUE(service.up()) << service.Log();
  fs::path results = server.dir() / "results";
  auto argv = RemoteArgv(BatchArgv(results, server.base_url(), 4, 4, {"--samples", "1", "--attempts", "1"}), service);

  WriteFileAtomic(server.dir() / "wrong", "not-the-token\n");
  auto wrong = argv;
  *(std::find(wrong.begin(), wrong.end(), "--evaluator-token-file") + 1) = (server.dir() / "wrong").string();
  ProcessResult p = RunKbrun(wrong, Environment());
  EXPECT_EQ(p.exit_code, 77) << p.output;
  EXPECT_TRUE(Contains(p.output, "refused the token (HTTP 401")) << p.output;
  EXPECT_FALSE(Contains(p.output, "not-the-token")) << p.output;
  EXPECT_TRUE(server.Requests().empty());
  EXPECT_FALSE(fs::exists(results / "summary.json"));

  auto with_device = argv;
  with_device.insert(with_device.end(), {"--device", "cpu", "--allow-library-kernels"});
  p = RunKbrun(with_device, Environment());
  EXPECT_EQ(p.exit_code, 64) << p.output;
  EXPECT_TRUE(Contains(p.output, "--device, --allow-library-kernels cannot be honoured")) << p.output;

  auto no_token = argv;
  auto it = std::find(no_token.begin(), no_token.end(), "--evaluator-token-file");
  no_token.erase(it, it + 2);
  p = RunKbrun(no_token, Environment());
  EXPECT_EQ(p.exit_code, 78) << p.output;
  EXPECT_TRUE(Contains(p.output, "KBRUN_EVALUATOR_TOKEN")) << p.output;
  auto env = Environment();
  env["KBRUN_EVALUATOR_TOKEN"] = kToken;  // the same, from the environment: it runs
  p = RunKbrun(no_token, env);
  EXPECT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(ReadJson(results / "4_Square/result_1.json")["status"], "correct");
}

// The service is killed (-9) while it holds evaluations the batch submitted: the batch retries,
// then records them as evaluator_unavailable and stops (69) with their problems waiting. The
// service restarts (same port and state dir, which still holds them); the same batch command
// polls their saved ids again: no sample is submitted twice, no LLM call is made twice.
TEST(RemoteEvaluatorE2E, ServiceKilledMidBatchThenResumedWithoutResubmitting) {
  FakeLlmServer server(SlowScenario().dump(), 600);
  // One compile thread: the service evaluates one sample at a time, the others wait in its queue.
  Service service(server.dir() / "service", UnusedLoopbackPort(), 1);
  ASSERT_TRUE(service.up()) << service.Log();
  fs::path results = server.dir() / "results";
  auto argv = RemoteArgv(BatchArgv(results, server.base_url(), 4, 5, {"--samples", "2", "--attempts", "1"}), service,
                         {"--evaluator-retry-window", "2"});
  std::map<std::string, std::string> done_before_kill;
  {
    Background batch(argv, Environment(), server.dir() / "first.out");
    // Every sample submitted (its id saved), at least one finished.
    ASSERT_TRUE(WaitFor(
        [&] { return FilesNamed(results, "remote_").size() == 4 && !FilesNamed(results, "result_").empty(); }, 300))
        << ReadFile(server.dir() / "first.out").value_or("") << service.Log();
    service.Stop(SIGKILL);
    EXPECT_EQ(batch.Wait(120), 69) << ReadFile(server.dir() / "first.out").value_or("");
  }
  for (const auto& f : FilesNamed(results, "result_")) {
    if (f.extension() == ".json" && ReadJson(f).value("status", "") == "correct") {
      done_before_kill[f.string()] = ReadFile(f).value_or("");
    }
  }
  std::string first_out = ReadFile(server.dir() / "first.out").value_or("");
  EXPECT_TRUE(Contains(first_out, "evaluator_unavailable")) << first_out;
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "evaluator_unavailable") << summary.dump(2);
  ASSERT_LT(done_before_kill.size(), 4u) << "every sample finished before the kill: nothing left to test";

  service.Start(1);
  ASSERT_TRUE(service.up()) << service.Log();
  ProcessResult resumed = RunKbrun(argv, Environment());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output << service.Log();

  EXPECT_EQ(ReadJson(results / "summary.json")["state"], "finished");
  for (const auto& [path, text] : done_before_kill) {
    EXPECT_EQ(ReadFile(path).value_or(""), text) << path;  // finished samples untouched
  }
  auto verdicts = Verdicts(results);
  EXPECT_EQ(verdicts.size(), 4u);
  for (const auto& [name, status] : verdicts) EXPECT_EQ(status, "correct") << name;
  std::string log = ReadFile(results / "batch_run.log").value_or("");
  EXPECT_EQ(Count(log, "remote evaluation: submitted as"), 4) << log;  // one submission per sample
  EXPECT_EQ(Count(log, "poll again (submitted by an earlier run)"), static_cast<int>(4 - done_before_kill.size()))
      << log;
  EXPECT_EQ(service.Accepted(), 4u);
  EXPECT_EQ(server.Requests().size(), 4u);  // no answer asked for twice
}

}  // namespace
}  // namespace kbrun
