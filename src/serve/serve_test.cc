// End-to-end tests of `kbrun serve`: the real binary on 127.0.0.1, on the CPU, with the
// fixtures of tests/problems and tests/candidates, driven by cpp-httplib's client.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "batch/batch_test_util.h"
#include "util/fs.h"

namespace kbrun {
namespace {

using batch_test::Background;
using batch_test::UnusedLoopbackPort;
using batch_test::WaitFor;
using nlohmann::json;

const fs::path kData = KBRUN_TEST_DATA_DIR;
const std::string kToken = "serve-test-token-0123456789";

std::string Problem() { return ReadFileOrThrow(kData / "problems/1_ScaleAdd.py"); }
std::string Correct() { return ReadFileOrThrow(kData / "candidates/honest_torch_add.py"); }
std::string Wrong() { return ReadFileOrThrow(kData / "candidates/wrong.py"); }

class Serve : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-serve-test-");
    WriteFileAtomic(dir_ / "token", "  " + kToken + "\n");
  }
  void TearDown() override {
    if (server_) {
      server_->Signal(SIGTERM);  // a clean stop: its warm worker removes its own folder first
      server_->Wait(60);
    }
    server_.reset();
    if (HasFailure()) return;  // kept for a look
    for (int i = 0; i < 20; ++i) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      if (!ec) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a killed server's children, exiting
    }
  }

  // Starts `kbrun serve` on the state dir (dir_/state) and waits until it answers.
  void StartServer(std::vector<std::string> extra = {}, int compile_pool = 2) {
    server_.reset();
    port_ = UnusedLoopbackPort();
    std::vector<std::string> argv = {KBRUN_BINARY, "serve", "--listen", fmt::format("127.0.0.1:{}", port_),
                                     "--token-file", (dir_ / "token").string(), "--state-dir",
                                     (dir_ / "state").string(), "--device", "cpu", "--python", "/usr/bin/python3",
                                     "--correct-trials", "2", "--perf-trials", "3", "--warmup", "1", "--compile-pool",
                                     std::to_string(compile_pool), "--compile-cache", (dir_ / "cache").string(),
                                     // Plain PyTorch candidates: the service is under test, not the
                                     // library-kernel check.
                                     "--allow-library-kernels", "--target-speedup", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    log_ = dir_ / fmt::format("serve-{}.log", ++starts_);
    server_ = std::make_unique<Background>(argv, batch_test::Environment(false), log_);
    bool up = WaitFor(
        [&] {
          auto res = Client().Get("/metrics");
          return res && res->status == 200;
        },
        120);
    ASSERT_TRUE(up) << Log();
  }

  httplib::Client Client(const std::string& token = kToken) {
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(5);
    c.set_read_timeout(30);
    if (!token.empty()) c.set_bearer_token_auth(token);
    return c;
  }

  std::string Log() { return ReadFile(log_).value_or("(no log)"); }

  // POSTs an evaluation; returns its id (empty, with a test failure, when not 202).
  std::string Submit(const std::string& code, json options = json::object()) {
    json body = {{"problem", Problem()}, {"code", code}, {"options", options}};
    auto res = Client().Post("/v1/evaluations", body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return "";
    EXPECT_EQ(res->status, 202) << res->body;
    if (res->status != 202) return "";
    return json::parse(res->body).value("id", "");
  }

  json Get(const std::string& id) {
    auto res = Client().Get("/v1/evaluations/" + id);
    if (!res || res->status != 200) return nullptr;
    return json::parse(res->body);
  }

  // Polls until the evaluation is done; returns its answer (null on timeout).
  json WaitDone(const std::string& id, double timeout_s = 300) {
    json doc;
    WaitFor(
        [&] {
          doc = Get(id);
          return doc.is_object() && doc.value("state", "") == "done";
        },
        timeout_s);
    return doc.is_object() && doc.value("state", "") == "done" ? doc : json();
  }

  std::string Metrics() {
    auto res = Client().Get("/metrics");
    return res && res->status == 200 ? res->body : "";
  }

  // The value of one sample of the metrics text ("name{labels}"), -1 when absent.
  static double Sample(const std::string& metrics, const std::string& name) {
    for (const auto& line : SplitLines(metrics)) {
      if (StartsWith(line, name + " ")) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }

  fs::path dir_, log_;
  int port_ = 0, starts_ = 0;
  std::unique_ptr<Background> server_;
};

TEST_F(Serve, UsageErrorsExit64) {
  WriteFileAtomic(dir_ / "empty-token", " \n");
  for (const auto& [listen, token] :
       {std::pair{"127.0.0.1:1", dir_ / "empty-token"}, std::pair{"127.0.0.1:1", dir_ / "no-such-file"},
        std::pair{"127.0.0.1", dir_ / "token"}, std::pair{"127.0.0.1:99999", dir_ / "token"}}) {
    ProcessSpec spec;
    spec.argv = {KBRUN_BINARY,   "serve",        "--listen",    listen,
                 "--token-file", token.string(), "--state-dir", (dir_ / "state").string()};
    spec.env = batch_test::Environment(false);
    spec.timeout_s = 60;
    ProcessResult p = RunProcess(spec);
    EXPECT_EQ(p.exit_code, 64) << listen << " " << token << "\n" << p.output;
  }
  EXPECT_FALSE(fs::exists(dir_ / "state"));
}

TEST_F(Serve, RejectsBadTokensBadRequestsAndOverLimits) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--max-queued", "1", "--max-body-bytes", "100000"}));
  for (const std::string& token : {std::string(), std::string("wrong-token")}) {
    for (int i = 0; i < 3; ++i) {
      auto c = Client(token);
      auto res = i == 0   ? c.Get("/metrics")
                 : i == 1 ? c.Get("/v1/evaluations/0123456789abcdef")
                          : c.Post("/v1/evaluations", "{}", "application/json");
      ASSERT_TRUE(res);
      EXPECT_EQ(res->status, 401) << "token '" << token << "', request " << i;
      EXPECT_TRUE(json::parse(res->body).contains("error")) << res->body;
    }
  }
  auto post = [&](const std::string& body) { return Client().Post("/v1/evaluations", body, "application/json"); };
  auto bad_json = post("{\"problem\": ");
  ASSERT_TRUE(bad_json);
  EXPECT_EQ(bad_json->status, 400);
  EXPECT_NE(json::parse(bad_json->body).value("error", "").find("not valid JSON"), std::string::npos);
  auto missing = post(json{{"problem", Problem()}}.dump());
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 400);
  EXPECT_NE(missing->body.find("'code'"), std::string::npos) << missing->body;
  auto unknown = post(json{{"problem", Problem()}, {"code", Correct()}, {"options", {{"python", "/bin/sh"}}}}.dump());
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
  EXPECT_NE(unknown->body.find("unknown option 'python'"), std::string::npos) << unknown->body;
  auto big = post(json{{"problem", Problem()}, {"code", std::string(200000, '#')}}.dump());
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  EXPECT_TRUE(json::parse(big->body).contains("error")) << big->body;
  auto none = Client().Get("/v1/evaluations/0123456789abcdef");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 404);
  // None of those left anything behind; the limit of one pending evaluation answers 429.
  std::string id = Submit(Correct());
  ASSERT_FALSE(id.empty());
  auto second = post(json{{"problem", Problem()}, {"code", Correct()}}.dump());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 429) << second->body;
  size_t dirs = 0;
  for (const auto& e : fs::directory_iterator(dir_ / "state")) dirs += e.path().filename().string()[0] != '.';
  EXPECT_EQ(dirs, 1u);
}

