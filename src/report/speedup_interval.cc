#include "report/speedup_interval.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>

namespace kbrun::report {

using nlohmann::json;

namespace {

std::optional<double> Number(const json& doc, const char* key) {
  if (!doc.is_object() || !doc.contains(key) || !doc[key].is_number()) return std::nullopt;
  return doc[key].get<double>();
}

// std::normal_distribution and std::uniform_int_distribution differ between standard libraries;
// these do not, so the interval is the same wherever kbrun is built.
struct Draws {
  std::mt19937_64 rng;
  explicit Draws(std::uint64_t seed) : rng(seed) {}
  double Uniform01() { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }  // [0, 1)
  size_t Index(size_t n) { return static_cast<size_t>(rng() % n); }            // bias < n / 2^64
  double Normal() {                                                            // Box-Muller
    double u1 = 1.0 - Uniform01(), u2 = Uniform01();                           // u1 in (0, 1]
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
};

// The q quantile of sorted values, linear between neighbours.
double Quantile(const std::vector<double>& sorted, double q) {
  double at = q * static_cast<double>(sorted.size() - 1);
  size_t i = static_cast<size_t>(std::floor(at));
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (at - static_cast<double>(i)) * (sorted[i + 1] - sorted[i]);
}

}  // namespace

double NormalQuantileTwoSided(double level) {
  // z with P(|Z| <= z) = level, i.e. erf(z / sqrt 2) = level, by bisection.
  double lo = 0, hi = 40;
  for (int i = 0; i < 200; ++i) {
    double mid = (lo + hi) / 2;
    (std::erf(mid / std::numbers::sqrt2) < level ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

std::optional<double> LogMedianVariance(const json& stats) {
  auto median = Number(stats, "median_ms"), sd = Number(stats, "std_ms"), trials = Number(stats, "trials");
  if (!median || !sd || !trials || *median <= 0 || *sd < 0 || *trials < 2) return std::nullopt;
  // Standard error of a median: sqrt(pi / 2) * sigma / sqrt(n); of its log, divided by the median.
  double se = std::sqrt(std::numbers::pi / 2) * *sd / std::sqrt(*trials) / *median;
  return se * se;
}

std::optional<double> LogSpeedupVariance(const json& timing) {
  if (!timing.is_object()) return std::nullopt;
  auto ref = LogMedianVariance(timing.value("reference", json()));
  auto cand = LogMedianVariance(timing.value("candidate", json()));
  if (!ref || !cand) return std::nullopt;
  return *ref + *cand;
}

std::optional<RatioInterval> BootstrapGeomeanInterval(const std::vector<LogRatio>& problems, int resamples,
                                                      std::uint64_t seed, double level) {
  if (problems.empty() || resamples < 2) return std::nullopt;
  Draws draws(seed);
  std::vector<double> sd;
  for (const auto& p : problems) sd.push_back(std::sqrt(std::max(p.variance, 0.0)));
  size_t n = problems.size();
  std::vector<double> means;
  means.reserve(static_cast<size_t>(resamples));
  for (int b = 0; b < resamples; ++b) {
    double sum = 0;
    for (size_t k = 0; k < n; ++k) {
      size_t i = draws.Index(n);
      // The draw is made even where sd is 0, so one problem's spread never shifts the others' draws.
      sum += problems[i].log_ratio + sd[i] * draws.Normal();
    }
    means.push_back(sum / static_cast<double>(n));
  }
  std::sort(means.begin(), means.end());
  double tail = (1 - level) / 2;
  return RatioInterval{std::exp(Quantile(means, tail)), std::exp(Quantile(means, 1 - tail))};
}

std::optional<RatioInterval> TimingOnlyGeomeanInterval(const std::vector<LogRatio>& problems, double level) {
  if (problems.empty()) return std::nullopt;
  double sum = 0, var = 0;
  for (const auto& p : problems) {
    sum += p.log_ratio;
    var += std::max(p.variance, 0.0);
  }
  double n = static_cast<double>(problems.size());
  double mean = sum / n, half = NormalQuantileTwoSided(level) * std::sqrt(var) / n;
  return RatioInterval{std::exp(mean - half), std::exp(mean + half)};
}

RatioInterval TimingOnlyRatioInterval(const LogRatio& problem, double level) {
  double half = NormalQuantileTwoSided(level) * std::sqrt(std::max(problem.variance, 0.0));
  return {std::exp(problem.log_ratio - half), std::exp(problem.log_ratio + half)};
}

}  // namespace kbrun::report
