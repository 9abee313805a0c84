// The judge's defences (docs/EVALUATION.md "Timing" and "What decides the verdict"), through
// the real binary: nothing a candidate does in its own process reaches the reference
// (tests/cheats/17_*), a candidate that remembers its last answer is caught
// (tests/cheats/18_*), and every timed call is checked.
#include <gtest/gtest.h>

#include <regex>

#include "eval/eval_test_util.h"

namespace kbrun {
namespace {

std::string CaseName(const ::testing::TestParamInfo<const char*>& info) {
  return std::regex_replace(info.param, std::regex("[^A-Za-z0-9]"), "_");
}

// Each fixture is the honest torch.add candidate plus a way to slow the reference by ~10 ms a
// call (its forward takes ~0.1 ms here): if it reached the reference, the speedup would be
// far above 10.
class SlowsTheReference : public ::testing::TestWithParam<const char*> {};

TEST_P(SlowsTheReference, IsTimedAtItsHonestSpeed) {
  auto r = RunEvalIn("cheats", GetParam(), {"--allow-library-kernels"});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  ASSERT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  EXPECT_LT(r.result["speedup"].get<double>(), 3.0) << r.result["timing"].dump(2);
  EXPECT_LT(r.result["timing"]["reference"]["median_ms"].get<double>(), 5.0) << r.result["timing"].dump(2);
}

INSTANTIATE_TEST_SUITE_P(Cheats, SlowsTheReference,
                         ::testing::Values("17_slowref_patches_operators", "17_slowref_patches_problem",
                                           "17_slowref_dispatcher_override", "17_slowref_global_hook"),
                         CaseName);

class RemembersTheAnswer : public ::testing::TestWithParam<const char*> {};

TEST_P(RemembersTheAnswer, IsIncorrect) {
  auto r = RunEvalIn("cheats", GetParam(), {"--allow-library-kernels"});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_EQ(r.result["status"], "incorrect") << r.result.dump(2).substr(0, 3000);
  ASSERT_TRUE(r.result["error"].is_object()) << r.result.dump(2).substr(0, 3000);
  const std::string category = r.result["error"]["category"];
  EXPECT_TRUE(category == "timed_output_mismatch" || category == "value_mismatch") << category;
  EXPECT_EQ(r.exit_code, 2);
}

INSTANTIATE_TEST_SUITE_P(Cheats, RemembersTheAnswer,
                         ::testing::Values("18_memo_by_pointer", "18_memo_by_pointer_and_shape",
                                           "18_memo_by_sampled_values", "18_memo_by_checksum"),
                         CaseName);

TEST(Judge, EveryTimedCallIsCheckedAndTheReferenceIsTimedByTheChecker) {
  auto r = RunEvalIn("candidates", "honest_torch_add", {"--allow-library-kernels"});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  ASSERT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  const auto& timing = r.result["timing"];
  EXPECT_EQ(timing["method"], "wall_clock_cache_flush") << timing.dump(2);
  EXPECT_EQ(timing["checked_timed_calls"], 10);
  EXPECT_EQ(timing["candidate"]["trials"], 10);
  EXPECT_EQ(timing["reference"]["trials"], 10);
  const auto& checker = r.result["correctness"]["checker"];
  EXPECT_EQ(checker["checks"]["timed"]["passed"], 10) << checker.dump(2);
  EXPECT_EQ(checker["checks"]["warmup"]["passed"], 5) << checker.dump(2);
  // The reference's figures are the checker's own.
  EXPECT_EQ(checker["timing"]["wall_clock_cache_flush"]["median_ms"], timing["reference"]["median_ms"]);
  // Speedup = reference median / candidate median, both as recorded.
  EXPECT_NEAR(r.result["speedup"].get<double>(),
              timing["reference"]["median_ms"].get<double>() / timing["candidate"]["median_ms"].get<double>(), 1e-9);
}

}  // namespace
}  // namespace kbrun
