// Lane seconds per evaluation: quantiles, evaluations per GPU-hour and the Prometheus histogram.
#include "batch/lane_cost.h"

#include <gtest/gtest.h>

#include "util/text.h"

namespace kbrun::batch {
namespace {

TEST(LaneCost, QuantilesInterpolateBetweenClosestRanks) {
  EXPECT_FALSE(Quantile({}, 0.5).has_value());
  EXPECT_DOUBLE_EQ(*Quantile({4.0}, 0.9), 4.0);
  EXPECT_DOUBLE_EQ(*Quantile({3.0, 1.0, 2.0}, 0.5), 2.0);
  EXPECT_DOUBLE_EQ(*Quantile({4.0, 1.0, 2.0, 3.0}, 0.5), 2.5);  // mean of the middle two
  // p90 of 1..11: rank 0.9 x 10 = 9, the 10th value.
  EXPECT_DOUBLE_EQ(*Quantile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 0.9), 10.0);
  // p90 of 1, 2, 4, 8: rank 2.7, 4 + 0.7 x (8 - 4).
  EXPECT_DOUBLE_EQ(*Quantile({8, 1, 4, 2}, 0.9), 6.8);
}

TEST(LaneCost, PerGpuHourIsEvaluationsOverLaneHoursUsed) {
  LaneCost c = SummarizeLaneSeconds({1.0, 2.0, 3.0, 6.0});
  EXPECT_EQ(c.evaluations, 4);
  EXPECT_DOUBLE_EQ(c.lane_s, 12.0);
  EXPECT_DOUBLE_EQ(*c.median_s, 2.5);
  EXPECT_DOUBLE_EQ(*c.p90_s, 3.0 + 0.7 * 3.0);
  EXPECT_DOUBLE_EQ(*c.per_gpu_hour, 1200.0);  // 3600 / the mean of 3 s
  LaneCost none = SummarizeLaneSeconds({});
  EXPECT_EQ(none.evaluations, 0);
  EXPECT_FALSE(none.median_s || none.p90_s || none.per_gpu_hour);
  EXPECT_FALSE(EvaluationsPerGpuHour(3, 0).has_value());
}

TEST(LaneCost, HistogramIsCumulativeWithInfSumAndCount) {
  LaneSecondsHistogram h;
  for (double s : {0.2, 0.5, 1.2, 1.5, 400.0}) h.Add(s);
  std::string text = h.PrometheusText("x_lane_seconds", "Lane seconds.");
  EXPECT_TRUE(Contains(text, "# TYPE x_lane_seconds histogram\n")) << text;
  EXPECT_TRUE(Contains(text, "x_lane_seconds_bucket{le=\"0.25\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "x_lane_seconds_bucket{le=\"0.5\"} 2\n")) << text;  // le: <= the bound
  EXPECT_TRUE(Contains(text, "x_lane_seconds_bucket{le=\"1\"} 2\n")) << text;
  EXPECT_TRUE(Contains(text, "x_lane_seconds_bucket{le=\"1.5\"} 4\n")) << text;
  EXPECT_TRUE(Contains(text, "x_lane_seconds_bucket{le=\"300\"} 4\n")) << text;
  EXPECT_TRUE(Contains(text, "x_lane_seconds_bucket{le=\"+Inf\"} 5\n")) << text;
  EXPECT_TRUE(Contains(text, "x_lane_seconds_sum 403.400\n")) << text;
  EXPECT_TRUE(Contains(text, "x_lane_seconds_count 5\n")) << text;
}

}  // namespace
}  // namespace kbrun::batch
