// End-to-end tests of GPU lanes whose device fails (docs/RESULTS.md "Lane failures"): the real
// kbrun binary with two lanes on the CPU (--gpus 0,1), a candidate that fails with a CUDA error
// (tests/batch/responses/square_cuda_error.txt), and the lane probe either kbrun's own or the
// test script tests/batch/lane_probe.sh (KBRUN_LANE_PROBE) that fails for chosen lanes.
#include <gtest/gtest.h>

#include <set>

#include "batch/batch_test_util.h"

namespace kbrun {
namespace {

using namespace batch_test;
using nlohmann::json;
using test_util::FakeLlmServer;

json CudaErrorScenario() { return json::array({Rule("MARKER_FOUR", Response("square_cuda_error"))}); }

std::map<std::string, std::string> ScriptedProbe(const std::string& failing, const fs::path& log) {
  auto env = Environment();
  env["KBRUN_LANE_PROBE"] = (kData / "batch/lane_probe.sh").string();
  env["KBRUN_TEST_PROBE_FAIL"] = failing;
  env["KBRUN_TEST_PROBE_LOG"] = log.string();
  return env;
}

std::vector<json> Results(const fs::path& problem_dir) {
  std::vector<json> out;
  for (int n = 1;; ++n) {
    json r = ReadJson(problem_dir / ("result_" + std::to_string(n) + ".json"));
    if (!r.is_object()) break;
    out.push_back(r);
  }
  return out;
}

// (status, category) per sample, in index order.
std::vector<std::pair<std::string, std::string>> Verdicts(const std::vector<json>& results) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : results) {
    out.push_back({r["status"].get<std::string>(), r["error"].is_object() ? r["error"].value("category", "") : ""});
  }
  return out;
}

int Count(const std::string& text, const std::string& part) {
  int n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

// (1) Lane 1's device fails its probe: lane 1 is retired, the sample it was running is rerun on
// lane 0 and recorded as such, nothing is lost, and the verdicts are those of a one-lane run.
TEST(BatchLanes, LaneWhoseProbeFailsIsRetiredAndItsSampleRerunsOnAnother) {
  FakeLlmServer server(CudaErrorScenario().dump(), 300);
  fs::path results = server.dir() / "results", probe_log = server.dir() / "probes.log";
  auto extra = std::vector<std::string>{"--samples", "3", "--attempts", "1", "--gpus", "0,1"};
  ProcessResult p = RunKbrun(BatchArgv(results, server.base_url(), 4, 4, extra), ScriptedProbe("1", probe_log));
  ASSERT_EQ(p.exit_code, 0) << p.output;

  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "finished") << summary.dump(2);
  ASSERT_EQ(summary["lanes"].size(), 2u) << summary.dump(2);
  EXPECT_EQ(summary["lanes"][0]["state"], "active");
  json retired = summary["lanes"][1];
  EXPECT_EQ(retired["state"], "retired") << retired.dump(2);
  EXPECT_EQ(retired["probe"], "probe exited with 1: simulated dead GPU 1");
  EXPECT_TRUE(Contains(retired["reason"].get<std::string>(), ": cuda_error: RuntimeError: CUDA error"))
      << retired.dump(2);
  EXPECT_EQ(retired["samples"], 1);  // it took no more work

  auto all = Results(results / "4_Square");
  ASSERT_EQ(all.size(), 3u) << "a sample was lost";
  int rerun = 0;
  for (const auto& r : all) {
    EXPECT_EQ(r["gpu_lane"], 0) << r.dump(2);  // every verdict comes from the healthy lane
    if (r["rerun_after_lane_failure"].is_null()) continue;
    ++rerun;
    const json& note = r["rerun_after_lane_failure"];
    ASSERT_EQ(note.size(), 1u) << r.dump(2);
    EXPECT_EQ(note[0]["gpu_lane"], 1);
    EXPECT_EQ(note[0]["error"]["category"], "cuda_error");
    EXPECT_EQ(note[0]["probe"], "probe exited with 1: simulated dead GPU 1");
    ASSERT_TRUE(note[0].contains("gpu_stage") && note[0]["gpu_stage"].is_object()) << r.dump(2);
    EXPECT_GT(note[0]["gpu_stage"]["seconds"].get<double>(), 0) << r.dump(2);  // the lane time it held
  }
  EXPECT_EQ(rerun, 1);
  // The report counts that lane time against the sample (docs/SCALING.md "GPU-lane time per
  // evaluation"): three evaluations, one discarded run.
  json cost = ReadJson(results / "detailed_report.json")["overall"]["gpu_lane_cost"];
  EXPECT_EQ(cost["evaluations"], 3) << cost.dump();
  EXPECT_EQ(cost["discarded_runs"], 1) << cost.dump();
  EXPECT_GT(cost["evaluations_per_gpu_hour"].get<double>(), 0) << cost.dump();
  EXPECT_TRUE(Contains(p.output, "kbrun batch: GPU lanes in this run: median ")) << p.output;
  // Lane 1 was probed once; lane 0 after each of its three suspect samples, and passed.
  std::string probes = *ReadFile(probe_log);
  EXPECT_EQ(Count(probes, "cpu 1"), 1) << probes;
  EXPECT_EQ(Count(probes, "cpu 0"), 3) << probes;
  std::string log = *ReadFile(results / "batch_run.log");
  EXPECT_TRUE(Contains(log, "lane 1 retired")) << log;
  EXPECT_TRUE(Contains(log, "rerun on another lane")) << log;
  // The discarded run is on the timeline as such.
  EXPECT_TRUE(Contains(*ReadFile(results / "timeline.jsonl"), "\"discarded\":\"lane_failure\""));

  // One lane, same answers: the same verdicts.
  fs::path one_lane = server.dir() / "one-lane";
  extra = {"--samples", "3", "--attempts", "1", "--gpus", "0"};
  p = RunKbrun(BatchArgv(one_lane, server.base_url(), 4, 4, extra), ScriptedProbe("", server.dir() / "probes1.log"));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(Verdicts(Results(one_lane / "4_Square")), Verdicts(all));
  EXPECT_EQ(Verdicts(all)[0], (std::pair<std::string, std::string>{"runtime_error", "cuda_error"}));
}

