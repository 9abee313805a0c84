// The report's figures against a hand-written results tree (tests/batch/report_tree)
// whose expected values are worked out by hand in the comments below.
#include "report/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "report/budget_tree_test_util.h"
#include "report/html_report.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

const fs::path kTree = fs::path(KBRUN_TEST_DATA_DIR) / "batch/report_tree";

// 5 problems: 1_A correct 2.5x; 2_B incorrect then correct 1.2x; 3_C correct 0.5x, compile
// error, correct 0.8x (below the 1.0 target); 4_D no code then runtime error; 5_E never started.
TEST(Report, FiguresMatchTheHandComputedOnes) {
  Report r = BuildReport(kTree);
  EXPECT_EQ(r.batch_state, "interrupted");
  ASSERT_EQ(r.problems.size(), 5u);
  EXPECT_EQ(r.correct, 3);  // 1_A, 2_B, 3_C
  EXPECT_EQ(r.solved, 2);   // 1_A, 2_B
  EXPECT_DOUBLE_EQ(r.correctness_rate, 3.0 / 5);
  ASSERT_EQ(r.fast_p.size(), 6u);
  EXPECT_DOUBLE_EQ(r.fast_p[0].second, 3.0 / 5);  // fast_0: 2.5, 1.2, 0.8
  EXPECT_DOUBLE_EQ(r.fast_p[1].second, 3.0 / 5);  // fast_0.5: 2.5, 1.2, 0.8
  EXPECT_DOUBLE_EQ(r.fast_p[2].second, 2.0 / 5);  // fast_0.8: 2.5, 1.2 (0.8 is not > 0.8)
  EXPECT_DOUBLE_EQ(r.fast_p[3].second, 2.0 / 5);  // fast_1.0: 2.5, 1.2
  EXPECT_DOUBLE_EQ(r.fast_p[4].second, 1.0 / 5);  // fast_1.5: 2.5
  EXPECT_DOUBLE_EQ(r.fast_p[5].second, 1.0 / 5);  // fast_2.0: 2.5
  ASSERT_TRUE(r.geomean_speedup.has_value());
  EXPECT_NEAR(*r.geomean_speedup, std::cbrt(2.5 * 1.2 * 0.8), 1e-12);
  EXPECT_EQ(r.samples, 8);
  EXPECT_EQ(r.samples_correct, 4);
  EXPECT_EQ(r.samples_by_status.at("correct"), 4);
  EXPECT_EQ(r.samples_by_status.at("incorrect"), 1);
  EXPECT_EQ(r.samples_by_status.at("compile_error"), 1);
  EXPECT_EQ(r.samples_by_status.at("no_code"), 1);
  EXPECT_EQ(r.samples_by_status.at("runtime_error"), 1);
  EXPECT_EQ(r.failure_kinds.at("PERFORMANCE TOO SLOW"), 2);
  EXPECT_EQ(r.failure_kinds.at("Incorrect"), 1);
  // 3_C's first sample passed (library kernels allowed) without running its own kernel.
  ASSERT_EQ(r.fallback_reasons.size(), 1u);
  EXPECT_EQ(r.fallback_reasons.at("never_launched"), 1);
  ASSERT_EQ(r.timing_methods.size(), 1u);  // the only sample whose result says how it was timed
  EXPECT_EQ(r.timing_methods.at("cuda_events_launch_hidden_l2_flush"), 1);
  EXPECT_TRUE(Contains(ReportText(r), "Timed by       cuda_events_launch_hidden_l2_flush x1")) << ReportText(r);
  EXPECT_EQ(r.prompt_tokens, 350);      // 100 + 200 + 30 + 20
  EXPECT_EQ(r.completion_tokens, 350);  // 200 + 100 + 30 + 20
  EXPECT_DOUBLE_EQ(r.wall_s, 150.0);    // sessions of 100 s and 50 s
  EXPECT_EQ(r.sessions, 2);
  EXPECT_EQ(r.gpu_lanes, 2);
  EXPECT_DOUBLE_EQ(r.stages.llm_s, 25.0);      // 10 + 10 + 5
  EXPECT_DOUBLE_EQ(r.stages.compile_s, 40.0);  // 20 + 10 + 10
  EXPECT_DOUBLE_EQ(r.stages.gpu_s, 12.0);      // 5 + 2 + 3 + 2
  EXPECT_EQ(r.stages.gpu_n, 4);
  // Budget: one sample per attempt. One-shot (attempt 1, sample 1): 1_A correct 2.5x, 2_B
  // incorrect, 3_C correct 0.5x, 4_D no code, 5_E none: 2 of 5 correct.
  EXPECT_EQ(r.one_shot.problems, 5);
  EXPECT_EQ(r.one_shot.correct, 2);
  EXPECT_DOUBLE_EQ(r.one_shot.fast_p[0].second, 2.0 / 5);  // fast_0
  EXPECT_DOUBLE_EQ(r.one_shot.fast_p[1].second, 1.0 / 5);  // fast_0.5: 0.5 is not > 0.5
  EXPECT_DOUBLE_EQ(r.one_shot.fast_p[3].second, 1.0 / 5);  // fast_1.0
  EXPECT_NEAR(*r.one_shot.geomean_speedup, std::sqrt(2.5 * 0.5), 1e-12);
  EXPECT_EQ(r.best_of_all.fast_p, r.fast_p);
  // pass@1 over attempt 1's single samples of the 4 started problems: 1_A and 3_C correct.
  EXPECT_EQ(r.samples_per_attempt, 1);
  ASSERT_EQ(r.pass_at_k.size(), 1u);
  EXPECT_EQ(r.pass_at_k[0].problems, 4);
  EXPECT_DOUBLE_EQ(r.pass_at_k[0].pass_at_k, 2.0 / 4);
  EXPECT_DOUBLE_EQ(r.pass_at_k[0].fast_1_at_k, 1.0 / 4);  // 1_A only: 0.5x is not faster
}

