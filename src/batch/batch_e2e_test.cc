// End-to-end batch tests on the CPU: the real kbrun binary, the real evaluator
// (Debian's torch), and a real local HTTP server playing the LLM
// (tests/fake_llm_server.py), whose request log tells what kbrun asked.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <thread>

#include "batch/batch_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using namespace batch_test;
using nlohmann::json;
using test_util::FakeLlmServer;

// Three problems at once: one solved at attempt 1 by a compiled C++ extension, one solved at
// attempt 2 only because the reflection prompt carried the mismatch figures, one never solved.
TEST(BatchE2E, SolvedFirstTimeAfterReflectionAndNever) {
  json scenario = json::array({
      Rule("MARKER_ONE", Response("scale_shift_cpp")),
      // Only a reflection prompt holds the evaluator's mismatch figures.
      Rule("max abs diff", Response("add_twice_fixed")),
      Rule("MARKER_TWO", Response("add_twice_wrong")),
      Rule("MARKER_THREE", "I am sorry, but I cannot help with that."),
  });
  FakeLlmServer server(scenario.dump(), 400);
  fs::path results = server.dir() / "results";
  // No shared compile cache: problem 1 must really compile for the pipelining check below.
  ProcessResult p =
      RunKbrun(BatchArgv(results, server.base_url(), 1, 3, {"--samples", "1", "--attempts", "2", "--no-compile-cache"}),
               Environment());
  ASSERT_EQ(p.exit_code, 0) << p.output;

  // 1: one request, a real build, correct.
  auto one = RequestsFor(server, "MARKER_ONE");
  EXPECT_EQ(one.size(), 1u);
  json r1 = ReadJson(results / "1_ScaleShiftCpp/result_1.json");
  EXPECT_EQ(r1["status"], "correct") << r1.dump(2);
  EXPECT_EQ(r1["attempt"], 1);
  EXPECT_EQ(r1["sample"], 1);
  // load_inline went through kbrun's build step and really compiled.
  json build = r1["eval"]["build"]["extensions"];
  ASSERT_EQ(build.size(), 1u) << r1.dump(2);
  EXPECT_EQ(build[0]["cache"], "miss");
  EXPECT_GT(r1["eval"]["stages"]["compile_s"].get<double>(), 1.0);
  EXPECT_GT(r1["llm"]["completion_tokens"].get<int>(), 0);
  for (const char* stage : {"llm", "compile", "gpu"}) {
    EXPECT_GT(r1["stages"][stage]["end"].get<double>(), r1["stages"][stage]["start"].get<double>()) << stage;
  }
  EXPECT_EQ(ReadFile(results / "1_ScaleShiftCpp/best_code.py"), ReadFile(results / "1_ScaleShiftCpp/code_1.py"));
  EXPECT_TRUE(fs::exists(results / "1_ScaleShiftCpp/response_1.txt"));

  // 2: the second request is a reflection carrying the error, answered by the rule that needs it.
  auto two = RequestsFor(server, "MARKER_TWO");
  ASSERT_EQ(two.size(), 2u);
  EXPECT_FALSE(Contains(two[0]["prompt"].get<std::string>(), "max abs diff"));
  EXPECT_TRUE(Contains(two[1]["prompt"].get<std::string>(), "max abs diff"));
  EXPECT_TRUE(Contains(two[1]["prompt"].get<std::string>(), "return x + y"));  // the previous code
  EXPECT_EQ(two[1]["rule"], 1);
  EXPECT_EQ(ReadJson(results / "2_AddTwice/result_1.json")["status"], "incorrect");
  json r2 = ReadJson(results / "2_AddTwice/result_2.json");
  EXPECT_EQ(r2["status"], "correct");
  EXPECT_EQ(r2["attempt"], 2);
  EXPECT_EQ(ReadJson(results / "2_AddTwice/best_result.json")["index"], 2);
  EXPECT_EQ(ReadFile(results / "2_AddTwice/prompt_2.txt"), two[1]["prompt"].get<std::string>());

  // 3: no code twice; the second prompt says so; never solved.
  auto three = RequestsFor(server, "MARKER_THREE");
  ASSERT_EQ(three.size(), 2u);
  EXPECT_TRUE(Contains(three[1]["prompt"].get<std::string>(), "No usable code"));
  EXPECT_EQ(ReadJson(results / "3_Hopeless/result_2.json")["status"], "no_code");
  EXPECT_FALSE(fs::exists(results / "3_Hopeless/code_1.py"));

  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "finished");
  EXPECT_EQ(summary["totals"]["solved"], 2);
  EXPECT_EQ(summary["totals"]["unsolved"], 1);
  EXPECT_EQ(summary["problems"][2]["phase"], "unsolved");

  // The report, written at the end of the batch.
  json report = ReadJson(results / "detailed_report.json");
  EXPECT_EQ(report["overall"]["problems"], 3);
  EXPECT_EQ(report["overall"]["correct"], 2);
  EXPECT_NEAR(report["overall"]["fast_p"]["fast_0.0"].get<double>(), 2.0 / 3, 1e-12);
  EXPECT_EQ(report["overall"]["samples"], 5);
  EXPECT_TRUE(fs::exists(results / "detailed_report.txt"));
  // ...and the HTML page beside it: every problem's drill-down and the timeline's 11 spans.
  std::string html = ReadFile(results / "detailed_report.html").value_or("");
  for (const char* id : {"problem-1_ScaleShiftCpp", "problem-2_AddTwice", "problem-3_Hopeless"}) {
    EXPECT_TRUE(Contains(html, std::string("<details class=\"problem\" id=\"") + id + "\"")) << id;
  }
  size_t spans = 0;
  for (size_t at = 0; (at = html.find("<rect class=\"span ", at)) != std::string::npos; ++at) ++spans;
  EXPECT_EQ(spans, 11u);
  // Every stage that ran is on the timeline: 5 LLM calls, 3 compiles (the no-code answers skip
  // the evaluator), 3 runs.
  std::map<std::string, int> stages;
  for (const auto& line : SplitLines(*ReadFile(results / "timeline.jsonl"))) ++stages[json::parse(line)["stage"]];
  EXPECT_EQ(stages["llm"], 5);
  EXPECT_EQ(stages["compile"], 3);
  EXPECT_EQ(stages["gpu"], 3);
  // Pipelining: problem 2's first answer was evaluated while problem 1 was still compiling.
  EXPECT_LT(ReadJson(results / "2_AddTwice/result_1.json")["stages"]["gpu"]["end"].get<double>(),
            r1["stages"]["compile"]["end"].get<double>());
}

