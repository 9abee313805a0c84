// The results tree: atomic files, records read back, best files, the lock.
#include "batch/results_store.h"

#include <gtest/gtest.h>

#include "util/fs.h"

namespace kbrun::batch {
namespace {

using nlohmann::json;

class ResultsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-store-test-"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

SampleRecord Evaluated(int index, eval::Status status, double speedup) {
  eval::EvalResult e;
  e.status = status;
  e.correct = status == eval::Status::kCorrect;
  e.speedup = speedup;
  e.json = {{"status", eval::StatusName(status)}};
  SampleExtras extras;
  extras.has_code = true;
  return MakeRecord({"7_Conv", index, 1, index}, &e, "", "", extras);
}

TEST_F(ResultsStoreTest, FilesRoundTrip) {
  ResultsStore store(dir_);
  store.WritePrompt("7_Conv", 1, "the prompt");
  store.WriteResponse("7_Conv", 1, "the response");
  store.WriteCode("7_Conv", 1, "class ModelNew: pass");
  store.WriteResult(Evaluated(1, eval::Status::kIncorrect, 0));
  store.WriteResult(Evaluated(2, eval::Status::kCorrect, 1.4));
  WriteFileAtomic(store.ResultPath("7_Conv", 3), "{ not json");  // edited by hand: ignored

  EXPECT_EQ(store.ReadPrompt("7_Conv", 1), "the prompt");
  EXPECT_EQ(store.ReadResponse("7_Conv", 1), "the response");
  EXPECT_EQ(store.ReadCode("7_Conv", 1), "class ModelNew: pass");
  EXPECT_FALSE(store.ReadResponse("7_Conv", 2).has_value());
  auto records = store.LoadRecords("7_Conv");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records.at(1).status, "incorrect");
  EXPECT_EQ(records.at(2).status, "correct");
  EXPECT_DOUBLE_EQ(records.at(2).speedup, 1.4);
  EXPECT_TRUE(store.LoadRecords("8_Missing").empty());
  EXPECT_TRUE(fs::exists(dir_ / "7_Conv" / "prompt_1.txt"));
  EXPECT_TRUE(fs::exists(dir_ / "7_Conv" / "result_2.json"));
}

TEST_F(ResultsStoreTest, BestFilesCopyTheSample) {
  ResultsStore store(dir_);
  store.WritePrompt("7_Conv", 2, "prompt two");
  store.WriteCode("7_Conv", 2, "code two");
  SampleRecord r = Evaluated(2, eval::Status::kCorrect, 1.4);
  store.WriteBest(r);
  EXPECT_EQ(ReadFile(dir_ / "7_Conv/best_prompt.txt"), "prompt two");
  EXPECT_EQ(ReadFile(dir_ / "7_Conv/best_code.py"), "code two");
  auto best = json::parse(*ReadFile(dir_ / "7_Conv/best_result.json"));
  EXPECT_EQ(best["index"], 2);
  EXPECT_EQ(best["status"], "correct");
}

TEST_F(ResultsStoreTest, LogTimelineSummary) {
  ResultsStore store(dir_);
  store.Log("first event");
  store.Log("second event");
  store.AppendTimeline({{"stage", "llm"}, {"start", 1.0}, {"end", 2.0}});
  store.WriteSummary({{"state", "running"}});
  auto log = *ReadFile(store.LogPath());
  EXPECT_NE(log.find("Z first event\n"), std::string::npos) << log;
  EXPECT_NE(log.find("Z second event\n"), std::string::npos) << log;
  EXPECT_EQ(json::parse(*ReadFile(store.TimelinePath()))["stage"], "llm");
  EXPECT_EQ((*store.ReadSummary())["state"], "running");
}

TEST_F(ResultsStoreTest, StaleTempFilesAreRemovedAndTheFolderIsLocked) {
  ResultsStore store(dir_);
  WriteFileAtomic(dir_ / "7_Conv/result_1.json", "{}");
  WriteFileAtomic(dir_ / "7_Conv/result_2.json.tmp-123-abc-0", "{half");
  store.RemoveStaleTempFiles("7_Conv");
  EXPECT_TRUE(fs::exists(dir_ / "7_Conv/result_1.json"));
  EXPECT_FALSE(fs::exists(dir_ / "7_Conv/result_2.json.tmp-123-abc-0"));

  store.Lock();
  ResultsStore second(dir_);
  try {
    second.Lock();
    FAIL() << "a second batch on the same folder must be refused";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("another kbrun batch"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kbrun::batch