TEST_F(Serve, EvaluatesCorrectAndWrongCandidatesAndCountsThem) {
  ASSERT_NO_FATAL_FAILURE(StartServer());
  std::string good = Submit(Correct(), {{"correct_trials", 2}, {"perf_trials", 3}, {"seed", 7}});
  std::string bad = Submit(Wrong());
  ASSERT_FALSE(good.empty());
  ASSERT_FALSE(bad.empty());
  for (const char* f : {"problem.py", "code.py", "request.json"}) {
    EXPECT_TRUE(fs::exists(dir_ / "state" / good / f)) << f;
  }
  json g = WaitDone(good), b = WaitDone(bad);
  ASSERT_TRUE(g.is_object()) << Log();
  ASSERT_TRUE(b.is_object()) << Log();
  EXPECT_EQ(g["result"].value("status", ""), "correct") << g.dump(2);
  EXPECT_EQ(g["result"].value("seed", json()), 7) << "the per-evaluation seed";
  EXPECT_TRUE(g.value("meets_target", false));
  EXPECT_EQ(b["result"].value("status", ""), "incorrect") << b.dump(2);
  EXPECT_TRUE(fs::exists(dir_ / "state" / good / "result.json"));
  // --run-ahead auto on a CPU lane: off, no run gate.
  EXPECT_TRUE(g["result"]["stages"]["run_waited_for_lane_s"].is_null()) << g["result"]["stages"].dump();

  std::string m = Metrics();
  EXPECT_EQ(Sample(m, "kbrun_serve_evaluations_total{status=\"correct\"}"), 1) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_evaluations_total{status=\"incorrect\"}"), 1) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_evaluations_total{status=\"compile_error\"}"), 0) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_accepted_total"), 2) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_queue_length"), 0) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_running"), 0) << m;
  EXPECT_GT(Sample(m, "kbrun_serve_lane_busy_seconds_total{lane=\"0\",gpu=\"0\"}"), 0) << m;
  EXPECT_NE(m.find("# TYPE kbrun_serve_evaluations_total counter"), std::string::npos);
  // GPU-lane time per evaluation: a histogram of the two runs' lane seconds, which add up to the
  // lane's busy time, and evaluations per lane-hour = 3600 / their mean.
  EXPECT_NE(m.find("# TYPE kbrun_serve_lane_seconds histogram"), std::string::npos) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_lane_seconds_count"), 2) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_lane_seconds_bucket{le=\"+Inf\"}"), 2) << m;
  double lane_s = Sample(m, "kbrun_serve_lane_seconds_sum");
  EXPECT_GT(lane_s, 0) << m;
  EXPECT_NEAR(lane_s, Sample(m, "kbrun_serve_lane_busy_seconds_total{lane=\"0\",gpu=\"0\"}"), 0.002) << m;
  double below = 0;
  for (const char* le : {"0.25", "0.5", "1", "1.5", "2", "3", "5", "10", "30", "60", "120", "300", "+Inf"}) {
    double n = Sample(m, fmt::format("kbrun_serve_lane_seconds_bucket{{le=\"{}\"}}", le));
    EXPECT_GE(n, below) << le << "\n" << m;  // cumulative
    below = n;
  }
  double per_hour = Sample(m, "kbrun_serve_evaluations_per_gpu_hour");
  EXPECT_NEAR(per_hour, 2 * 3600.0 / lane_s, 0.01 * per_hour) << m;
  EXPECT_NE(m.find("# TYPE kbrun_serve_evaluations_per_gpu_hour gauge"), std::string::npos) << m;
  // One log line per accepted and per finished evaluation.
  std::string log = Log();
  EXPECT_NE(log.find("accepted " + good), std::string::npos) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex("done " + good + " correct in [0-9.]+ s"))) << log;
  // SIGTERM stops it cleanly.
  server_->Signal(SIGTERM);
  EXPECT_EQ(server_->Wait(60), 0) << Log();
  server_.reset();
}

