// End-to-end tests of a batch against damaged state, careless users and LLM outages
// (the real kbrun binary, real files, the fake LLM server or a closed port).
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <set>

#include "batch/batch_test_util.h"

namespace kbrun {
namespace {

using namespace batch_test;
using nlohmann::json;
using test_util::FakeLlmServer;

// Every file under `dir` with its size and modification time.
std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> Snapshot(const fs::path& dir) {
  std::map<std::string, std::pair<uintmax_t, fs::file_time_type>> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    uintmax_t size = e.is_regular_file() ? e.file_size() : 0;
    out[fs::relative(e.path(), dir).string()] = {size, e.last_write_time()};
  }
  return out;
}

// (attempt, sample) of every result file of a problem: no two files may claim the same pair.
std::vector<std::pair<int, int>> AttemptSamplePairs(const fs::path& problem_dir) {
  std::vector<std::pair<int, int>> out;
  for (const auto& f : FilesNamed(problem_dir, "result_")) {
    json r = ReadJson(f);
    out.push_back({r["attempt"].get<int>(), r["sample"].get<int>()});
  }
  std::sort(out.begin(), out.end());
  return out;
}

// A replay folder whose answers hold no code: the batch never starts the evaluator.
fs::path NoCodeReplay(const fs::path& dir) {
  WriteFileAtomic(dir / "replay/3_Hopeless.txt", "I am sorry, but I cannot help with that.");
  return dir / "replay";
}

// Item 1: an exception while evaluating one sample is that sample's internal_error; the batch
// and the other samples go on, and a rerun that evaluates the saved answer again does not crash.
TEST(BatchRobustness, InternalErrorOfOneSampleIsRecordedAndTheBatchGoesOn) {
  json scenario = json::array({Rule("MARKER_FOUR", Response("square")), Rule("MARKER_FIVE", Response("negate"))});
  FakeLlmServer server(scenario.dump(), 300);
  fs::path results = server.dir() / "results";
  auto env = Environment();
  env["KBRUN_TEST_THROW_IN_EVAL"] = "4_Square#1";  // the test hook: sample 1 of 4_Square throws
  auto argv = BatchArgv(results, server.base_url(), 4, 5, {"--samples", "2", "--attempts", "1"});
  ProcessResult p = RunKbrun(argv, env);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  json bad = ReadJson(results / "4_Square/result_1.json");
  EXPECT_EQ(bad["status"], "internal_error") << bad.dump(2);
  EXPECT_TRUE(Contains(bad["error"]["message"].get<std::string>(), "injected")) << bad.dump(2);
  EXPECT_EQ(ReadJson(results / "4_Square/result_2.json")["status"], "correct");
  EXPECT_EQ(ReadJson(results / "5_Negate/result_1.json")["status"], "correct");
  EXPECT_EQ(ReadJson(results / "5_Negate/result_2.json")["status"], "correct");
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "finished");
  EXPECT_EQ(summary["totals"]["by_status"]["internal_error"], 1);

  // The crash the hook stands for left a saved answer and no result: a rerun evaluates the
  // saved answer again, meets the same exception, records it, and finishes.
  fs::remove(results / "4_Square/result_1.json");
  size_t requests_before = server.Requests().size();
  p = RunKbrun(argv, env);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(server.Requests().size(), requests_before);  // no new LLM call
  EXPECT_EQ(ReadJson(results / "4_Square/result_1.json")["status"], "internal_error");
  EXPECT_EQ(ReadJson(results / "summary.json")["state"], "finished");
}

// Item 1, the tester's case: a failing candidate that prints bytes that are not UTF-8. The
// batch finishes; that sample is recorded (as a runtime error, or at worst an internal error)
// in a result file that is valid JSON; its sibling sample is fine.
TEST(BatchRobustness, CandidatePrintingInvalidUtf8DoesNotStopTheBatch) {
  json scenario = json::array({Rule("MARKER_FOUR", Response("square_prints_invalid_utf8"), {{"times", 1}}),
                               Rule("MARKER_FOUR", Response("square"))});
  FakeLlmServer server(scenario.dump(), 300);
  fs::path results = server.dir() / "results";
  auto argv = BatchArgv(results, server.base_url(), 4, 4, {"--samples", "2", "--attempts", "1"});
  ProcessResult p = RunKbrun(argv, Environment());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  std::multiset<std::string> statuses;
  for (int n = 1; n <= 2; ++n) {
    json r = ReadJson(results / ("4_Square/result_" + std::to_string(n) + ".json"));
    ASSERT_TRUE(r.is_object()) << n;
    statuses.insert(r["status"].get<std::string>());
  }
  EXPECT_EQ(statuses.count("correct"), 1u);
  EXPECT_EQ(statuses.count("runtime_error") + statuses.count("internal_error"), 1u);
  EXPECT_EQ(ReadJson(results / "summary.json")["state"], "finished");
  EXPECT_TRUE(ReadJson(results / "detailed_report.json").is_object());
}