// (2) kbrun's own probe, which passes on this healthy CPU: the candidate's verdict stands, no
// sample is rerun, and both lanes keep taking work.
TEST(BatchLanes, PassingProbeKeepsTheVerdictAndTheLane) {
  FakeLlmServer server(CudaErrorScenario().dump(), 300);
  fs::path results = server.dir() / "results";
  auto extra = std::vector<std::string>{"--samples", "2", "--attempts", "2", "--gpus", "0,1"};
  ProcessResult p = RunKbrun(BatchArgv(results, server.base_url(), 4, 4, extra), Environment());
  ASSERT_EQ(p.exit_code, 0) << p.output;
  auto all = Results(results / "4_Square");
  ASSERT_EQ(all.size(), 4u);
  std::set<int> lanes;
  for (const auto& r : all) {
    EXPECT_EQ(r["status"], "runtime_error") << r.dump(2);
    EXPECT_EQ(r["error"]["category"], "cuda_error") << r.dump(2);
    EXPECT_TRUE(r["rerun_after_lane_failure"].is_null()) << r.dump(2);
    lanes.insert(r["gpu_lane"].get<int>());
  }
  EXPECT_EQ(lanes, (std::set<int>{0, 1}));
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "finished");
  int probes = 0;
  for (const auto& lane : summary["lanes"]) {
    EXPECT_EQ(lane["state"], "active") << summary["lanes"].dump(2);
    probes += lane["probes"].get<int>();
  }
  EXPECT_EQ(probes, 4);
  std::string log = *ReadFile(results / "batch_run.log");
  EXPECT_EQ(Count(log, "probe passed (ok: cpu in"), 4) << log;
  EXPECT_FALSE(Contains(log, "retired")) << log;
}

// (3) Every lane fails its probe: the batch stops as no_gpu_lanes (exit 71) with nothing charged
// to the candidate, and a rerun on working lanes resumes from the saved answers.
TEST(BatchLanes, AllLanesRetiredStopsTheBatchAndARerunResumes) {
  FakeLlmServer server(CudaErrorScenario().dump(), 300);
  fs::path results = server.dir() / "results", probe_log = server.dir() / "probes.log";
  auto argv = BatchArgv(results, server.base_url(), 4, 4, {"--samples", "2", "--attempts", "1", "--gpus", "0,1"});
  ProcessResult p = RunKbrun(argv, ScriptedProbe("0,1", probe_log));
  EXPECT_EQ(p.exit_code, 71) << p.output;
  EXPECT_TRUE(Contains(p.output, "every GPU lane was retired")) << p.output;
  json summary = ReadJson(results / "summary.json");
  EXPECT_EQ(summary["state"], "no_gpu_lanes") << summary.dump(2);
  for (const auto& lane : summary["lanes"]) EXPECT_EQ(lane["state"], "retired") << summary["lanes"].dump(2);
  EXPECT_EQ(summary["problems"][0]["phase"], "queued");
  EXPECT_TRUE(FilesNamed(results, "result_").empty()) << "a sample was charged for a dead device";
  EXPECT_TRUE(fs::exists(results / "4_Square/response_1.txt"));  // the answers are kept for the resume
  EXPECT_TRUE(fs::exists(results / "4_Square/response_2.txt"));
  EXPECT_TRUE(Contains(*ReadFile(results / "batch_run.log"), "batch no_gpu_lanes"));
  size_t requests = server.Requests().size();
  EXPECT_EQ(requests, 2u);

  // The GPUs work again: the same command resumes, evaluating the saved answers.
  p = RunKbrun(argv, ScriptedProbe("", probe_log));
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(server.Requests().size(), requests);  // no new LLM call
  EXPECT_EQ(Verdicts(Results(results / "4_Square")),
            (std::vector<std::pair<std::string, std::string>>{{"runtime_error", "cuda_error"},
                                                              {"runtime_error", "cuda_error"}}));
  EXPECT_EQ(ReadJson(results / "summary.json")["state"], "finished");
}

}  // namespace
}  // namespace kbrun