// kill -9 once the first result appears, then the same command again: nothing is generated twice.
TEST(BatchE2E, ResumeAfterKillGeneratesNothingTwice) {
  json scenario = json::array({
      Rule("MARKER_FOUR", Response("square")),
      // Problem 5's first answers never come in time: they are in flight when the batch is killed,
      // however slow this machine's first compile is (CI's 2 cores took over 30 s once).
      Rule("MARKER_FIVE", Response("negate"), {{"times", 2}, {"delay_s", 3600}}),
      Rule("MARKER_FIVE", Response("negate")),
  });
  FakeLlmServer server(scenario.dump(), 400);
  fs::path results = server.dir() / "results";
  auto argv = BatchArgv(results, server.base_url(), 4, 5, {"--samples", "2", "--attempts", "1"});
  {
    Background first(argv, Environment(), server.dir() / "first.out");
    ASSERT_TRUE(WaitFor([&] { return !FilesNamed(results / "4_Square", "result_").empty(); }, 300))
        << ReadFile(server.dir() / "first.out").value_or("");
    first.Signal(SIGKILL);
    EXPECT_EQ(first.Wait(10), 128 + SIGKILL);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  size_t requests_before = server.Requests().size();
  std::map<fs::path, std::string> saved;  // responses on disk when the batch died
  for (const auto& f : FilesNamed(results, "response_")) {
    if (f.extension() == ".txt") saved[f] = *ReadFile(f);
  }
  json at_kill = ReadJson(results / "summary.json");
  EXPECT_EQ(at_kill["state"], "running");  // it had no chance to say otherwise
  int recorded_at_kill = 0;                // a result file can be on disk before the summary records it
  for (const auto& problem : at_kill["problems"]) recorded_at_kill += problem.value("samples_done", 0);
  EXPECT_LE(saved.size(), 2u);  // problem 5's answers were still on their way
  size_t results_at_kill = FilesNamed(results, "result_").size();

  ProcessResult p = RunKbrun(argv, Environment());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  size_t requests_after = server.Requests().size() - requests_before;
  EXPECT_EQ(requests_after, 4 - saved.size()) << "resumed run asked again for an answer it had";
  for (const auto& [path, content] : saved) EXPECT_EQ(ReadFile(path), content) << path;
  for (const char* problem : {"4_Square", "5_Negate"}) {
    for (int n = 1; n <= 2; ++n) {
      json r = ReadJson(results / problem / ("result_" + std::to_string(n) + ".json"));
      EXPECT_EQ(r["status"], "correct") << problem << " " << n;
    }
  }
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "finished");
  EXPECT_EQ(summary["sessions"].size(), 2u);
  EXPECT_TRUE(FilesNamed(results, ".tmp-").empty());
  std::string log = *ReadFile(results / "batch_run.log");
  if (recorded_at_kill > 0) {
    EXPECT_TRUE(Contains(log, "resuming with")) << log;
  }
  if (results_at_kill < saved.size()) {
    // An answer saved but not evaluated was evaluated from disk, with its tokens kept.
    EXPECT_TRUE(Contains(log, "response saved by an earlier run")) << log;
    json r = ReadJson(results / "4_Square/result_2.json");
    json r1 = ReadJson(results / "4_Square/result_1.json");
    json resumed = r["llm"].value("resumed_from_disk", false) ? r : r1;
    EXPECT_TRUE(resumed["llm"].value("resumed_from_disk", false));
    EXPECT_GT(resumed["llm"].value("completion_tokens", 0), 0);
  }
}