// Item 7: a resume whose settings change the plan is refused, naming each difference, and
// touches nothing; with --reconfigure it goes on and no two results claim one attempt and sample.
TEST(BatchRobustness, ChangedSettingsAreRefusedUnlessReconfigured) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-reconf-");
  fs::path replay = NoCodeReplay(dir), results = dir / "results";
  ProcessResult p =
      RunKbrun(ReplayArgv(results, replay, 3, 3, {"--samples", "1", "--attempts", "2"}), Environment(false));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  ASSERT_EQ(AttemptSamplePairs(results / "3_Hopeless"), (std::vector<std::pair<int, int>>{{1, 1}, {2, 1}}));

  auto before = Snapshot(results);
  auto changed = ReplayArgv(results, replay, 3, 3, {"--samples", "2", "--attempts", "2"});
  *(std::find(changed.begin(), changed.end(), "--target-speedup") + 1) = "1.5";  // was 0
  p = RunKbrun(changed, Environment(false));
  EXPECT_EQ(p.exit_code, 64) << p.output;
  EXPECT_TRUE(Contains(p.output, "samples: 1 -> 2")) << p.output;
  EXPECT_TRUE(Contains(p.output, "target_speedup: 0.0 -> 1.5")) << p.output;
  EXPECT_TRUE(Contains(p.output, "--reconfigure")) << p.output;
  EXPECT_EQ(Snapshot(results), before) << "a refused batch changed the folder";

  changed.push_back("--reconfigure");
  p = RunKbrun(changed, Environment(false));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  // The earlier samples count for their attempts; each attempt gets its second sample.
  EXPECT_EQ(AttemptSamplePairs(results / "3_Hopeless"),
            (std::vector<std::pair<int, int>>{{1, 1}, {1, 2}, {2, 1}, {2, 2}}));
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["config"]["samples"], 2);
  EXPECT_EQ(summary["config"]["target_speedup"], 1.5);
  EXPECT_TRUE(Contains(*ReadFile(results / "batch_run.log"), "samples: 1 -> 2"));

  // The new settings are the folder's settings now: the same command resumes without a word.
  changed.pop_back();
  p = RunKbrun(changed, Environment(false));
  EXPECT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(FilesNamed(results / "3_Hopeless", "result_").size(), 4u);
  fs::remove_all(dir);
}

// Item 8: a summary.json that cannot be read is kept aside, the rebuild is announced, and the
// figures it lost are unknown, not nonsense.
TEST(BatchRobustness, DamagedSummaryIsKeptAsideAndLostFiguresAreUnknown) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-damaged-");
  fs::path replay = NoCodeReplay(dir), results = dir / "results";
  auto argv = ReplayArgv(results, replay, 3, 3, {"--samples", "1", "--attempts", "2", "--replay-latency", "0.3"});
  ProcessResult p = RunKbrun(argv, Environment(false));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  std::string whole = *ReadFile(results / "summary.json");
  WriteFileAtomic(results / "summary.json", whole.substr(0, whole.size() / 2));  // truncated

  p = RunKbrun(argv, Environment(false));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_TRUE(Contains(p.output, "summary.json")) << p.output;
  EXPECT_TRUE(Contains(p.output, "rebuilt")) << p.output;
  auto damaged = FilesNamed(results, "summary.json.damaged-");
  ASSERT_EQ(damaged.size(), 1u);
  EXPECT_EQ(ReadFile(damaged[0]), whole.substr(0, whole.size() / 2));
  EXPECT_TRUE(Contains(*ReadFile(results / "batch_run.log"), "rebuilt")) << *ReadFile(results / "batch_run.log");

  json report = ReadJson(results / "detailed_report.json");
  EXPECT_TRUE(report["overall"]["wall_s"].is_null()) << report["overall"].dump(2);
  EXPECT_TRUE(report["overall"]["gpu_busy_fraction"].is_null()) << report["overall"].dump(2);
  EXPECT_TRUE(report["overall"]["stage_sum_over_wall"].is_null()) << report["overall"].dump(2);
  EXPECT_EQ(report["overall"]["samples"], 2);  // the results themselves are all there
  std::string text = *ReadFile(results / "detailed_report.txt");
  EXPECT_TRUE(Contains(text, "Wall time      unknown")) << text;
  EXPECT_FALSE(Contains(text, "Wall time      0.0 s")) << text;
  fs::remove_all(dir);
}

