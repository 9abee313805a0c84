// The report's figures against a hand-written results tree (tests/batch/report_tree)
// whose expected values are worked out by hand in the comments below.
#include "report/report.h"

#include <gtest/gtest.h>

#include <cmath>

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
  EXPECT_EQ(r.correct, 3);                         // 1_A, 2_B, 3_C
  EXPECT_EQ(r.solved, 2);                          // 1_A, 2_B
  EXPECT_DOUBLE_EQ(r.correctness_rate, 3.0 / 5);
  ASSERT_EQ(r.fast_p.size(), 4u);
  EXPECT_DOUBLE_EQ(r.fast_p[0].second, 3.0 / 5);   // fast_0: 2.5, 1.2, 0.8
  EXPECT_DOUBLE_EQ(r.fast_p[1].second, 2.0 / 5);   // fast_1.0: 2.5, 1.2
  EXPECT_DOUBLE_EQ(r.fast_p[2].second, 1.0 / 5);   // fast_1.5: 2.5
  EXPECT_DOUBLE_EQ(r.fast_p[3].second, 1.0 / 5);   // fast_2.0: 2.5
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
  EXPECT_EQ(r.prompt_tokens, 350);                 // 100 + 200 + 30 + 20
  EXPECT_EQ(r.completion_tokens, 350);             // 200 + 100 + 30 + 20
  EXPECT_DOUBLE_EQ(r.wall_s, 150.0);               // sessions of 100 s and 50 s
  EXPECT_EQ(r.sessions, 2);
  EXPECT_EQ(r.gpu_lanes, 2);
  EXPECT_DOUBLE_EQ(r.stages.llm_s, 25.0);          // 10 + 10 + 5
  EXPECT_DOUBLE_EQ(r.stages.compile_s, 40.0);      // 20 + 10 + 10
  EXPECT_DOUBLE_EQ(r.stages.gpu_s, 12.0);          // 5 + 2 + 3 + 2
  EXPECT_EQ(r.stages.gpu_n, 4);
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

TEST(Report, NotAResultsFolder) {
  EXPECT_THROW(BuildReport("/nonexistent/results"), std::runtime_error);
  fs::path empty = MakeUniqueDir(fs::temp_directory_path(), "kbrun-report-empty-");
  EXPECT_THROW(BuildReport(empty), std::runtime_error);
  fs::remove_all(empty);
}

}  // namespace
}  // namespace kbrun::report
