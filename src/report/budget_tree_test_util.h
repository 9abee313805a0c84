// A results tree with several samples per attempt, written into a temp folder, for the
// budget metrics (report_test.cc) and the exports (export_test.cc). Hand-computed figures
// are in those tests. WriteTree writes other samples the same way (compare_test.cc).
//
// summary.json: samples 3 per attempt, problems_dir .../KernelBench/level1, 4 problems.
//   1_A  #1 (a1 s1) correct 2.0x   #2 (a1 s2) incorrect   #3 (a1 s3) correct 0.5x
//   2_B  #1 (a1 s1) compile_error  #2 (a1 s2) correct 1.5x #3 (a1 s3) incorrect
//   3_C  #1..#3 (a1) incorrect     #4 (a2 s1) correct 3.0x
//   4_D  #1 (a1 s1) runtime_error  #2 (a1 s2) no_code (no code file)
// Timed samples: reference median = speedup x candidate median, candidate median 1.0 ms
// (2.0 ms for 1_A #3), means = medians x 1.1.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/results_store.h"
#include "util/fs.h"

namespace kbrun::report::test_tree {

struct TreeSample {
  std::string problem;
  int index, attempt, sample;
  std::string status, category;
  double speedup = 0;  // correct samples
  double candidate_ms = 1.0;
  nlohmann::json baselines = nullptr;  // eval.baselines as written, when not null
};

inline std::vector<TreeSample> BudgetTreeSamples() {
  return {{"1_A", 1, 1, 1, "correct", "", 2.0},
          {"1_A", 2, 1, 2, "incorrect", "value_mismatch"},
          {"1_A", 3, 1, 3, "correct", "", 0.5, 2.0},
          {"2_B", 1, 1, 1, "compile_error", "build_failed"},
          {"2_B", 2, 1, 2, "correct", "", 1.5},
          {"2_B", 3, 1, 3, "incorrect", "value_mismatch"},
          {"3_C", 1, 1, 1, "incorrect", "value_mismatch"},
          {"3_C", 2, 1, 2, "incorrect", "shape_mismatch"},
          {"3_C", 3, 1, 3, "incorrect", "value_mismatch"},
          {"3_C", 4, 2, 1, "correct", "", 3.0},
          {"4_D", 1, 1, 1, "runtime_error", "cuda_error"},
          {"4_D", 2, 1, 2, "no_code", "no_code"}};
}

// How the samples of a tree were judged and timed (what kbrun compare checks is alike).
struct TreeSettings {
  std::string tolerance_rule = "evidence";
  std::string timing_method = "cuda_events_launch_hidden_l2_flush";
  std::string gpu = "NVIDIA H200";
  std::string precision = "fp32";
};

// A finished batch of `samples` (problems named "<number>_<name>", in the order first seen).
inline void WriteTree(const std::filesystem::path& dir, const std::vector<TreeSample>& samples,
                      const TreeSettings& settings = {}) {
  using nlohmann::json;
  batch::ResultsStore store(dir);
  json problems = json::array();
  std::vector<std::string> seen;
  for (const auto& s : samples) {
    if (std::find(seen.begin(), seen.end(), s.problem) != seen.end()) continue;
    seen.push_back(s.problem);
    problems.push_back({{"name", s.problem}, {"number", std::stoi(s.problem)}, {"phase", "unsolved"}});
  }
  store.WriteSummary({{"kbrun_version", "0.1.0"},
                      {"state", "finished"},
                      {"sessions", json::array()},
                      {"config",
                       {{"problems_dir", "/kb/KernelBench/level1"},
                        {"samples", 3},
                        {"attempts", 2},
                        {"target_speedup", 1.0},
                        {"model", "test-model"},
                        {"provider", "replay"},
                        {"backend", "cuda"},
                        {"precision", settings.precision}}},
                      {"problems", problems}});
  for (const auto& s : samples) {
    bool correct = s.status == "correct";
    bool has_code = s.status != "no_code";
    bool evaluated = has_code;
    std::string n = std::to_string(s.index);
    json doc = {{"problem", s.problem},
                {"index", s.index},
                {"attempt", s.attempt},
                {"sample", s.sample},
                {"status", s.status},
                {"correct", correct},
                {"success", correct && s.speedup >= 1.0},
                {"speedup", correct ? json(s.speedup) : json(nullptr)},
                {"target_speedup", 1.0},
                {"error", correct ? json(nullptr)
                                  : json({{"category", s.category},
                                          {"message", "hand-written " + s.status + ", with \"quotes\""}})},
                {"files", {{"prompt", "prompt_" + n + ".txt"}, {"response", "response_" + n + ".txt"}}},
                {"stages", {{"llm", nullptr}, {"compile", nullptr}, {"gpu", nullptr}}},
                {"eval", nullptr}};
    if (has_code) {
      doc["files"]["code"] = "code_" + n + ".py";
      store.WriteCode(s.problem, s.index, "# " + s.problem + " sample " + n + "\nclass ModelNew:\n    pass\n");
    }
    if (evaluated) {
      auto timing = [](double median) {
        return json{{"median_ms", median},    {"mean_ms", median * 1.1}, {"std_ms", 0.01},
                    {"min_ms", median * 0.9}, {"max_ms", median * 1.5},  {"trials", 100}};
      };
      doc["eval"] = {{"problem_path", "/kb/KernelBench/level1/" + s.problem + ".py"},
                     {"status", s.status},
                     {"compiled", s.status != "compile_error"},
                     {"correct", correct},
                     {"device", {{"kind", "cuda"}, {"name", settings.gpu}, {"gpu_index", 0}}},
                     {"tolerance", {{"rule", settings.tolerance_rule}}},
                     {"correctness", {{"trials_run", 5}, {"trials_passed", correct ? 5 : 2}}},
                     {"timing",
                      {{"method", correct ? json(settings.timing_method) : json(nullptr)},
                       {"reference", correct ? timing(s.speedup * s.candidate_ms) : json(nullptr)},
                       {"candidate", correct ? timing(s.candidate_ms) : json(nullptr)}}}};
      if (!s.baselines.is_null()) doc["eval"]["baselines"] = s.baselines;
    }
    WriteFileAtomic(store.ResultPath(s.problem, s.index), batch::JsonText(doc) + "\n");
  }
}

inline void WriteBudgetTree(const std::filesystem::path& dir) { WriteTree(dir, BudgetTreeSamples()); }

// A measured baseline entry as the supervisor writes it: the baseline's median, the candidate's
// speedup over it, and the baseline's own speedup over eager.
inline nlohmann::json MeasuredBaseline(double median_ms, double speedup, double over_eager) {
  return {{"status", "measured"}, {"median_ms", median_ms}, {"speedup", speedup}, {"speedup_over_eager", over_eager},
          {"trials", 100},        {"compile_s", 12.5}};
}

// A batch run with --baseline compile --baseline cudagraph (candidate medians 1.0 ms):
//   1_A  #1 correct 2.0x: compile 0.8 ms (0.8x, compile 2.5x over eager), cudagraph 1.6 ms (1.6x, 1.25x)
//        #2 correct 1.5x: compile 1.2x (not the best sample: not counted)
//   2_B  #1 correct 3.0x: compile unavailable (a hostile reason), cudagraph 2.4 ms (2.4x, 1.25x)
//   3_C  #1 incorrect: both skipped
//   4_D  #1 correct 1.2x: no baselines recorded (an older kbrun)
inline const char* kHostileBaselineReason = "compile failed: RuntimeError: <img src=x onerror=alert(1)>\nsecond line";
inline std::vector<TreeSample> BaselineTreeSamples() {
  using nlohmann::json;
  json eager_skipped = {{"status", "skipped"}, {"reason", "the reference was not timed (incorrect/value_mismatch)"}};
  json skipped = {{"status", "skipped"},
                  {"reason", "the candidate's timing did not complete (incorrect/value_mismatch)"}};
  return {{"1_A",
           1,
           1,
           1,
           "correct",
           "",
           2.0,
           1.0,
           {{"eager", {{"status", "measured"}, {"median_ms", 2.0}, {"speedup", 2.0}}},
            {"compile", MeasuredBaseline(0.8, 0.8, 2.5)},
            {"cudagraph", MeasuredBaseline(1.6, 1.6, 1.25)}}},
          {"1_A",
           2,
           1,
           2,
           "correct",
           "",
           1.5,
           1.0,
           {{"eager", {{"status", "measured"}, {"median_ms", 1.5}, {"speedup", 1.5}}},
            {"compile", MeasuredBaseline(1.2, 1.2, 1.25)}}},
          {"2_B",
           1,
           1,
           1,
           "correct",
           "",
           3.0,
           1.0,
           {{"eager", {{"status", "measured"}, {"median_ms", 3.0}, {"speedup", 3.0}}},
            {"compile", {{"status", "unavailable"}, {"reason", kHostileBaselineReason}}},
            {"cudagraph", MeasuredBaseline(2.4, 2.4, 1.25)}}},
          {"3_C",
           1,
           1,
           1,
           "incorrect",
           "value_mismatch",
           0,
           1.0,
           {{"eager", eager_skipped}, {"compile", skipped}, {"cudagraph", skipped}}},
          {"4_D", 1, 1, 1, "correct", "", 1.2}};
}

}  // namespace kbrun::report::test_tree
