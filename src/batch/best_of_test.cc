// Best-of selection: correct beats incorrect, higher speedup wins, failures rank by progress.
#include "batch/best_of.h"

#include <gtest/gtest.h>

namespace kbrun::batch {
namespace {

SampleRecord Rec(int index, const std::string& status, double speedup = 0) {
  SampleRecord r;
  r.id = {"1_P", index, 1, index};
  r.status = status;
  r.correct = status == "correct";
  r.speedup = speedup;
  r.success = r.correct && speedup >= 1.0;
  return r;
}

TEST(BestOf, CorrectBeatsIncorrectWhateverTheSpeed) {
  EXPECT_TRUE(IsBetter(Rec(1, "correct", 0.1), Rec(2, "incorrect")));
  EXPECT_FALSE(IsBetter(Rec(2, "incorrect"), Rec(1, "correct", 0.1)));
}

TEST(BestOf, HigherSpeedupWinsAmongCorrect) {
  EXPECT_TRUE(IsBetter(Rec(1, "correct", 1.5), Rec(2, "correct", 1.2)));
  EXPECT_FALSE(IsBetter(Rec(1, "correct", 1.2), Rec(2, "correct", 1.2)));
}

TEST(BestOf, FailuresRankByHowFarTheyGot) {
  const char* order[] = {"incorrect", "runtime_error", "timeout", "compile_error", "rejected", "no_code", "llm_error"};
  for (size_t i = 0; i + 1 < std::size(order); ++i) {
    EXPECT_TRUE(IsBetter(Rec(1, order[i]), Rec(2, order[i + 1]))) << order[i] << " vs " << order[i + 1];
  }
}

TEST(BestOf, PickBestAndTies) {
  std::map<int, SampleRecord> records;
  EXPECT_FALSE(PickBest(records).has_value());
  records[1] = Rec(1, "compile_error");
  records[2] = Rec(2, "incorrect");
  records[3] = Rec(3, "incorrect");
  EXPECT_EQ(PickBest(records), 2);                      // stable best files
  EXPECT_EQ(PickBest(records, Ties::kPreferLater), 3);  // freshest for reflection
  records[4] = Rec(4, "correct", 0.7);
  records[5] = Rec(5, "correct", 1.3);
  records[6] = Rec(6, "correct", 1.1);
  EXPECT_EQ(PickBest(records), 5);
  EXPECT_EQ(PickBest(records, Ties::kPreferLater), 5);
}

}  // namespace
}  // namespace kbrun::batch