// With --run-ahead on, as on a GPU lane: each evaluation's run went through a run gate.
TEST_F(Serve, EightConcurrentClientsAllGetTheirResults) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--run-ahead", "on"}));
  std::vector<std::string> statuses(8);
  std::vector<json> stages(8);
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      std::string id = Submit(i % 2 ? Wrong() : Correct());
      if (id.empty()) return;
      json doc = WaitDone(id);
      if (!doc.is_object()) return;
      statuses[i] = doc["result"].value("status", "");
      stages[i] = doc["result"].value("stages", json());
    });
  }
  for (auto& t : clients) t.join();
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(statuses[i], i % 2 ? "incorrect" : "correct") << i << "\n" << Log();
    EXPECT_TRUE(stages[i].value("run_waited_for_lane_s", json()).is_number()) << i << " " << stages[i].dump();
  }
  std::string m = Metrics();
  EXPECT_EQ(Sample(m, "kbrun_serve_evaluations_total{status=\"correct\"}"), 4) << m;
  EXPECT_EQ(Sample(m, "kbrun_serve_evaluations_total{status=\"incorrect\"}"), 4) << m;
}

TEST_F(Serve, KillNineThenRestartLosesNoAcknowledgedEvaluation) {
  ASSERT_NO_FATAL_FAILURE(StartServer({}, 1));
  std::string first = Submit(Correct());
  ASSERT_TRUE(WaitDone(first).is_object()) << Log();
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(Submit(i % 2 ? Wrong() : Correct()));
  for (const auto& id : ids) ASSERT_FALSE(id.empty());
  json before = Get(ids.back());
  EXPECT_EQ(before.value("state", ""), "queued") << before.dump();
  server_->Signal(SIGKILL);
  EXPECT_EQ(server_->Wait(10), 128 + SIGKILL);

  ASSERT_NO_FATAL_FAILURE(StartServer());
  EXPECT_NE(Log().find("1 done, 4 queued again"), std::string::npos) << Log();
  json f = Get(first);
  ASSERT_TRUE(f.is_object());
  EXPECT_EQ(f.value("state", ""), "done");
  EXPECT_EQ(f["result"].value("status", ""), "correct");
  for (size_t i = 0; i < ids.size(); ++i) {
    json doc = WaitDone(ids[i]);
    ASSERT_TRUE(doc.is_object()) << ids[i] << "\n" << Log();
    EXPECT_EQ(doc["result"].value("status", ""), i % 2 ? "incorrect" : "correct") << doc.dump(2);
  }
  // Reloaded evaluations count as finished by this process; the one done before does not.
  EXPECT_EQ(Sample(Metrics(), "kbrun_serve_evaluations_total{status=\"correct\"}"), 2);
}

