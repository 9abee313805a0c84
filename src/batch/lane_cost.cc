// GPU-lane time per evaluation (lane_cost.h).
#include "batch/lane_cost.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace kbrun::batch {

std::optional<double> Quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::nullopt;
  std::sort(values.begin(), values.end());
  double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  auto lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, values.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

std::optional<double> EvaluationsPerGpuHour(double evaluations, double lane_s) {
  if (evaluations <= 0 || lane_s <= 0) return std::nullopt;
  return evaluations * 3600.0 / lane_s;
}

std::string LaneCostText(const LaneCost& c) {
  if (c.evaluations == 0 || !c.median_s || !c.p90_s) return "no evaluation held a GPU lane";
  std::string out = fmt::format("median {:.2f} s (p90 {:.2f} s) of GPU-lane time per evaluation over {}, {}",
                                *c.median_s, *c.p90_s, c.evaluations,
                                c.per_gpu_hour ? fmt::format("{:.0f} evaluations per GPU-hour", *c.per_gpu_hour)
                                               : std::string("evaluations per GPU-hour unknown"));
  if (c.discarded_runs > 0) {
    out += fmt::format(" ({:.2f} s of {} run{} discarded after a lane failure included)", c.discarded_s,
                       c.discarded_runs, c.discarded_runs == 1 ? "" : "s");
  }
  return out;
}

LaneCost SummarizeLaneSeconds(const std::vector<double>& seconds_per_evaluation) {
  LaneCost c;
  c.evaluations = static_cast<int>(seconds_per_evaluation.size());
  c.lane_s = std::accumulate(seconds_per_evaluation.begin(), seconds_per_evaluation.end(), 0.0);
  c.median_s = Quantile(seconds_per_evaluation, 0.5);
  c.p90_s = Quantile(seconds_per_evaluation, 0.9);
  c.per_gpu_hour = EvaluationsPerGpuHour(c.evaluations, c.lane_s);
  return c;
}

void LaneSecondsHistogram::Add(double seconds) {
  seconds = std::max(0.0, seconds);
  for (size_t i = 0; i < kLaneSecondsBuckets.size(); ++i) {
    if (seconds <= kLaneSecondsBuckets[i]) {
      ++buckets_[i];
      break;
    }
  }
  ++count_;
  sum_ += seconds;
}

std::string LaneSecondsHistogram::PrometheusText(const std::string& name, const std::string& help) const {
  std::string out = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  long long cumulative = 0;
  for (size_t i = 0; i < kLaneSecondsBuckets.size(); ++i) {
    cumulative += buckets_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kLaneSecondsBuckets[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, count_);
  out += fmt::format("{}_sum {:.3f}\n{}_count {}\n", name, sum_, name, count_);
  return out;
}

}  // namespace kbrun::batch
