// The profile digest of a sample evaluated with --profile reaches the next attempt's
// reflection prompt, unless the prompt configuration turns it off.
#include <gtest/gtest.h>

#include "batch/prompt_builder.h"
#include "batch/reflection.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::batch {
namespace {

using nlohmann::json;

const char* kDigest =
    "Profile (ncu, one call each): your ModelNew ran 4 kernels in 612.0 us of kernel time; the PyTorch reference ran 1 "
    "kernel in 430.0 us. You launch 4 kernels where the reference launches 1: fuse them.\n"
    "Slowest kernel of yours, relu_kernel: 380.0 us (62% of its kernel time), memory-bound (memory 40%, DRAM 38%, SM "
    "9% of peak); occupancy 45% achieved of 50% possible, 64 registers/thread, grid 1024, block 256";

SampleRecord SlowProfiledSample() {
  eval::EvalResult e;
  e.status = eval::Status::kCorrect;
  e.correct = e.compiled = true;
  e.speedup = 0.7;
  e.json = {{"timing", {{"reference", {{"median_ms", 0.43}}}, {"candidate", {{"median_ms", 0.61}, {"trials", 100}}}}},
            {"profile", {{"status", "ok"}, {"summary", kDigest}}}};
  SampleExtras extras;
  extras.target_speedup = 1.0;
  extras.has_code = true;
  return MakeRecord({"19_ReLU", 1, 1, 1}, &e, "", "", extras);
}

fs::path PromptSet(bool reflection_profile) {
  fs::path dir = fs::temp_directory_path() / (reflection_profile ? "kbrun-refl-prof-on" : "kbrun-refl-prof-off");
  fs::create_directories(dir);
  WriteFileAtomic(dir / "generic.txt", "Solve {{problem_name}}.\n");
  WriteFileAtomic(dir / "reflection.txt", "Previous:\n{{previous_code}}\nReport:\n{{feedback}}\nHints:\n{{hints}}\n");
  json config = {{"default_prompt", "generic.txt"}, {"reflection_prompt", "reflection.txt"}};
  if (!reflection_profile) config["reflection_profile"] = false;
  WriteFileAtomic(dir / "config.json", config.dump(2));
  WriteFileAtomic(dir / "19_ReLU.py", "# problem\n");
  return dir;
}

TEST(ReflectionProfile, DigestOfAProfiledSample) {
  SampleRecord r = SlowProfiledSample();
  EXPECT_EQ(r.failure_kind, "PERFORMANCE TOO SLOW");
  std::string text = ProfileFeedbackFor(r);
  EXPECT_TRUE(StartsWith(text, "Profile of that answer")) << text;
  EXPECT_TRUE(Contains(text, "memory-bound (memory 40%, DRAM 38%")) << text;
  // A sample without a profile (or with an unavailable one) adds nothing.
  r.doc["eval"]["profile"] = {{"status", "unavailable"}, {"note", "no GPU"}, {"summary", nullptr}};
  EXPECT_EQ(ProfileFeedbackFor(r), "");
}

TEST(ReflectionProfile, NextAttemptsPromptCarriesTheDigest) {
  fs::path dir = PromptSet(true);
  PromptBuilder builder(prompts::PromptConfig::Load(dir / "config.json"), PromptContext{});
  Problem problem{19, "19_ReLU", dir / "19_ReLU.py"};
  std::string prompt = builder.Reflection(problem, SlowProfiledSample(), "class ModelNew: pass");
  EXPECT_TRUE(Contains(prompt, "PERFORMANCE TOO SLOW")) << prompt;
  EXPECT_TRUE(Contains(prompt, "You launch 4 kernels where the reference launches 1: fuse them.")) << prompt;
  EXPECT_TRUE(Contains(prompt, "relu_kernel: 380.0 us (62% of its kernel time), memory-bound")) << prompt;
  // The digest sits in the report section, before the hints.
  EXPECT_LT(prompt.find("relu_kernel"), prompt.find("Hints:")) << prompt;
}

TEST(ReflectionProfile, ConfigCanTurnItOff) {
  fs::path dir = PromptSet(false);
  auto config = prompts::PromptConfig::Load(dir / "config.json");
  EXPECT_FALSE(config.reflection_profile());
  PromptBuilder builder(config, PromptContext{});
  Problem problem{19, "19_ReLU", dir / "19_ReLU.py"};
  std::string prompt = builder.Reflection(problem, SlowProfiledSample(), "class ModelNew: pass");
  EXPECT_TRUE(Contains(prompt, "PERFORMANCE TOO SLOW")) << prompt;
  EXPECT_FALSE(Contains(prompt, "relu_kernel")) << prompt;
  // The shipped configuration turns it on.
  EXPECT_TRUE(prompts::PromptConfig::Load(fs::path(KBRUN_SOURCE_DIR) / "prompts/config.json").reflection_profile());
}

}  // namespace
}  // namespace kbrun::batch