// The service builds the headers the candidates' builds share when it starts; the first
// evaluation's build then uses the warm-up's precompiled header instead of building one.
TEST_F(Serve, BuildWarmupAtStartBuildsTheSharedHeaders) {
  ASSERT_NO_FATAL_FAILURE(StartServer({"--build-warmup", "on"}));
  fs::path record = dir_ / "state" / "build_warmup.json";
  ASSERT_TRUE(WaitFor([&] { return fs::exists(record); }, 600)) << Log();
  json warmup = batch_test::ReadJson(record);
  EXPECT_EQ(warmup["compiles"], 2) << warmup.dump(2);
  EXPECT_EQ(warmup["failed"], 0) << warmup.dump(2);
  EXPECT_GE(warmup["headers_built"].get<int>(), 1) << warmup.dump(2);
  EXPECT_NE(Log().find("kbrun serve: build warm-up: 2 compiles in"), std::string::npos) << Log();

  // A C++ extension at torch's flags, as the warm-up's (the fixture's own -O2 is another header).
  std::string code = ReadFileOrThrow(kData / "candidates/correct_cpp.py");
  const std::string o2 = "extra_cflags=[\"-O2\"], ";
  size_t flags = code.find(o2);
  ASSERT_NE(flags, std::string::npos);
  code.erase(flags, o2.size());
  json doc = WaitDone(Submit(code));
  ASSERT_TRUE(doc.is_object()) << Log();
  EXPECT_EQ(doc["result"].value("status", ""), "correct") << doc.dump(2);
  json build = doc["result"]["build"]["extensions"];
  ASSERT_EQ(build.size(), 1u) << doc["result"]["build"].dump(2);
  EXPECT_EQ(build[0]["cache"], "miss");
  EXPECT_EQ(build[0]["pch"], "used") << build.dump(2);
}

}  // namespace
}  // namespace kbrun
