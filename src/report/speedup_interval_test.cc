// The interval of kbrun compare's geomean B/A (speedup_interval.h), against figures worked out by hand.
#include "report/speedup_interval.h"

#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

namespace kbrun::report {
namespace {

using nlohmann::json;

TEST(SpeedupInterval, NormalQuantile) {
  EXPECT_NEAR(NormalQuantileTwoSided(0.95), 1.959964, 1e-6);
  EXPECT_NEAR(NormalQuantileTwoSided(0.90), 1.644854, 1e-6);
  EXPECT_NEAR(NormalQuantileTwoSided(0.99), 2.575829, 1e-6);
}

TEST(SpeedupInterval, LogMedianVarianceFromTheStoredStats) {
  // sqrt(pi/2) * 0.2 / sqrt(100) / 2.0 = 0.0125331; squared 1.5708e-4.
  json stats = {{"median_ms", 2.0}, {"mean_ms", 2.1}, {"std_ms", 0.2}, {"trials", 100}};
  ASSERT_TRUE(LogMedianVariance(stats));
  EXPECT_NEAR(*LogMedianVariance(stats), std::numbers::pi / 2 * 1e-4, 1e-12);
  EXPECT_FALSE(LogMedianVariance(json{{"median_ms", 2.0}, {"trials", 100}}));  // no std
  EXPECT_FALSE(LogMedianVariance(json{{"median_ms", 2.0}, {"std_ms", 0.2}, {"trials", 1}}));
  EXPECT_FALSE(LogMedianVariance(json{{"median_ms", 0.0}, {"std_ms", 0.2}, {"trials", 100}}));
  EXPECT_FALSE(LogMedianVariance(json()));
  // A speedup's: the reference's and the candidate's added.
  json timing = {{"reference", stats}, {"candidate", {{"median_ms", 1.0}, {"std_ms", 0.1}, {"trials", 100}}}};
  EXPECT_NEAR(*LogSpeedupVariance(timing), 2 * std::numbers::pi / 2 * 1e-4, 1e-12);
  EXPECT_FALSE(LogSpeedupVariance(json{{"reference", stats}, {"candidate", nullptr}}));
}

TEST(SpeedupInterval, NoSpreadAndOneValueIsAPoint) {
  std::vector<LogRatio> same(5, LogRatio{std::log(1.5), 0});
  auto i = BootstrapGeomeanInterval(same);
  ASSERT_TRUE(i);
  EXPECT_NEAR(i->low, 1.5, 1e-12);
  EXPECT_NEAR(i->high, 1.5, 1e-12);
  EXPECT_FALSE(BootstrapGeomeanInterval({}));
  EXPECT_FALSE(TimingOnlyGeomeanInterval({}));
}

// One problem: only its timing varies, so the bootstrap gives the normal interval of its log ratio,
// 2 x exp(+-1.96 x 0.1) = [1.6445, 2.4323], to within the quantiles' sampling error.
TEST(SpeedupInterval, OneProblemIsItsTimingInterval) {
  std::vector<LogRatio> one = {{std::log(2.0), 0.01}};
  auto boot = BootstrapGeomeanInterval(one);
  ASSERT_TRUE(boot);
  EXPECT_NEAR(boot->low, 1.6445, 0.02);
  EXPECT_NEAR(boot->high, 2.4323, 0.03);
  auto exact = TimingOnlyGeomeanInterval(one);
  EXPECT_NEAR(exact->low, 2 * std::exp(-1.959964 * 0.1), 1e-6);
  EXPECT_NEAR(exact->high, 2 * std::exp(1.959964 * 0.1), 1e-6);
  RatioInterval r = TimingOnlyRatioInterval(one[0]);
  EXPECT_DOUBLE_EQ(r.low, exact->low);
}

// 400 problems, log ratios +-0.1 in turn and no timing spread: the mean's standard error is
// 0.1 / sqrt(400) = 0.005, so the interval is exp(+-1.96 x 0.005) = [0.99025, 1.00985].
TEST(SpeedupInterval, ManyProblemsGiveTheMeansStandardError) {
  std::vector<LogRatio> problems;
  for (int i = 0; i < 400; ++i) problems.push_back({i % 2 ? 0.1 : -0.1, 0});
  auto boot = BootstrapGeomeanInterval(problems);
  ASSERT_TRUE(boot);
  EXPECT_NEAR(std::log(boot->low), -0.0098, 0.0008);
  EXPECT_NEAR(std::log(boot->high), 0.0098, 0.0008);
  // Timing alone: no spread, a point at the geomean (1.0).
  auto timing = TimingOnlyGeomeanInterval(problems);
  EXPECT_NEAR(timing->low, 1.0, 1e-12);
  EXPECT_NEAR(timing->high, 1.0, 1e-12);
}

TEST(SpeedupInterval, FixedSeedIsDeterministicAndTheSeedMatters) {
  std::vector<LogRatio> problems = {{0.3, 0.01}, {-0.2, 0.02}, {0.05, 0.0}, {0.4, 0.005}};
  auto a = BootstrapGeomeanInterval(problems), b = BootstrapGeomeanInterval(problems);
  EXPECT_EQ(a->low, b->low);
  EXPECT_EQ(a->high, b->high);
  auto other = BootstrapGeomeanInterval(problems, kIntervalResamples, kIntervalSeed + 1);
  EXPECT_NE(a->low, other->low);
  EXPECT_NEAR(a->low, other->low, 0.02);  // another seed, the same interval to within its noise
  double geomean = std::exp((0.3 - 0.2 + 0.05 + 0.4) / 4);
  EXPECT_LT(a->low, geomean);
  EXPECT_GT(a->high, geomean);
}

}  // namespace
}  // namespace kbrun::report