// Waits until the batch has an LLM call in flight, sends Ctrl-C, and expects exit 130
// within 15 s: in-flight work is cut short, not waited for.
void InterruptWhileLlmInFlight(Background& run, const fs::path& results, const fs::path& output) {
  ASSERT_TRUE(WaitFor(
      [&] {
        json s = ReadJson(results / "summary.json");
        return s.is_object() && s["totals"]["in_flight"].value("llm", 0) == 1;
      },
      60));
  auto t0 = std::chrono::steady_clock::now();
  run.Signal(SIGINT);
  EXPECT_EQ(run.Wait(30), 130) << ReadFile(output).value_or("");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 15.0);
}

// Ctrl-C: in-flight work stops, state is saved, exit 130; nothing half-done is recorded.
TEST(BatchE2E, InterruptSavesStateAndExits130) {
  json scenario = json::array({Rule("MARKER_FOUR", Response("square"), {{"delay_s", 60}})});
  FakeLlmServer server(scenario.dump(), 120);
  fs::path results = server.dir() / "results";
  Background run(BatchArgv(results, server.base_url(), 4, 4, {"--samples", "1"}), Environment(),
                 server.dir() / "run.out");
  ASSERT_NO_FATAL_FAILURE(InterruptWhileLlmInFlight(run, results, server.dir() / "run.out"));
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "interrupted");
  EXPECT_TRUE(fs::exists(results / "4_Square/prompt_1.txt"));
  EXPECT_FALSE(fs::exists(results / "4_Square/response_1.txt"));
  EXPECT_FALSE(fs::exists(results / "4_Square/result_1.json"));
}