TEST(Report, PassAtKIsTheUnbiasedEstimator) {
  // 1 - C(n-c, k) / C(n, k), worked out by hand.
  EXPECT_DOUBLE_EQ(PassAtK(3, 1, 1), 1.0 / 3);
  EXPECT_NEAR(PassAtK(5, 2, 2), 1.0 - 3.0 / 10, 1e-12);     // C(3,2)=3, C(5,2)=10
  EXPECT_NEAR(PassAtK(10, 3, 5), 1.0 - 21.0 / 252, 1e-12);  // C(7,5)=21, C(10,5)=252
  EXPECT_NEAR(PassAtK(3, 1, 2), 1.0 - 1.0 / 3, 1e-12);      // C(2,2)=1, C(3,2)=3
  EXPECT_DOUBLE_EQ(PassAtK(4, 0, 3), 0.0);
  EXPECT_DOUBLE_EQ(PassAtK(4, 2, 3), 1.0);  // n - c < k: every draw of 3 holds a correct one
  EXPECT_DOUBLE_EQ(PassAtK(4, 4, 1), 1.0);
  EXPECT_THROW(PassAtK(2, 1, 3), std::invalid_argument);
  EXPECT_THROW(PassAtK(2, 3, 1), std::invalid_argument);
}

// The tree of budget_tree_test_util.h: 3 samples per attempt.
TEST(Report, BudgetMetricsOverSeveralSamplesPerAttempt) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-budget-test-");
  test_tree::WriteBudgetTree(dir);
  Report r = BuildReport(dir);
  ASSERT_EQ(r.problems.size(), 4u);
  EXPECT_EQ(r.problems[0].first_attempt_samples, 3);
  EXPECT_EQ(r.problems[0].first_attempt_correct, 2);
  EXPECT_EQ(r.problems[0].first_attempt_faster, 1);
  EXPECT_EQ(r.problems[2].first_attempt_samples, 3);  // 3_C's attempt-2 sample is not one of them
  EXPECT_EQ(r.problems[3].first_attempt_samples, 2);

  // One-shot: only 1_A's first sample is correct (2.0x).
  EXPECT_EQ(r.one_shot.problems, 4);
  EXPECT_EQ(r.one_shot.correct, 1);
  const double one_shot[] = {1.0 / 4, 1.0 / 4, 1.0 / 4, 1.0 / 4, 1.0 / 4, 0.0};  // 2.0 is not > 2.0
  // Best of all: 1_A 2.0x, 2_B 1.5x, 3_C 3.0x (attempt 2), 4_D none.
  const double best[] = {3.0 / 4, 3.0 / 4, 3.0 / 4, 3.0 / 4, 2.0 / 4, 1.0 / 4};
  ASSERT_EQ(r.one_shot.fast_p.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(r.one_shot.fast_p[i].second, one_shot[i]) << "one-shot " << FastPKey(kFastPThresholds[i]);
    EXPECT_DOUBLE_EQ(r.best_of_all.fast_p[i].second, best[i]) << "best " << FastPKey(kFastPThresholds[i]);
  }
  EXPECT_DOUBLE_EQ(*r.one_shot.geomean_speedup, 2.0);
  EXPECT_NEAR(*r.best_of_all.geomean_speedup, std::cbrt(2.0 * 1.5 * 3.0), 1e-12);

  // pass@k over attempt 1: (n, c, c_faster) = 1_A (3, 2, 1), 2_B (3, 1, 1), 3_C (3, 0, 0), 4_D (2, 0, 0).
  EXPECT_EQ(r.samples_per_attempt, 3);
  ASSERT_EQ(r.pass_at_k.size(), 3u);
  EXPECT_EQ(r.pass_at_k[0].problems, 4);
  EXPECT_NEAR(r.pass_at_k[0].pass_at_k, (2.0 / 3 + 1.0 / 3 + 0 + 0) / 4, 1e-12);  // 0.25
  EXPECT_NEAR(r.pass_at_k[0].fast_1_at_k, (1.0 / 3 + 1.0 / 3) / 4, 1e-12);        // 1/6
  EXPECT_EQ(r.pass_at_k[1].problems, 4);
  // k=2: 1_A 1 - C(1,2)/C(3,2) = 1; 2_B 1 - C(2,2)/C(3,2) = 2/3; fast_1: 2/3 and 2/3.
  EXPECT_NEAR(r.pass_at_k[1].pass_at_k, (1.0 + 2.0 / 3) / 4, 1e-12);        // 5/12
  EXPECT_NEAR(r.pass_at_k[1].fast_1_at_k, (2.0 / 3 + 2.0 / 3) / 4, 1e-12);  // 1/3
  EXPECT_EQ(r.pass_at_k[2].problems, 3);                                    // 4_D has only 2 samples
  EXPECT_NEAR(r.pass_at_k[2].pass_at_k, 2.0 / 3, 1e-12);
  EXPECT_NEAR(r.pass_at_k[2].fast_1_at_k, 2.0 / 3, 1e-12);

  // The same figures in the JSON and the text, labelled.
  auto j = ReportJson(r);
  const auto& budget = j["overall"]["budget"];
  EXPECT_DOUBLE_EQ(budget["one_shot"]["fast_p"]["fast_0.0"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(budget["best_of_all"]["fast_p"]["fast_1.5"].get<double>(), 0.5);
  EXPECT_EQ(budget["best_of_all"]["fast_p"], j["overall"]["fast_p"]);
  EXPECT_EQ(budget["pass_at_k"]["samples_per_attempt"], 3);
  EXPECT_EQ(budget["pass_at_k"]["by_k"][2]["problems"], 3);
  EXPECT_NEAR(budget["pass_at_k"]["by_k"][1]["pass_at_k"].get<double>(), 5.0 / 12, 1e-12);
  EXPECT_EQ(j["problems"][2]["one_shot"]["status"], "incorrect");
  EXPECT_EQ(j["problems"][0]["first_attempt"]["correct_and_faster"], 1);
  std::string text = ReportText(r);
  EXPECT_TRUE(Contains(text, "one-shot (attempt 1, sample 1)")) << text;
  EXPECT_TRUE(Contains(text, "best of all samples and attempts")) << text;
  EXPECT_TRUE(Contains(text, "pass@k over the samples of attempt 1")) << text;
  EXPECT_TRUE(Contains(text, "41.7%")) << text;  // pass@2 = 5/12
  fs::remove_all(dir);
}

TEST(Report, PerProblemRows) {
  Report r = BuildReport(kTree);
  const auto& a = r.problems[0];
  EXPECT_EQ(a.name, "1_A");
  EXPECT_EQ(a.status, "solved");
  EXPECT_DOUBLE_EQ(a.best_speedup, 2.5);
  EXPECT_EQ(a.attempts_used, 1);
  EXPECT_EQ(a.samples_used, 1);
  const auto& b = r.problems[1];
  EXPECT_EQ(b.status, "solved");
  EXPECT_EQ(b.best_index, 2);
  EXPECT_EQ(b.attempts_used, 2);
  EXPECT_EQ(b.failure_kinds.at("Incorrect"), 1);
  const auto& c = r.problems[2];
  EXPECT_EQ(c.status, "slow");
  EXPECT_DOUBLE_EQ(c.best_speedup, 0.8);
  EXPECT_EQ(c.best_index, 3);
  EXPECT_EQ(c.samples_used, 3);
  EXPECT_EQ(c.failure_kinds.at("PERFORMANCE TOO SLOW"), 2);
  EXPECT_EQ(c.failure_kinds.at("Compile error"), 1);
  const auto& d = r.problems[3];
  EXPECT_EQ(d.status, "failed");
  EXPECT_FALSE(d.correct);
  EXPECT_EQ(d.best_index, 2);  // the runtime error got further than the missing code
  EXPECT_EQ(d.best_status, "runtime_error");
  const auto& e = r.problems[4];
  EXPECT_EQ(e.name, "5_E");
  EXPECT_EQ(e.status, "not_started");
  EXPECT_EQ(e.samples_used, 0);
}

TEST(Report, FilesAreWrittenAndReadable) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-report-test-");
  fs::copy(kTree, dir, fs::copy_options::recursive);
  WriteReport(dir);
  auto j = nlohmann::json::parse(*ReadFile(dir / "detailed_report.json"));
  EXPECT_EQ(j["overall"]["problems"], 5);
  EXPECT_DOUBLE_EQ(j["overall"]["fast_p"]["fast_1.0"].get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(j["overall"]["fast_p"]["fast_1.5"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(j["overall"]["stage_seconds"]["total"].get<double>(), 77.0);
  EXPECT_NEAR(j["overall"]["stage_sum_over_wall"].get<double>(), 77.0 / 150.0, 1e-12);
  EXPECT_NEAR(j["overall"]["gpu_busy_fraction"].get<double>(), 12.0 / 300.0, 1e-12);
  EXPECT_TRUE(j["problems"][3]["best_speedup"].is_null());
  std::string text = *ReadFile(dir / "detailed_report.txt");
  EXPECT_TRUE(Contains(text, "fast_1.0 40.0%")) << text;
  EXPECT_TRUE(Contains(text, "Geomean speedup 1.339x over 3 correct kernels")) << text;
  EXPECT_TRUE(Contains(text, "Wall time      2 min 30 s over 2 sessions")) << text;
  // Aligned table: every row of the problems table starts its "Status" column at the same place.
  auto lines = SplitLines(text);
  size_t header = 0;
  while (header < lines.size() && !StartsWith(lines[header], "Problem ")) ++header;
  ASSERT_LT(header + 6, lines.size()) << text;
  size_t col = lines[header].find("Status");
  for (size_t i = header + 2; i < header + 7; ++i) {
    EXPECT_EQ(lines[i][col - 1], ' ') << lines[i];
    EXPECT_NE(lines[i][col], ' ') << lines[i];
  }
  fs::remove_all(dir);
}

// --baseline compile --baseline cudagraph (test_tree::BaselineTreeSamples, figures by hand there):
// the best kernel of each problem against each baseline, over all 4 problems.
TEST(Report, AgainstEachBaselineByHand) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-report-baselines-");
  test_tree::WriteTree(dir, test_tree::BaselineTreeSamples());
  Report r = BuildReport(dir);
  ASSERT_TRUE(r.HasOtherBaselines());
  ASSERT_EQ(r.baselines.size(), 3u);
  const BaselineFigures &eager = r.baselines[0], &compile = r.baselines[1], &graph = r.baselines[2];
  EXPECT_EQ(eager.name, "eager");
  EXPECT_EQ(compile.name, "compile");
  EXPECT_EQ(graph.name, "cudagraph");
  // eager: 1_A 2.0, 2_B 3.0, 4_D 1.2: the report's own fast_p.
  EXPECT_EQ(eager.measured, 3);
  EXPECT_EQ(eager.fast_p, r.fast_p);
  EXPECT_NEAR(*eager.geomean_speedup, std::cbrt(2.0 * 3.0 * 1.2), 1e-12);
  EXPECT_EQ(eager.samples_measured, 4);  // every correct sample's reference was timed
  // compile: only 1_A's best (#1, 0.8x); #2's 1.2x is not the best sample; 2_B unavailable; 4_D none.
  EXPECT_EQ(compile.problems, 4);
  EXPECT_EQ(compile.measured, 1);
  ASSERT_EQ(compile.fast_p.size(), 6u);
  EXPECT_DOUBLE_EQ(compile.fast_p[0].second, 0.25);  // fast_0.0
  EXPECT_DOUBLE_EQ(compile.fast_p[1].second, 0.25);  // fast_0.5
  EXPECT_DOUBLE_EQ(compile.fast_p[2].second, 0.0);   // fast_0.8: 0.8 is not > 0.8
  EXPECT_DOUBLE_EQ(compile.fast_p[3].second, 0.0);   // fast_1.0
  EXPECT_DOUBLE_EQ(*compile.geomean_speedup, 0.8);
  EXPECT_DOUBLE_EQ(*compile.geomean_baseline_over_eager, 2.5);
  EXPECT_EQ(compile.samples_measured, 2);  // 1_A #1 and #2
  // The reason's first line; the sample counts once.
  ASSERT_EQ(compile.unavailable.size(), 1u);
  EXPECT_EQ(compile.unavailable.begin()->first, "compile failed: RuntimeError: <img src=x onerror=alert(1)>");
  EXPECT_EQ(compile.unavailable.begin()->second, 1);
  // cudagraph: 1_A 1.6, 2_B 2.4.
  EXPECT_EQ(graph.measured, 2);
  EXPECT_DOUBLE_EQ(graph.fast_p[3].second, 0.5);   // fast_1.0
  EXPECT_DOUBLE_EQ(graph.fast_p[4].second, 0.5);   // fast_1.5
  EXPECT_DOUBLE_EQ(graph.fast_p[5].second, 0.25);  // fast_2.0: 2.4
  EXPECT_NEAR(*graph.geomean_speedup, std::sqrt(1.6 * 2.4), 1e-12);
  EXPECT_NEAR(*graph.geomean_baseline_over_eager, 1.25, 1e-12);
  EXPECT_TRUE(graph.unavailable.empty());
  // Per problem: the best sample's figures; none for a wrong kernel or one that recorded none.
  EXPECT_DOUBLE_EQ(*r.problems[0].BaselineSpeedup("compile"), 0.8);
  EXPECT_FALSE(r.problems[1].BaselineSpeedup("compile"));
  EXPECT_DOUBLE_EQ(*r.problems[1].BaselineSpeedup("cudagraph"), 2.4);
  EXPECT_FALSE(r.problems[2].BaselineSpeedup("cudagraph"));  // incorrect (its entry: skipped)
  EXPECT_FALSE(r.problems[3].BaselineSpeedup("compile"));
  EXPECT_DOUBLE_EQ(*r.problems[3].BaselineSpeedup("eager"), 1.2);

  nlohmann::json j = ReportJson(r);
  const auto& jb = j["overall"]["baselines"];
  EXPECT_EQ(jb["compile"]["measured"], 1);
  EXPECT_DOUBLE_EQ(jb["compile"]["fast_p"]["fast_0.5"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(jb["cudagraph"]["fast_p"]["fast_2.0"].get<double>(), 0.25);
  EXPECT_EQ(jb["eager"]["fast_p"], j["overall"]["fast_p"]);
  EXPECT_EQ(jb["compile"]["unavailable"].size(), 1u);
  EXPECT_EQ(j["problems"][1]["baselines"]["compile"]["status"], "unavailable");
  EXPECT_DOUBLE_EQ(j["problems"][0]["baselines"]["cudagraph"]["speedup"].get<double>(), 1.6);

  std::string text = ReportText(r);
  EXPECT_TRUE(Contains(text, "Against each baseline")) << text;
  EXPECT_TRUE(Contains(text, "compile unavailable in 1 sample: compile failed: RuntimeError")) << text;
  auto lines = SplitLines(text);
  auto row = [&](const std::string& start) {
    for (const auto& l : lines) {
      if (StartsWith(l, start)) return l;
    }
    return std::string();
  };
  EXPECT_TRUE(Contains(row("Problem "), "vs compile")) << text;
  EXPECT_TRUE(Contains(row("Problem "), "vs cudagraph")) << text;
  EXPECT_TRUE(Contains(row("1_A "), "0.800x")) << text;
  EXPECT_TRUE(Contains(row("1_A "), "1.600x")) << text;
  EXPECT_TRUE(Contains(row("cudagraph "), "1.250x")) << text;  // its own speedup over eager
  fs::remove_all(dir);
}

// Without --baseline beyond eager, the text shows no baseline table or column.
TEST(Report, NoOtherBaselineNoBaselineTable) {
  Report r = BuildReport(kTree);
  EXPECT_FALSE(r.HasOtherBaselines());
  ASSERT_EQ(r.baselines.size(), 1u);
  EXPECT_EQ(r.baselines[0].fast_p, r.fast_p);
  std::string text = ReportText(r);
  EXPECT_FALSE(Contains(text, "Against each baseline")) << text;
  EXPECT_FALSE(Contains(text, "vs compile")) << text;
}

// GPU-lane time per evaluation over a hand-built tree whose samples held a lane for:
//   1_A #1 1.0 s, #2 1.5 s; 2_B #1 0.5 s kept + 1.5 s of a run discarded after a lane failure
//   = 2.0 s, #2 compile error (no lane); 3_C #1 3.0 s (and a discarded run of an older kbrun,
//   with no span: not counted); 4_D #1 no code (no lane).
// Four evaluations, sorted 1.0 1.5 2.0 3.0: median (1.5 + 2.0) / 2 = 1.75; p90 at rank
// 0.9 x 3 = 2.7: 2.0 + 0.7 x (3.0 - 2.0) = 2.7; 7.5 lane seconds: 4 x 3600 / 7.5 = 1920 an hour.
TEST(Report, GpuLaneTimePerEvaluationByHand) {
  using nlohmann::json;
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-lane-cost-test-");
  test_tree::WriteTree(dir, {{"1_A", 1, 1, 1, "correct", "", 2.0},
                             {"1_A", 2, 1, 2, "incorrect", "value_mismatch"},
                             {"2_B", 1, 1, 1, "correct", "", 1.5},
                             {"2_B", 2, 1, 2, "compile_error", "build_failed"},
                             {"3_C", 1, 1, 1, "runtime_error", "cuda_error"},
                             {"4_D", 1, 1, 1, "no_code", "no_code"}});
  const double t0 = 1795553000.0;
  auto span = [&](double start, double seconds) {
    return json{{"start", t0 + start}, {"end", t0 + start + seconds}, {"seconds", seconds}};
  };
  batch::ResultsStore store(dir);
  auto patch = [&](const std::string& problem, int index, const std::function<void(json&)>& edit) {
    json doc = json::parse(*ReadFile(store.ResultPath(problem, index)));
    edit(doc);
    WriteFileAtomic(store.ResultPath(problem, index), batch::JsonText(doc) + "\n");
  };
  patch("1_A", 1, [&](json& d) { d["stages"]["gpu"] = span(0, 1.0); });
  patch("1_A", 2, [&](json& d) { d["stages"]["gpu"] = span(10, 1.5); });
  patch("2_B", 1, [&](json& d) {
    d["stages"]["gpu"] = span(30, 0.5);
    d["rerun_after_lane_failure"] = json::array({{{"gpu_lane", 1},
                                                  {"status", "runtime_error"},
                                                  {"probe", "dead"},
                                                  {"at", t0 + 22},
                                                  {"gpu_stage", span(20, 1.5)}}});
  });
  patch("3_C", 1, [&](json& d) {
    d["stages"]["gpu"] = span(40, 3.0);
    d["rerun_after_lane_failure"] = json::array({{{"gpu_lane", 1}, {"status", "runtime_error"}, {"at", t0 + 39}}});
  });
  Report r = BuildReport(dir);
  EXPECT_DOUBLE_EQ(r.stages.gpu_s, 6.0);  // the kept runs only: 1.0 + 1.5 + 0.5 + 3.0
  const batch::LaneCost& c = r.lane_cost;
  EXPECT_EQ(c.evaluations, 4);
  EXPECT_DOUBLE_EQ(c.lane_s, 7.5);
  ASSERT_TRUE(c.median_s && c.p90_s && c.per_gpu_hour);
  EXPECT_DOUBLE_EQ(*c.median_s, 1.75);
  EXPECT_DOUBLE_EQ(*c.p90_s, 2.7);
  EXPECT_DOUBLE_EQ(*c.per_gpu_hour, 1920.0);
  EXPECT_EQ(c.discarded_runs, 1);
  EXPECT_DOUBLE_EQ(c.discarded_s, 1.5);

  json j = ReportJson(r)["overall"]["gpu_lane_cost"];
  EXPECT_EQ(j["evaluations"], 4) << j.dump();
  EXPECT_DOUBLE_EQ(j["lane_seconds"].get<double>(), 7.5);
  EXPECT_DOUBLE_EQ(j["median_s"].get<double>(), 1.75);
  EXPECT_DOUBLE_EQ(j["p90_s"].get<double>(), 2.7);
  EXPECT_DOUBLE_EQ(j["evaluations_per_gpu_hour"].get<double>(), 1920.0);
  EXPECT_EQ(j["discarded_runs"], 1);
  EXPECT_DOUBLE_EQ(j["discarded_seconds"].get<double>(), 1.5);
  std::string text = ReportText(r);
  EXPECT_TRUE(Contains(text,
                       "  GPU lanes: median 1.75 s (p90 2.70 s) of GPU-lane time per evaluation over 4, 1920 "
                       "evaluations per GPU-hour (1.50 s of 1 run discarded after a lane failure included)\n"))
      << text;
  std::string html = HtmlReport(r);
  EXPECT_TRUE(Contains(html, R"(data-evaluations="4" data-median-s="1.75" data-p90-s="2.7)")) << html;
  EXPECT_TRUE(Contains(html, R"(data-per-gpu-hour="1920" data-discarded-runs="1")")) << html;
  fs::remove_all(dir);
}

// A tree with no lane time (the budget tree's results record no stages): no figures, not zeros.
TEST(Report, GpuLaneTimeWithoutEvaluationsIsUnknown) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-lane-cost-none-");
  test_tree::WriteBudgetTree(dir);
  Report r = BuildReport(dir);
  EXPECT_EQ(r.lane_cost.evaluations, 0);
  EXPECT_FALSE(r.lane_cost.median_s || r.lane_cost.p90_s || r.lane_cost.per_gpu_hour);
  nlohmann::json j = ReportJson(r)["overall"]["gpu_lane_cost"];
  EXPECT_TRUE(j["median_s"].is_null() && j["evaluations_per_gpu_hour"].is_null()) << j.dump();
  EXPECT_TRUE(Contains(ReportText(r), "  GPU lanes: no evaluation held a GPU lane\n")) << ReportText(r);
  fs::remove_all(dir);
}

TEST(Report, NotAResultsFolder) {
  EXPECT_THROW(BuildReport("/nonexistent/results"), std::runtime_error);
  fs::path empty = MakeUniqueDir(fs::temp_directory_path(), "kbrun-report-empty-");
  EXPECT_THROW(BuildReport(empty), std::runtime_error);
  fs::remove_all(empty);
}

}  // namespace
}  // namespace kbrun::report
