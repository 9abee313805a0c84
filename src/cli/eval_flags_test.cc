// The evaluation flags shared by kbrun eval, batch and serve, parsed in-process.
#include "cli/eval_flags.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace kbrun::cli {
namespace {

// Parses `args` (after the program name) with the eval flags and one positional, as `kbrun batch
// FIRST` has; returns the options, or throws CLI11's error.
eval::EvalOptions Parse(std::vector<std::string> args, int* positional = nullptr) {
  CLI::App app("test");
  EvalFlags f;
  int first = 0;
  app.add_option("first", first);
  AddEvalFlags(app, f);
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  app.parse(args);
  if (positional) *positional = first;
  return ToEvalOptions(f);
}

using Names = std::vector<std::string>;

TEST(EvalFlags, BaselineDefaultsToEagerAlone) { EXPECT_EQ(Parse({}).baselines, Names{"eager"}); }

TEST(EvalFlags, BaselineIsRepeatableAndTakesACommaList) {
  EXPECT_EQ(Parse({"--baseline", "eager", "--baseline", "compile", "--baseline", "cudagraph"}).baselines,
            (Names{"eager", "compile", "cudagraph"}));
  EXPECT_EQ(Parse({"--baseline", "cudagraph,compile"}).baselines, (Names{"eager", "compile", "cudagraph"}));
  EXPECT_EQ(Parse({"--baseline=compile"}).baselines, (Names{"eager", "compile"}));
  // eager is the main measurement: always there, first; repeats count once.
  EXPECT_EQ(Parse({"--baseline", "cudagraph", "--baseline", "cudagraph"}).baselines, (Names{"eager", "cudagraph"}));
}

TEST(EvalFlags, BaselineTakesOneValueSoAPositionalAfterItStaysPositional) {
  int first = 0;
  EXPECT_EQ(Parse({"--baseline", "compile", "7"}, &first).baselines, (Names{"eager", "compile"}));
  EXPECT_EQ(first, 7);
}

TEST(EvalFlags, UnknownBaselineIsAUsageError) {
  EXPECT_THROW(Parse({"--baseline", "max-autotune"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"--baseline", "compile,inductor"}), CLI::ValidationError);
  EXPECT_THROW(Parse({"--baseline"}), CLI::ArgumentMismatch);
}

TEST(EvalFlags, BuildWarmupIsOnForGpuLanesWhereKbrunsBuildCanUseIt) {
  using batch::BuildWarmup;
  eval::EvalOptions o;  // fast builds, PCH; a shared cache:
  o.compile_cache = true;
  std::string warning;
  o.backend = "cuda";
  EXPECT_EQ(ResolveBuildWarmup("auto", true, false, o, warning), BuildWarmup::kCuda);
  EXPECT_EQ(ResolveBuildWarmup("auto", false, false, o, warning), BuildWarmup::kOff);
  EXPECT_EQ(ResolveBuildWarmup("on", false, false, o, warning), BuildWarmup::kCpp);  // C++ builds on the CPU
  EXPECT_EQ(ResolveBuildWarmup("off", true, false, o, warning), BuildWarmup::kOff);
  EXPECT_TRUE(warning.empty()) << warning;
  o.backend = "hip";  // no CUDA split to warm up there
  EXPECT_EQ(ResolveBuildWarmup("auto", true, false, o, warning), BuildWarmup::kCpp);

  // Where it can do nothing it is off, and `on` says why.
  EXPECT_EQ(ResolveBuildWarmup("on", true, true, o, warning), BuildWarmup::kOff);
  EXPECT_NE(warning.find("--evaluator"), std::string::npos) << warning;
  o.compile_cache = false;
  EXPECT_EQ(ResolveBuildWarmup("on", true, false, o, warning), BuildWarmup::kOff);
  EXPECT_NE(warning.find("shared compile cache"), std::string::npos) << warning;
  EXPECT_EQ(ResolveBuildWarmup("auto", true, false, o, warning), BuildWarmup::kOff);
  EXPECT_TRUE(warning.empty()) << "auto does not warn: " << warning;
}

}  // namespace
}  // namespace kbrun::cli