// Each problem's [first stage start, last stage end] from timeline.jsonl, and the compiles' CPU seconds.
struct ProblemSpans {
  std::map<std::string, std::pair<double, double>> spans;
  std::vector<double> compile_cpu_s;
};

ProblemSpans ReadTimeline(const fs::path& results) {
  ProblemSpans out;
  for (const auto& line : SplitLines(ReadFile(results / "timeline.jsonl").value_or(""))) {
    json e = json::parse(line);
    std::string name = e["problem"];
    double start = e["start"], end = e["end"];
    auto [it, fresh] = out.spans.try_emplace(name, start, end);
    if (!fresh) it->second = {std::min(it->second.first, start), std::max(it->second.second, end)};
    if (e["stage"] == "compile") out.compile_cpu_s.push_back(e.value("cpu_s", -1.0));
  }
  return out;
}

// --schedule by-problem (the seed runner's order): a problem starts only when the one before it
// finished, reflection attempts included; a problem's samples still run side by side. With
// --run-ahead on, as on a GPU lane.
TEST(BatchE2E, ByProblemScheduleRunsProblemsOneAfterAnother) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-byproblem-");
  fs::path replay = dir / "replay", results = dir / "results";
  // 2: wrong at attempt 1, fixed at attempt 2; 3: never any code (no evaluation); 4, 5: correct.
  WriteFileAtomic(replay / "2_AddTwice/attempt1.txt", Response("add_twice_wrong"));
  WriteFileAtomic(replay / "2_AddTwice.txt", Response("add_twice_fixed"));
  WriteFileAtomic(replay / "3_Hopeless.txt", "I am sorry, but I cannot help with that.");
  WriteFileAtomic(replay / "4_Square.txt", Response("square"));
  WriteFileAtomic(replay / "5_Negate.txt", Response("negate"));
  ProcessResult p = RunKbrun(ReplayArgv(results, replay, 2, 5,
                                        {"--samples", "2", "--attempts", "2", "--schedule", "by-problem",
                                         "--replay-latency", "0.5", "--run-ahead", "on"}),
                             Environment(false));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["totals"]["solved"], 3) << summary.dump(2);
  EXPECT_EQ(summary["config"]["schedule"], "by-problem");
  EXPECT_EQ(ReadJson(results / "2_AddTwice/best_result.json")["attempt"], 2);

  ProblemSpans t = ReadTimeline(results);
  ASSERT_EQ(t.spans.size(), 4u);
  std::vector<std::pair<double, double>> order;  // by start
  for (const auto& [name, span] : t.spans) order.push_back(span);
  std::sort(order.begin(), order.end());
  for (size_t i = 1; i < order.size(); ++i) {
    EXPECT_GE(order[i].first, order[i - 1].second) << "problems overlap at " << i;
  }
  // In problem order, and with the simulated latency on every call.
  EXPECT_EQ(order.front(), t.spans["2_AddTwice"]);
  EXPECT_EQ(order.back(), t.spans["5_Negate"]);
  EXPECT_GE(ReadJson(results / "4_Square/result_1.json")["llm"]["latency_s"].get<double>(), 0.5);
  // Samples of one attempt in parallel: both of 4_Square's LLM calls were in flight together.
  json s1 = ReadJson(results / "4_Square/result_1.json")["stages"]["llm"];
  json s2 = ReadJson(results / "4_Square/result_2.json")["stages"]["llm"];
  EXPECT_LT(std::max(s1["start"].get<double>(), s2["start"].get<double>()),
            std::min(s1["end"].get<double>(), s2["end"].get<double>()));
  // Compile stages carry the CPU seconds of the compile worker, here a fork of the warm
  // worker running pure-Python candidates: milliseconds, not the second of a cold `import torch`.
  ASSERT_EQ(t.compile_cpu_s.size(), 8u);  // 2 + 2 for 2_AddTwice, 2 each for 4 and 5
  for (double cpu : t.compile_cpu_s) EXPECT_GT(cpu, 0.0);
  json stages = ReadJson(results / "5_Negate/result_1.json")["eval"]["stages"];
  EXPECT_GT(stages["compile_cpu_s"].get<double>(), 0.0);
  EXPECT_EQ(stages["compile_worker_start"], "warm");
  EXPECT_EQ(stages["run_worker_start"], "warm");
  // Every run went through a run gate (eval/run_gate.h): started ahead while the lane's previous
  // sample ran, or on its turn with its timing waiting for the next one's set-up.
  for (const char* sample : {"4_Square/result_1.json", "4_Square/result_2.json", "5_Negate/result_1.json"}) {
    json st = ReadJson(results / sample)["eval"]["stages"];
    EXPECT_GE(st["run_waited_for_lane_s"].get<double>(), 0.0) << sample << " " << st.dump();
    EXPECT_GE(st["run_waited_for_quiet_s"].get<double>(), 0.0) << sample << " " << st.dump();
  }
  fs::remove_all(dir);
}

