// Pure parts of kbrun serve: the per-evaluation option overrides and the token comparison
// (the service end to end is serve_test.cc).
#include <gtest/gtest.h>

#include "serve/server.h"
#include "serve/service.h"

namespace kbrun {
namespace {

using nlohmann::json;

TEST(ServeOptions, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(serve::ConstantTimeEquals("Bearer abc", "Bearer abc"));
  EXPECT_FALSE(serve::ConstantTimeEquals("Bearer abd", "Bearer abc"));
  EXPECT_FALSE(serve::ConstantTimeEquals("Bearer ab", "Bearer abc"));
  EXPECT_FALSE(serve::ConstantTimeEquals("Bearer abcabc", "Bearer abc"));
  EXPECT_FALSE(serve::ConstantTimeEquals("", "Bearer abc"));
}

TEST(ServeOptions, OverridesAreCheckedAndApplied) {
  eval::EvalOptions o;
  double target = 1.0;
  EXPECT_EQ(serve::ApplyOverrides({{"correct_trials", 3}, {"perf_trials", 7}, {"seed", 42}, {"target_speedup", 1.5}}, o,
                                  target),
            "");
  EXPECT_EQ(o.correctness_trials, 3);
  EXPECT_EQ(o.timing_trials, 7);
  EXPECT_EQ(o.seed, 42u);
  EXPECT_EQ(target, 1.5);
  EXPECT_EQ(serve::ApplyOverrides({{"atol", 1e-3}}, o, target), "");
  EXPECT_EQ(o.tolerance, "fixed");
  EXPECT_NE(serve::ApplyOverrides({{"python", "/bin/sh"}}, o, target).find("unknown option 'python'"),
            std::string::npos);
  EXPECT_NE(serve::ApplyOverrides({{"correct_trials", 0}}, o, target), "");
  EXPECT_NE(serve::ApplyOverrides({{"precision", "fp8"}}, o, target), "");
  EXPECT_NE(serve::ApplyOverrides({{"tolerance", "evidence"}, {"atol", 1e-3}}, o, target), "");
  EXPECT_NE(serve::ApplyOverrides(json::array(), o, target), "");
}

// options.baselines: names from --baseline's list, eager always kept and first, repeats dropped;
// anything else is refused and leaves the options as they were.
TEST(ServeOptions, BaselinesAreCheckedAndNormalized) {
  eval::EvalOptions o;
  double target = 1.0;
  EXPECT_EQ(serve::ApplyOverrides({{"baselines", {"cudagraph", "compile", "cudagraph"}}}, o, target), "");
  EXPECT_EQ(o.baselines, (std::vector<std::string>{"eager", "compile", "cudagraph"}));
  EXPECT_EQ(serve::ApplyOverrides({{"baselines", json::array()}}, o, target), "");
  EXPECT_EQ(o.baselines, (std::vector<std::string>{"eager"}));
  o.baselines = {"eager", "compile"};
  for (const json& bad : {json("compile"), json({"compile", "max-autotune"}), json({1}), json(nullptr)}) {
    EXPECT_EQ(serve::ApplyOverrides({{"baselines", bad}}, o, target),
              "options.baselines must be an array of eager, compile, cudagraph")
        << bad.dump();
    EXPECT_EQ(o.baselines, (std::vector<std::string>{"eager", "compile"})) << bad.dump();
  }
}

}  // namespace
}  // namespace kbrun
