// The confidence interval of kbrun compare's geometric mean of B/A (docs/RESULTS.md "kbrun compare",
// "The interval of the geomean B/A"), from what result.json stores of each timing: the median, std,
// and number of timed calls of the candidate and of the reference (no per-call samples are stored).
//
// Per problem, the log of B/A is log(sB) - log(sA), each speedup s = reference median / candidate
// median. The variance of a median's log is estimated as (sqrt(pi/2) * std / sqrt(trials) / median)^2
// (the large-sample standard error of a median under a normal spread, std from the stored stats), and
// the four medians of a problem are taken as independent, so the variances add.
// The interval is a percentile bootstrap with a fixed seed: each resample draws the problems with
// replacement and each drawn problem's log ratio from a normal with its timing variance; the mean log
// ratio's 2.5% and 97.5% quantiles, exponentiated. It covers both which problems were in the set and
// the timing noise. The timing-only interval (the problems fixed) is exp(mean +- z * sqrt(sum var) / n).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

namespace kbrun::report {

inline constexpr int kIntervalResamples = 10000;
inline constexpr std::uint64_t kIntervalSeed = 0x6b6272756eULL;  // "kbrun"
inline constexpr double kIntervalLevel = 0.95;

// One timing object of result.json (timing.candidate / timing.reference: median_ms, std_ms,
// trials): the variance of log(median); nullopt when one of the three is missing, the median is
// not positive or trials < 2.
std::optional<double> LogMedianVariance(const nlohmann::json& stats);

// The variance of log(speedup) of one sample from its eval.timing (reference and candidate);
// nullopt unless both sides have one.
std::optional<double> LogSpeedupVariance(const nlohmann::json& timing);

// One problem correct in both runs: log(B/A) and its timing variance (0 when unknown).
struct LogRatio {
  double log_ratio = 0;
  double variance = 0;
};

struct RatioInterval {
  double low = 0, high = 0;
};

// The percentile bootstrap over problems and timing described above; nullopt for no problems.
std::optional<RatioInterval> BootstrapGeomeanInterval(const std::vector<LogRatio>& problems,
                                                      int resamples = kIntervalResamples,
                                                      std::uint64_t seed = kIntervalSeed,
                                                      double level = kIntervalLevel);
// Timing noise alone, the problems fixed: exp(mean +- z * sqrt(sum variance) / n).
std::optional<RatioInterval> TimingOnlyGeomeanInterval(const std::vector<LogRatio>& problems,
                                                       double level = kIntervalLevel);
// One problem's B/A from its timing alone: exp(log_ratio +- z * sqrt(variance)).
RatioInterval TimingOnlyRatioInterval(const LogRatio& problem, double level = kIntervalLevel);

// The two-sided normal quantile for `level` (0.95 -> 1.959964).
double NormalQuantileTwoSided(double level);

}  // namespace kbrun::report
