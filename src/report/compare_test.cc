// kbrun compare against two small hand-written trees (the command line: export_test.cc).
//
//   problem       A                              B                                   by hand
//   1_Fixed       incorrect                      incorrect, then correct 1.2x        fixed
//   2_Broken      correct 2.0x                   compile_error                       broken
//   3_OnlyA       correct 1.5x                   -                                   only in A
//   4_OnlyB       -                              correct 1.3x                        only in B
//   5_Faster      correct 0.5x                   correct 2.0x                        B/A 4.0, faster
//   6_Slower      correct 2.0x and 0.8x          correct 1.0x                        B/A 0.5 (best 2.0x), slower
//   7_Same        correct 1.0x                   correct 1.04x                       B/A 1.04, same (within 5%)
//   8_BothWrong   runtime_error                  incorrect                           wrong in both
//
// Geomean of B/A over 5, 6, 7: (4.0 x 0.5 x 1.04)^(1/3) = 2.08^(1/3) = 1.27650086.
// fast_1 over the 8 problems of either: A 2_Broken, 3_OnlyA, 6_Slower = 3/8; B 1_Fixed, 4_OnlyB,
// 5_Faster, 7_Same = 4/8.
#include "report/compare.h"

#include <cmath>
#include <numbers>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "report/budget_tree_test_util.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

using nlohmann::json;
using test_tree::TreeSample;
using test_tree::TreeSettings;

std::vector<TreeSample> SamplesA() {
  return {{"1_Fixed", 1, 1, 1, "incorrect", "value_mismatch"},
          {"2_Broken", 1, 1, 1, "correct", "", 2.0},
          {"3_OnlyA", 1, 1, 1, "correct", "", 1.5},
          {"5_Faster", 1, 1, 1, "correct", "", 0.5},
          {"6_Slower", 1, 1, 1, "correct", "", 2.0},
          {"6_Slower", 2, 1, 2, "correct", "", 0.8},
          {"7_Same", 1, 1, 1, "correct", "", 1.0},
          {"8_BothWrong", 1, 1, 1, "runtime_error", "cuda_error"}};
}

std::vector<TreeSample> SamplesB() {
  return {{"1_Fixed", 1, 1, 1, "incorrect", "value_mismatch"},
          {"1_Fixed", 2, 1, 2, "correct", "", 1.2},
          {"2_Broken", 1, 1, 1, "compile_error", "build_failed"},
          {"4_OnlyB", 1, 1, 1, "correct", "", 1.3},
          {"5_Faster", 1, 1, 1, "correct", "", 2.0},
          {"6_Slower", 1, 1, 1, "correct", "", 1.0},
          {"7_Same", 1, 1, 1, "correct", "", 1.04},
          {"8_BothWrong", 1, 1, 1, "incorrect", "value_mismatch"}};
}

struct Trees {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-compare-");
  fs::path a = root / "a", b = root / "b";
  explicit Trees(const TreeSettings& b_settings = {}) {
    test_tree::WriteTree(a, SamplesA());
    test_tree::WriteTree(b, SamplesB(), b_settings);
  }
  ~Trees() { fs::remove_all(root); }
  Comparison Run() const { return Compare(BuildReport(a), BuildReport(b)); }
};

const ProblemComparison& Find(const Comparison& c, const std::string& name) {
  for (const auto& p : c.problems) {
    if (p.name == name) return p;
  }
  throw std::runtime_error("no problem " + name);
}

