// Which settings a resumed batch may not change silently (batch/batch_settings.h).
#include "batch/batch_settings.h"

#include <gtest/gtest.h>

namespace kbrun::batch {
namespace {

using nlohmann::json;

json Config() {
  return {{"samples", 2},     {"attempts", 3},   {"tolerance", "evidence"}, {"shapes", "fixed"},
          {"warmup_runs", 5}, {"atol", nullptr}, {"llm_concurrency", 4},    {"precision", "fp32"}};
}

TEST(PlanSettings, JudgingRulesArePartOfThePlan) {
  json after = Config();
  after["tolerance"] = "kernelbench";
  after["shapes"] = "varied";
  auto changes = PlanSettingChanges(Config(), after);
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(DescribeChanges(changes), "tolerance: \"evidence\" -> \"kernelbench\"; shapes: \"fixed\" -> \"varied\"");
}

TEST(PlanSettings, PacingIsNotPartOfThePlan) {
  json after = Config();
  after["llm_concurrency"] = 16;
  EXPECT_TRUE(PlanSettingChanges(Config(), after).empty());
}

// A folder written before a setting existed resumes without a word about it.
TEST(PlanSettings, KeysAnOlderFolderLacksAreNotChanges) {
  json before = Config();
  before.erase("tolerance");
  json after = Config();
  after["tolerance"] = "kernelbench";
  EXPECT_TRUE(PlanSettingChanges(before, after).empty());
}

}  // namespace
}  // namespace kbrun::batch
