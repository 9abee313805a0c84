// What GPU-lane time evaluations cost: the median and p90 lane seconds per evaluation and
// evaluations per GPU-hour (docs/SCALING.md "GPU-lane time per evaluation"). The report
// computes it over a results tree's samples; kbrun serve's /metrics keeps a histogram of the
// same seconds.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kbrun::batch {

struct LaneCost {
  int evaluations = 0;                    // evaluations that held a GPU lane
  double lane_s = 0;                      // the lane seconds they held, their discarded runs included
  std::optional<double> median_s, p90_s;  // lane seconds per evaluation; nullopt without evaluations
  // evaluations / lane-hours used = 3600 / the mean lane seconds per evaluation; nullopt
  // without evaluations or lane time.
  std::optional<double> per_gpu_hour;
  // Runs discarded after a lane failure (docs/RESULTS.md "Lane failures") whose lane time is
  // known, and their seconds: part of lane_s and of their evaluation's seconds.
  int discarded_runs = 0;
  double discarded_s = 0;
};

// The q-quantile (0 <= q <= 1) of `values` by linear interpolation between the closest ranks
// (numpy's default; the median of an even count is the mean of the middle two); nullopt when
// empty.
std::optional<double> Quantile(std::vector<double> values, double q);

// The figures over one entry per evaluation: the lane seconds it held.
LaneCost SummarizeLaneSeconds(const std::vector<double>& seconds_per_evaluation);

// "median 1.20 s (p90 2.05 s) of GPU-lane time per evaluation over 40, 3000 evaluations per
// GPU-hour" (the report's text, kbrun batch's last lines); "no evaluation held a GPU lane".
std::string LaneCostText(const LaneCost& cost);

// Evaluations per GPU-hour for `evaluations` that held lanes for `lane_s` seconds in all;
// nullopt when either is not positive.
std::optional<double> EvaluationsPerGpuHour(double evaluations, double lane_s);

// A Prometheus histogram of lane seconds per evaluation (kbrun serve's /metrics): cumulative
// buckets at kLaneSecondsBuckets and +Inf, the sum and the count. Not thread-safe.
inline const std::vector<double> kLaneSecondsBuckets = {0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300};
class LaneSecondsHistogram {
 public:
  void Add(double seconds);
  long long count() const { return count_; }
  double sum() const { return sum_; }
  // `name`_bucket{le="..."}, `name`_sum and `name`_count with their HELP and TYPE lines.
  std::string PrometheusText(const std::string& name, const std::string& help) const;

 private:
  std::vector<long long> buckets_ = std::vector<long long>(kLaneSecondsBuckets.size(), 0);  // not cumulative
  long long count_ = 0;
  double sum_ = 0;
};

}  // namespace kbrun::batch