TEST(Compare, ProblemsByHand) {
  Trees trees;
  Comparison c = trees.Run();
  ASSERT_EQ(c.problems.size(), 8u);
  std::vector<std::string> order;
  for (const auto& p : c.problems) order.push_back(p.name);
  EXPECT_EQ(order, (std::vector<std::string>{"1_Fixed", "2_Broken", "3_OnlyA", "4_OnlyB", "5_Faster", "6_Slower",
                                             "7_Same", "8_BothWrong"}));

  const auto& fixed = Find(c, "1_Fixed");
  EXPECT_EQ(fixed.change, "fixed");
  EXPECT_EQ(fixed.a->verdict, "incorrect");
  EXPECT_FALSE(fixed.a->speedup);
  EXPECT_EQ(fixed.b->verdict, "correct");
  EXPECT_DOUBLE_EQ(*fixed.b->speedup, 1.2);
  EXPECT_FALSE(fixed.ratio);

  const auto& broken = Find(c, "2_Broken");
  EXPECT_EQ(broken.change, "broken");
  EXPECT_EQ(broken.b->verdict, "compile_error");
  EXPECT_DOUBLE_EQ(*broken.a->speedup, 2.0);

  const auto& only_a = Find(c, "3_OnlyA");
  EXPECT_EQ(only_a.change, "only_a");
  EXPECT_TRUE(only_a.a);
  EXPECT_FALSE(only_a.b);
  const auto& only_b = Find(c, "4_OnlyB");
  EXPECT_EQ(only_b.change, "only_b");
  EXPECT_FALSE(only_b.a);
  EXPECT_EQ(only_b.number, 4);

  const auto& faster = Find(c, "5_Faster");
  EXPECT_EQ(faster.change, "correct_both");
  EXPECT_DOUBLE_EQ(*faster.ratio, 4.0);
  EXPECT_EQ(faster.speed, "faster");
  const auto& slower = Find(c, "6_Slower");
  EXPECT_DOUBLE_EQ(*slower.a->speedup, 2.0);  // the best of 2.0x and 0.8x
  EXPECT_DOUBLE_EQ(*slower.ratio, 0.5);
  EXPECT_EQ(slower.speed, "slower");
  const auto& same = Find(c, "7_Same");
  EXPECT_NEAR(*same.ratio, 1.04, 1e-12);
  EXPECT_EQ(same.speed, "same");  // 4% faster is within the 5% band
  EXPECT_EQ(Find(c, "8_BothWrong").change, "wrong_both");
}

TEST(Compare, SummaryByHand) {
  Trees trees;
  Comparison c = trees.Run();
  EXPECT_EQ(c.in_both, 6);
  EXPECT_EQ(c.only_a, 1);
  EXPECT_EQ(c.only_b, 1);
  EXPECT_EQ(c.correct_both, 3);
  EXPECT_EQ(c.fixed, 1);
  EXPECT_EQ(c.broken, 1);
  EXPECT_EQ(c.wrong_both, 1);
  EXPECT_EQ(c.faster, 1);
  EXPECT_EQ(c.slower, 1);
  EXPECT_EQ(c.same, 1);
  ASSERT_TRUE(c.geomean_ratio);
  EXPECT_NEAR(*c.geomean_ratio, 1.27650086, 1e-8);  // (4.0 x 0.5 x 1.04)^(1/3)
  EXPECT_DOUBLE_EQ(c.fast_1_a, 3.0 / 8);
  EXPECT_DOUBLE_EQ(c.fast_1_b, 4.0 / 8);
  EXPECT_TRUE(c.like_for_like());

  json doc = ComparisonJson(c);
  EXPECT_EQ(doc["a"], trees.a.string());
  EXPECT_EQ(doc["summary"]["problems"], 8);
  EXPECT_EQ(doc["summary"]["fixed"], 1);
  EXPECT_NEAR(doc["summary"]["geomean_ratio"].get<double>(), 1.27650086, 1e-8);
  EXPECT_DOUBLE_EQ(doc["summary"]["fast_1"]["b"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(doc["same_speed_band"].get<double>(), 0.05);
  EXPECT_EQ(doc["like_for_like"], true);
  EXPECT_EQ(doc["problems"][3]["a"], nullptr);  // 4_OnlyB
  EXPECT_EQ(doc["problems"][0]["b"]["verdict"], "correct");
  EXPECT_EQ(doc["problems"][0]["ratio"], nullptr);
  EXPECT_DOUBLE_EQ(doc["problems"][4]["ratio"].get<double>(), 4.0);
  EXPECT_EQ(doc["problems"][4]["speed"], "faster");

  std::string text = ComparisonText(c);
  EXPECT_TRUE(Contains(text, "same: B/A within 5%")) << text;
  EXPECT_TRUE(Contains(text, "1.277x over 3 problems correct in both")) << text;
  EXPECT_TRUE(Contains(text, "fast_1         A 37.5%   B 50.0%")) << text;
  EXPECT_TRUE(Contains(text, "4.000x")) << text;
  EXPECT_FALSE(Contains(text, "Warning")) << text;
  EXPECT_TRUE(c.baseline_fast_1.empty());  // neither run timed a baseline besides eager
  EXPECT_FALSE(Contains(text, "fast_1 vs")) << text;
}

// fast_1 against the other baselines, over the union of problems (4): A is BaselineTreeSamples
// (compile: 1_A 0.8x; cudagraph: 1_A 1.6x, 2_B 2.4x); B below (compile: 1_A 1.5x, 2_B 2.0x;
// cudagraph: 1_A 1.1x). vs compile: A 0/4 (measured 1), B 2/4 (2); vs cudagraph: A 2/4 (2), B 1/4 (1).
TEST(Compare, Fast1AgainstEachBaselineByHand) {
  using test_tree::MeasuredBaseline;
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-compare-baselines-");
  test_tree::WriteTree(root / "a", test_tree::BaselineTreeSamples());
  test_tree::WriteTree(
      root / "b", {{"1_A",
                    1,
                    1,
                    1,
                    "correct",
                    "",
                    2.0,
                    1.0,
                    {{"compile", MeasuredBaseline(1.5, 1.5, 1.33)}, {"cudagraph", MeasuredBaseline(1.1, 1.1, 1.8)}}},
                   {"2_B", 1, 1, 1, "correct", "", 3.0, 1.0, {{"compile", MeasuredBaseline(2.0, 2.0, 1.5)}}},
                   {"3_C", 1, 1, 1, "correct", "", 1.2},
                   {"4_D", 1, 1, 1, "incorrect", "value_mismatch"}});
  Comparison c = Compare(BuildReport(root / "a"), BuildReport(root / "b"));
  ASSERT_EQ(c.baseline_fast_1.size(), 2u);
  const BaselineFast1 &compile = c.baseline_fast_1[0], &graph = c.baseline_fast_1[1];
  EXPECT_EQ(compile.name, "compile");
  EXPECT_DOUBLE_EQ(compile.a, 0.0);
  EXPECT_DOUBLE_EQ(compile.b, 0.5);
  EXPECT_EQ(compile.measured_a, 1);
  EXPECT_EQ(compile.measured_b, 2);
  EXPECT_EQ(graph.name, "cudagraph");
  EXPECT_DOUBLE_EQ(graph.a, 0.5);
  EXPECT_DOUBLE_EQ(graph.b, 0.25);
  EXPECT_EQ(graph.measured_a, 2);
  EXPECT_EQ(graph.measured_b, 1);
  json doc = ComparisonJson(c);
  EXPECT_DOUBLE_EQ(doc["summary"]["fast_1_vs_baselines"]["compile"]["b"].get<double>(), 0.5);
  EXPECT_EQ(doc["summary"]["fast_1_vs_baselines"]["cudagraph"]["measured_a"], 2);
  std::string text = ComparisonText(c);
  EXPECT_TRUE(Contains(text, "fast_1 vs compile   A 0.0%   B 50.0%")) << text;
  EXPECT_TRUE(Contains(text, "fast_1 vs cudagraph A 50.0%   B 25.0%")) << text;
  fs::remove_all(root);
}

// The intervals (speedup_interval.h) of the trees above. Every timing has std 0.01 ms over 100 calls,
// so a median m has log variance u / m^2, u = pi/2 x (0.01 / 10)^2; candidate medians are 1.0 ms and
// reference medians the speedups. Log variance of B/A, the four medians added:
//   5_Faster  A 0.5x: u (1/0.25 + 1)   B 2.0x: u (1/4 + 1)        6.25 u
//   6_Slower  A 2.0x: u (1/4 + 1)      B 1.0x: 2 u                3.25 u
//   7_Same    A 1.0x: 2 u              B 1.04x: u (1/1.0816 + 1)  (3 + 1/1.0816) u
// The bootstrap over 3 problems: all three draws are 6_Slower (B/A 0.5) with chance 1/27 > 2.5%, all
// three 5_Faster (4.0) likewise, so its 95% interval is 0.5 to 4.0 give or take the timing noise.
TEST(Compare, GeomeanIntervalByHand) {
  Trees trees;
  Comparison c = trees.Run();
  const double u = std::numbers::pi / 2 * 1e-6, z = 1.959964;
  const auto& faster = Find(c, "5_Faster");
  ASSERT_TRUE(faster.ratio_interval);
  EXPECT_NEAR(faster.ratio_interval->low, 4.0 * std::exp(-z * std::sqrt(6.25 * u)), 1e-6);
  EXPECT_NEAR(faster.ratio_interval->high, 4.0 * std::exp(z * std::sqrt(6.25 * u)), 1e-6);
  EXPECT_FALSE(Find(c, "1_Fixed").ratio_interval);
  double sum_var = (6.25 + 3.25 + 3 + 1 / 1.0816) * u, half = z * std::sqrt(sum_var) / 3;
  ASSERT_TRUE(c.geomean_timing_interval);
  EXPECT_NEAR(c.geomean_timing_interval->low, 1.27650086 * std::exp(-half), 1e-6);
  EXPECT_NEAR(c.geomean_timing_interval->high, 1.27650086 * std::exp(half), 1e-6);
  ASSERT_TRUE(c.geomean_interval);
  EXPECT_NEAR(c.geomean_interval->low, 0.5, 0.005);
  EXPECT_NEAR(c.geomean_interval->high, 4.0, 0.04);
  EXPECT_EQ(c.ratios_without_spread, 0);
  // Deterministic: the same trees give the same figures, to the bit.
  Comparison again = trees.Run();
  EXPECT_EQ(again.geomean_interval->low, c.geomean_interval->low);
  EXPECT_EQ(again.geomean_interval->high, c.geomean_interval->high);

  json summary = ComparisonJson(c)["summary"]["geomean_ratio_interval"];
  EXPECT_EQ(summary["low"].get<double>(), c.geomean_interval->low);
  EXPECT_EQ(summary["method"], "bootstrap_problems_and_timing");
  EXPECT_EQ(summary["resamples"], kIntervalResamples);
  EXPECT_DOUBLE_EQ(summary["level"].get<double>(), 0.95);
  EXPECT_EQ(summary["timing_only"]["high"].get<double>(), c.geomean_timing_interval->high);
  EXPECT_EQ(ComparisonJson(c)["problems"][4]["ratio_interval"]["low"].get<double>(), faster.ratio_interval->low);
  EXPECT_EQ(ComparisonJson(c)["problems"][0]["ratio_interval"], nullptr);
  std::string text = ComparisonText(c);
  EXPECT_TRUE(Contains(text, fmt::format("  95% interval {:.3f}x to {:.3f}x (bootstrap over problems and timing, "
                                         "10000 resamples, fixed seed); timing alone {:.3f}x to {:.3f}x\n",
                                         c.geomean_interval->low, c.geomean_interval->high,
                                         c.geomean_timing_interval->low, c.geomean_timing_interval->high)))
      << text;
}

// A best sample whose timing lacks std (an older result file) counts without spread, and says so.
TEST(Compare, RatioWithoutTimingStats) {
  Trees trees;
  fs::path path = trees.b / "5_Faster" / "result_1.json";
  json doc = json::parse(*ReadFile(path));
  doc["eval"]["timing"]["candidate"].erase("std_ms");
  WriteFileAtomic(path, doc.dump());
  Comparison c = trees.Run();
  EXPECT_FALSE(Find(c, "5_Faster").ratio_interval);
  EXPECT_TRUE(Find(c, "6_Slower").ratio_interval);
  EXPECT_EQ(c.ratios_without_spread, 1);
  EXPECT_EQ(ComparisonJson(c)["summary"]["geomean_ratio_interval"]["ratios_without_spread"], 1);
  EXPECT_TRUE(Contains(ComparisonText(c), "(1 problem without timing stats, counted without spread)"));
}

TEST(Compare, SameSpeedBand) {
  EXPECT_EQ(SpeedChange(1.0), "same");
  EXPECT_EQ(SpeedChange(1.049), "same");
  EXPECT_EQ(SpeedChange(0.951), "same");
  EXPECT_EQ(SpeedChange(1.051), "faster");
  EXPECT_EQ(SpeedChange(0.949), "slower");
}

TEST(Compare, WarnsWhenTheToleranceRuleDiffers) {
  TreeSettings kernelbench;
  kernelbench.tolerance_rule = "kernelbench";
  Trees trees(kernelbench);
  Comparison c = trees.Run();
  EXPECT_FALSE(c.like_for_like());
  for (const auto& s : c.settings) {
    EXPECT_EQ(s.differs, s.key == "tolerance_rules") << s.key;
  }
  EXPECT_EQ(c.settings[0].a, std::vector<std::string>{"evidence"});
  EXPECT_EQ(c.settings[0].b, std::vector<std::string>{"kernelbench"});
  std::string text = ComparisonText(c);
  EXPECT_TRUE(Contains(text,
                       "Warning: not like for like, the runs were judged or timed differently: "
                       "tolerance rule: A evidence, B kernelbench\n"))
      << text;
  EXPECT_EQ(ComparisonJson(c)["like_for_like"], false);
}

TEST(Compare, WarningNamesEveryDifference) {
  TreeSettings other;
  other.gpu = "NVIDIA H100";
  other.precision = "bf16";
  other.timing_method = "cuda_events";
  Trees trees(other);
  Comparison c = trees.Run();
  std::string text = ComparisonText(c);
  EXPECT_TRUE(Contains(text,
                       "timing method: A cuda_events_launch_hidden_l2_flush, B cuda_events; "
                       "GPU: A NVIDIA H200, B NVIDIA H100; precision: A fp32, B bf16\n"))
      << text;
  EXPECT_FALSE(Contains(text, "tolerance rule:")) << text;
}

}  // namespace
}  // namespace kbrun::report
