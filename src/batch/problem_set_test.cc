// Which folder of problems a batch runs: a plain folder, a KernelBench checkout and a level, or
// one level folder of a checkout with another level asked for.
#include "batch/problem_set.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "util/fs.h"

namespace kbrun::batch {
namespace {

class ProblemSetTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-problem-set-"); }
  void TearDown() override { fs::remove_all(dir_); }
  void Problem(const fs::path& folder, const std::string& file) {
    WriteFileAtomic(folder / file, "class Model: pass\n");
  }
  fs::path dir_;
};

// A KernelBench checkout: the repository root (problems under KernelBench/levelN) or its
// KernelBench folder (problems under levelN); --level picks the folder, level 1 when not given.
TEST_F(ProblemSetTest, CheckoutAndLevel) {
  fs::path kb = dir_ / "KernelBench" / "KernelBench";
  Problem(kb / "level1", "19_ReLU.py");
  Problem(kb / "level2", "1_Conv2D_ReLU_BiasAdd.py");
  Problem(kb / "level2", "12_Gemm_Multiply_LeakyReLU.py");
  Problem(kb / "level3", "1_MLP.py");
  EXPECT_EQ(ResolveProblemsDir(dir_ / "KernelBench", 2), kb / "level2");
  EXPECT_EQ(ResolveProblemsDir(kb, 3), kb / "level3");
  EXPECT_EQ(ResolveProblemsDir(kb, 0), kb / "level1");
  EXPECT_EQ(ResolveProblemsDir(dir_ / "KernelBench", 1), kb / "level1");
  auto level2 = ListProblems(ResolveProblemsDir(kb, 2), 1, 100);
  ASSERT_EQ(level2.size(), 2u);
  EXPECT_EQ(level2[0].name, "1_Conv2D_ReLU_BiasAdd");
  EXPECT_EQ(level2[1].name, "12_Gemm_Multiply_LeakyReLU");
  EXPECT_EQ(level2[1].number, 12);
  // A level the checkout lacks: the folder as given, which has no problems (the caller says so).
  EXPECT_EQ(ResolveProblemsDir(kb, 4), kb);
  EXPECT_TRUE(ListProblems(kb, 1, 100).empty());
}

// KERNELBENCH_DIR is often a level folder (README: .../KernelBench/level1); --level 2 then means its
// sibling, not level 1's problems under another name.
TEST_F(ProblemSetTest, LevelFolderWithAnotherLevelTakesItsSibling) {
  fs::path kb = dir_ / "KernelBench";
  Problem(kb / "level1", "19_ReLU.py");
  Problem(kb / "level2", "1_Conv2D_ReLU_BiasAdd.py");
  EXPECT_EQ(ResolveProblemsDir(kb / "level1", 2), kb / "level2");
  EXPECT_EQ(ResolveProblemsDir(kb / "level1/", 2), kb / "level2");
  EXPECT_EQ(ResolveProblemsDir(kb / "level2", 2), kb / "level2");
  EXPECT_EQ(ResolveProblemsDir(kb / "level2", 0), kb / "level2");  // no level given: the folder's own
  EXPECT_EQ(ResolveProblemsDir(kb / "level2", 1), kb / "level1");
  EXPECT_THROW(ResolveProblemsDir(kb / "level1", 3), std::invalid_argument);
  try {
    ResolveProblemsDir(kb / "level1", 3);
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("level3"), std::string::npos) << e.what();
  }
}

// A folder of problems that is not a KernelBench level folder is taken as it is, whatever the level.
TEST_F(ProblemSetTest, PlainFolderIsTakenAsItIs) {
  Problem(dir_ / "mine", "4_Gemm_BatchNorm_ReLU.py");
  Problem(dir_ / "mine", "notes.py");
  EXPECT_EQ(ResolveProblemsDir(dir_ / "mine", 2), dir_ / "mine");
  EXPECT_EQ(ResolveProblemsDir(dir_ / "mine", 0), dir_ / "mine");
  auto problems = ListProblems(dir_ / "mine", 1, 10);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].name, "4_Gemm_BatchNorm_ReLU");
  EXPECT_THROW(ListProblems(dir_ / "missing", 1, 10), std::runtime_error);
}

}  // namespace
}  // namespace kbrun::batch