// The default schedule has every problem in flight at once: their LLM calls overlap. (On the CPU
// --run-ahead auto is off: each run's processes start on its turn, none waits for the lane.)
TEST(BatchE2E, PipelinedScheduleOverlapsProblems) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-pipelined-");
  fs::path replay = dir / "replay", results = dir / "results";
  WriteFileAtomic(replay / "3_Hopeless.txt", "I am sorry, but I cannot help with that.");
  WriteFileAtomic(replay / "5_Negate.txt", Response("negate"));
  WriteFileAtomic(replay / "4_Square.txt", "No code from me either.");  // only 5 is evaluated
  ProcessResult p =
      RunKbrun(ReplayArgv(results, replay, 3, 5, {"--samples", "1", "--attempts", "1", "--replay-latency", "1"}),
               Environment(false));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(ReadJson(results / "summary.json")["config"]["schedule"], "pipelined");
  json st = ReadJson(results / "5_Negate/result_1.json")["eval"]["stages"];
  EXPECT_TRUE(st["run_waited_for_lane_s"].is_null()) << st.dump();
  EXPECT_TRUE(st["run_waited_for_quiet_s"].is_null()) << st.dump();
  ProblemSpans t = ReadTimeline(results);
  ASSERT_EQ(t.spans.size(), 3u);
  auto a = t.spans["3_Hopeless"], b = t.spans["5_Negate"];
  EXPECT_LT(std::max(a.first, b.first), std::min(a.second, b.second)) << "problems did not overlap";
  fs::remove_all(dir);
}

// Ctrl-C cuts a simulated replay latency short, like a backoff sleep.
TEST(BatchE2E, InterruptCutsReplayLatencyShort) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-replay-int-");
  WriteFileAtomic(dir / "replay/4_Square.txt", Response("square"));
  fs::path results = dir / "results";
  Background run(ReplayArgv(results, dir / "replay", 4, 4, {"--samples", "1", "--replay-latency", "120"}),
                 Environment(false), dir / "run.out");
  ASSERT_NO_FATAL_FAILURE(InterruptWhileLlmInFlight(run, results, dir / "run.out"));
  EXPECT_FALSE(fs::exists(results / "4_Square/response_1.txt"));
  EXPECT_FALSE(fs::exists(results / "4_Square/result_1.json"));
  fs::remove_all(dir);
}

TEST(BatchE2E, MissingKeyFailsBeforeAnyWork) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-batch-nokey-");
  fs::path results = dir / "results";
  ProcessResult p = RunKbrun(BatchArgv(results, "http://127.0.0.1:9/v1", 4, 4, {}), Environment(false));
  EXPECT_EQ(p.exit_code, 78) << p.output;
  EXPECT_TRUE(Contains(p.output, "LLM_GATEWAY_KEY")) << p.output;
  EXPECT_FALSE(fs::exists(results));
  EXPECT_LT(p.wall_s, 10.0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun
