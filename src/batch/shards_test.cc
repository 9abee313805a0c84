// Shards of a Slurm run: the split, the manifest, what a shard's folder says.
#include "batch/shards.h"

#include <gtest/gtest.h>

#include "batch/results_store.h"
#include "util/fs.h"

namespace kbrun::batch {
namespace {

using nlohmann::json;

std::vector<Problem> Numbered(std::vector<int> numbers) {
  std::vector<Problem> out;
  for (int n : numbers) out.push_back({n, std::to_string(n) + "_P", fs::path(std::to_string(n) + "_P.py")});
  return out;
}

std::vector<std::vector<std::string>> Names(const std::vector<Shard>& shards) {
  std::vector<std::vector<std::string>> out;
  for (const auto& s : shards) out.push_back(s.problems);
  return out;
}

TEST(Shards, SplitsIntoConsecutiveRangesLargerFirst) {
  auto shards = PlanShards(Numbered({1, 2, 3, 4, 5, 7, 9}), 3);
  ASSERT_EQ(shards.size(), 3u);
  EXPECT_EQ(Names(shards),
            (std::vector<std::vector<std::string>>{{"1_P", "2_P", "3_P"}, {"4_P", "5_P"}, {"7_P", "9_P"}}));
  // The ranges are problem numbers, gaps included: `kbrun batch first last` lists exactly these.
  EXPECT_EQ(shards[1].first, 4);
  EXPECT_EQ(shards[1].last, 5);
  EXPECT_EQ(shards[2].first, 7);
  EXPECT_EQ(shards[2].last, 9);
  for (size_t i = 0; i < shards.size(); ++i) EXPECT_EQ(shards[i].index, static_cast<int>(i));
}

TEST(Shards, NeverMoreShardsThanProblemsNorAnEmptyOne) {
  EXPECT_EQ(PlanShards(Numbered({1, 2}), 8).size(), 2u);
  EXPECT_EQ(PlanShards(Numbered({1, 2, 3, 4}), 1).size(), 1u);
  EXPECT_TRUE(PlanShards({}, 4).empty());
  EXPECT_TRUE(PlanShards(Numbered({1}), 0).empty());
}

TEST(Shards, ProblemsSharingANumberStayTogether) {
  std::vector<Problem> problems = {
      {1, "1_A", "1_A.py"}, {2, "2_A", "2_A.py"}, {2, "2_B", "2_B.py"}, {3, "3_A", "3_A.py"}};
  auto shards = PlanShards(problems, 4);
  // 2_A and 2_B are one range (2..2): a shard boundary between them would run both twice.
  EXPECT_EQ(Names(shards), (std::vector<std::vector<std::string>>{{"1_A"}, {"2_A", "2_B"}, {"3_A"}}));
}

class ShardFolderTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-shards-test-"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ShardFolderTest, ManifestRoundTrips) {
  ShardManifest m;
  m.problems_dir = "/data/level1";
  m.first = 1;
  m.last = 9;
  m.shards = PlanShards(Numbered({1, 2, 9}), 2);
  m.submissions = {{"1234", {0, 1}, 1.5}, {"1240", {1}, 2.5}};
  m.compile_cache = "/shared/cache";
  EXPECT_FALSE(LoadManifest(dir_).has_value());
  SaveManifest(dir_, m);
  auto back = LoadManifest(dir_);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->problems_dir, m.problems_dir);
  EXPECT_EQ(back->last, 9);
  EXPECT_EQ(Names(back->shards), Names(m.shards));
  EXPECT_EQ(back->shards[1].first, 9);
  EXPECT_EQ(back->JobIds(), (std::vector<std::string>{"1234", "1240"}));
  EXPECT_EQ(back->submissions[1].tasks, std::vector<int>{1});
  EXPECT_EQ(back->compile_cache, "/shared/cache");
  ASSERT_NE(back->Find(1), nullptr);
  EXPECT_EQ(back->Find(2), nullptr);
}

TEST_F(ShardFolderTest, DamagedManifestSaysWhat) {
  fs::create_directories(SlurmDir(dir_));
  WriteFileAtomic(ManifestPath(dir_), "{ truncated");
  EXPECT_THROW(LoadManifest(dir_), std::runtime_error);
  WriteFileAtomic(ManifestPath(dir_), R"({"problems_dir": "/p", "first": 1, "last": 2, "shards": []})");
  try {
    LoadManifest(dir_);
    FAIL() << "an empty shard list was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("shards"), std::string::npos) << e.what();
  }
}

TEST_F(ShardFolderTest, StatusComesFromTheShardsSummary) {
  Shard shard = PlanShards(Numbered({1, 2, 3}), 1)[0];
  EXPECT_EQ(ReadShardStatus(dir_, shard).state, "not_started");
  EXPECT_EQ(ReadShardStatus(dir_, shard).problems, 3);
  ResultsStore store(ShardResultsDir(dir_, 0));
  fs::create_directories(store.root());
  store.WriteSummary({{"state", "interrupted"}, {"host", "node7"}, {"totals", {{"solved", 1}, {"unsolved", 1}}}});
  ShardStatus st = ReadShardStatus(dir_, shard);
  EXPECT_EQ(st.state, "interrupted");
  EXPECT_FALSE(st.finished());
  EXPECT_EQ(st.problems_done, 2);
  EXPECT_EQ(st.host, "node7");
  store.WriteSummary({{"state", "finished"}});
  EXPECT_TRUE(ReadShardStatus(dir_, shard).finished());
  WriteFileAtomic(store.SummaryPath(), "{ half");
  EXPECT_EQ(ReadShardStatus(dir_, shard).state, "damaged");
}

}  // namespace
}  // namespace kbrun::batch
