// `kbrun batch --level 2|3` end to end on the CPU: a fake KernelBench checkout with one problem per
// level, the replay provider answering with a correct candidate; the level's problems only, its
// prompt template, and problems with weights, buffers and init inputs solved.
#include <gtest/gtest.h>

#include <algorithm>

#include "batch/batch_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using namespace batch_test;
using nlohmann::json;

class BatchLevels : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-levels-");
    // The repository's layout: <checkout>/KernelBench/level<L>/N_Name.py.
    fs::path kb = dir_ / "checkout" / "KernelBench";
    fs::create_directories(kb / "level1");
    fs::create_directories(kb / "level2");
    fs::create_directories(kb / "level3");
    fs::copy_file(kData / "problems/1_ScaleAdd.py", kb / "level1/1_ScaleAdd.py");
    fs::copy_file(kData / "problems/4_Gemm_BatchNorm_ReLU.py", kb / "level2/4_Gemm_BatchNorm_ReLU.py");
    fs::copy_file(kData / "problems/5_TinyMLP.py", kb / "level3/5_TinyMLP.py");
    Answer("1_ScaleAdd", "honest_torch_add");
    Answer("4_Gemm_BatchNorm_ReLU", "level2_gemm_bn_relu");
    Answer("5_TinyMLP", "level3_tiny_mlp");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The replay provider's answer for a problem: prose and the candidate in a fenced block.
  void Answer(const std::string& problem, const std::string& candidate) {
    WriteFileAtomic(dir_ / "replay" / (problem + ".txt"),
                    "Here is a faster version.\n\n```python\n" +
                        ReadFileOrThrow(kData / "candidates" / (candidate + ".py")) + "```\n");
  }

  ProcessResult Batch(const fs::path& results, const std::string& problems_dir, int level) {
    auto argv = ReplayArgv(results, dir_ / "replay", 1, 100, {"--samples", "1", "--attempts", "1"});
    auto it = std::find(argv.begin(), argv.end(), "--problems-dir");
    *(it + 1) = problems_dir;
    argv.insert(argv.end(), {"--level", std::to_string(level)});
    return RunKbrun(argv, Environment(false));
  }

  fs::path dir_;
};

TEST_F(BatchLevels, Level2And3OfACheckout) {
  // Level 2 from the checkout's root.
  fs::path r2 = dir_ / "results2";
  ProcessResult p = Batch(r2, (dir_ / "checkout").string(), 2);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_FALSE(fs::exists(r2 / "1_ScaleAdd"));
  json r = ReadJson(r2 / "4_Gemm_BatchNorm_ReLU/result_1.json");
  ASSERT_FALSE(r.is_null()) << p.output;
  EXPECT_EQ(r["status"], "correct") << r.dump(2);
  std::string prompt = ReadFileOrThrow(r2 / "4_Gemm_BatchNorm_ReLU/prompt_1.txt");
  EXPECT_TRUE(Contains(prompt, "KernelBench problem of fused operators")) << prompt.substr(0, 400);
  EXPECT_TRUE(Contains(prompt, "nn.BatchNorm1d(out_features"));  // the problem's source

  // Level 3 from the level-1 folder (KERNELBENCH_DIR=.../level1 as the README sets it): its sibling.
  fs::path r3 = dir_ / "results3";
  p = Batch(r3, (dir_ / "checkout/KernelBench/level1").string(), 3);
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_FALSE(fs::exists(r3 / "1_ScaleAdd"));
  r = ReadJson(r3 / "5_TinyMLP/result_1.json");
  ASSERT_FALSE(r.is_null()) << p.output;
  EXPECT_EQ(r["status"], "correct") << r.dump(2);
  prompt = ReadFileOrThrow(r3 / "5_TinyMLP/prompt_1.txt");
  EXPECT_TRUE(Contains(prompt, "whole network")) << prompt.substr(0, 400);

  // A level the checkout does not have, asked for from a level folder: a usage error naming it.
  p = Batch(dir_ / "results4", (dir_ / "checkout/KernelBench/level1").string(), 4);
  EXPECT_EQ(p.exit_code, 64) << p.output;
  EXPECT_TRUE(Contains(p.output, "level4")) << p.output;
}

}  // namespace
}  // namespace kbrun
