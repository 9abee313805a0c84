// `kbrun compare A B`: two batches' results side by side (two models, two prompt sets, before and
// after a change), from the reports BuildReport makes of each (docs/RESULTS.md "kbrun compare").
// Measuring (Compare) is apart from printing (ComparisonJson, ComparisonText).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/report.h"
#include "report/speedup_interval.h"

namespace kbrun::report {

// B's best speedup within this fraction of A's (0.95 <= B/A <= 1.05) counts as the same speed.
inline constexpr double kSameSpeedBand = 0.05;

// "faster" (B/A > 1 + band), "slower" (B/A < 1 - band) or "same".
std::string SpeedChange(double ratio);

// One run's view of a problem: its best sample, the same pick as the report's.
struct CompareSide {
  std::string verdict;  // the best sample's status; the report's status when it has none
  bool correct = false;
  std::optional<double> speedup;  // the best correct sample's speedup
  // The best correct sample's speedups over the other baselines it measured (compile, cudagraph).
  std::map<std::string, double> baseline_speedups;
  // The variance of log(speedup) of the best correct sample from its timing stats
  // (LogSpeedupVariance); nullopt when they lack the median, std or trials.
  std::optional<double> log_speedup_variance;
};

// fast_1 against a baseline besides eager (correct and speedup over it > 1), over the union of
// the two runs' problems; `measured`: problems whose best kernel has it measured, in each run.
struct BaselineFast1 {
  std::string name;
  double a = 0, b = 0;
  int measured_a = 0, measured_b = 0;
};

struct ProblemComparison {
  std::string name;
  int number = 0;
  std::optional<CompareSide> a, b;  // nullopt: the problem is not in that run
  std::optional<double> ratio;      // B / A of the best speedups, when correct in both
  // With the ratio: its interval from the two runs' timing alone (TimingOnlyRatioInterval); nullopt
  // when either best sample lacks timing stats.
  std::optional<RatioInterval> ratio_interval;
  // only_a | only_b | correct_both | fixed (wrong in A, correct in B) | broken (correct in A,
  // wrong in B) | wrong_both
  std::string change;
  std::string speed;  // correct_both: faster | slower | same (SpeedChange); else empty
};

// How each run was judged or timed, as its report recorded it: every value seen in its samples
// (or its summary.json, for precision). `differs` when both recorded some and they are not the same.
struct CompareSetting {
  std::string key;    // tolerance_rules | timing_methods | devices | precision (the report's names)
  std::string label;  // tolerance rule | timing method | GPU | precision
  std::vector<std::string> a, b;
  bool differs = false;
};

struct Comparison {
  std::string a_dir, b_dir;
  std::vector<ProblemComparison> problems;  // by number, then name
  int in_both = 0, only_a = 0, only_b = 0;
  int correct_both = 0, fixed = 0, broken = 0, wrong_both = 0;
  int faster = 0, slower = 0, same = 0;  // among correct_both
  std::optional<double> geomean_ratio;   // of B/A over the problems correct in both
  // Its 95% interval (speedup_interval.h; docs/RESULTS.md "The interval of the geomean B/A"): the
  // bootstrap over problems and timing, and the timing noise alone. Problems whose timing lacks the
  // stats count with no timing spread (`ratios_without_spread` of them).
  std::optional<RatioInterval> geomean_interval, geomean_timing_interval;
  int ratios_without_spread = 0;
  double fast_1_a = 0, fast_1_b = 0;           // correct and speedup > 1, over the union of problems
  std::vector<BaselineFast1> baseline_fast_1;  // the same against each other baseline either run measured
  std::vector<CompareSetting> settings;
  // False when a setting differs: the speedups were not measured (or judged) alike.
  bool like_for_like() const;
};

// The change column's words: "only in A", "fixed", ..., "B faster", "same speed".
std::string ChangeText(const ProblemComparison& p);

Comparison Compare(const Report& a, const Report& b);
nlohmann::json ComparisonJson(const Comparison& c);
std::string ComparisonText(const Comparison& c);

}  // namespace kbrun::report