// Item 9: a batch refused on a busy folder writes nothing into it.
TEST(BatchRobustness, BatchRefusedOnABusyFolderWritesNothing) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-busy-");
  fs::path replay = NoCodeReplay(dir), results = dir / "results";
  auto argv = ReplayArgv(results, replay, 3, 3, {"--samples", "1", "--attempts", "1"});
  ProcessResult p = RunKbrun(argv, Environment(false));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  // This test process plays the running batch: it holds the folder's lock.
  int fd = open((results / ".lock").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // mtimes would differ from here on
  auto before = Snapshot(results);
  p = RunKbrun(argv, Environment(false));
  close(fd);
  EXPECT_EQ(p.exit_code, 78) << p.output;
  EXPECT_TRUE(Contains(p.output, "another kbrun batch")) << p.output;
  EXPECT_EQ(Snapshot(results), before) << "the refused batch wrote into the busy folder";
  fs::remove_all(dir);
}

// Item 10: a dead endpoint pauses the LLM stage, then stops the batch as llm_unavailable (69)
// without using up an attempt; a rerun with a live endpoint resumes the problem at attempt 1.
TEST(BatchRobustness, DeadLlmEndpointStopsAsUnavailableWithoutUsingAttempts) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-outage-");
  fs::path results = dir / "results";
  std::string dead_url = "http://127.0.0.1:" + std::to_string(UnusedLoopbackPort()) + "/v1";
  auto extra = std::vector<std::string>{"--samples",          "2", "--attempts",           "1",
                                        "--llm-outage-after", "3", "--llm-outage-timeout", "3"};
  ProcessResult p = RunKbrun(BatchArgv(results, dead_url, 3, 3, extra), Environment());
  EXPECT_EQ(p.exit_code, 69) << p.output;
  EXPECT_LT(p.wall_s, 60.0);
  EXPECT_TRUE(Contains(p.output, "unreachable")) << p.output;
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "llm_unavailable") << summary.dump(2);
  ASSERT_TRUE(summary["llm_outage"].is_object()) << summary.dump(2);
  EXPECT_GE(summary["llm_outage"]["consecutive_failures"].get<int>(), 3);
  EXPECT_EQ(summary["problems"][0]["phase"], "queued");
  EXPECT_TRUE(FilesNamed(results, "result_").empty()) << "a connection failure used up an attempt";
  std::string log = *ReadFile(results / "batch_run.log");
  EXPECT_TRUE(Contains(log, "LLM calls paused")) << log;
  EXPECT_TRUE(Contains(log, "llm_unavailable")) << log;

  // The endpoint is back (another port: the settings that matter for the plan are unchanged).
  FakeLlmServer server(json::array({Rule("MARKER_THREE", "I am sorry, but I cannot help with that.")}).dump(), 120);
  p = RunKbrun(BatchArgv(results, server.base_url(), 3, 3, extra), Environment());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(server.Requests().size(), 2u);
  EXPECT_EQ(AttemptSamplePairs(results / "3_Hopeless"), (std::vector<std::pair<int, int>>{{1, 1}, {1, 2}}));
  EXPECT_EQ(ReadJson(results / "summary.json")["state"], "finished");
  fs::remove_all(dir);
}

// Item 11: monitor and report on a missing folder, a missing or a garbage summary.json.
TEST(BatchRobustness, MonitorAndReportSayWhatIsWrongWithTheFolder) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-monitor-errors-");
  auto run = [](std::vector<std::string> args) {
    args.insert(args.begin(), KBRUN_BINARY);
    ProcessSpec spec;
    spec.argv = args;
    spec.timeout_s = 30;
    return RunProcess(spec);
  };
  std::string missing = (dir / "nowhere").string();
  ProcessResult p = run({"monitor", "--once", missing});
  EXPECT_EQ(p.exit_code, 66) << p.output;
  EXPECT_TRUE(Contains(p.output, "no such results folder")) << p.output;
  p = run({"report", missing});
  EXPECT_EQ(p.exit_code, 66) << p.output;

  fs::create_directories(dir / "empty");
  p = run({"monitor", "--once", (dir / "empty").string()});
  EXPECT_EQ(p.exit_code, 66) << p.output;
  EXPECT_TRUE(Contains(p.output, "no summary.json")) << p.output;

  fs::path garbage = dir / "garbage";
  WriteFileAtomic(garbage / "summary.json", "{\"state\": \"running\", \"totals\": {\"prob");
  for (bool once : {true, false}) {
    std::vector<std::string> args = {"monitor", garbage.string(), "--interval", "0.2"};
    if (once) args.push_back("--once");
    p = run(args);
    EXPECT_EQ(p.exit_code, 65) << once << p.output;
    EXPECT_TRUE(Contains(p.output, "not valid JSON")) << p.output;
    EXPECT_LT(p.wall_s, 20.0);
  }
  p = run({"report", garbage.string()});
  EXPECT_EQ(p.exit_code, 65) << p.output;
  EXPECT_TRUE(Contains(p.output, "not valid JSON")) << p.output;
  EXPECT_FALSE(Contains(p.output, "holds no summary.json")) << p.output;
  EXPECT_FALSE(fs::exists(garbage / "detailed_report.txt"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun
