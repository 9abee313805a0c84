// The replay provider: a file for every request, or a folder looked up by key.
#include <gtest/gtest.h>

#include "llm/provider.h"
#include "util/fs.h"

namespace kbrun::llm {
namespace {

class LlmReplay : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-replay-test-"); }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<Provider> Replay(const fs::path& source) {
    ProviderConfig c;
    c.provider = "replay";
    c.replay_source = source;
    return MakeProvider(c);  // no key, no model needed
  }
  CompletionRequest Key(const std::string& key) {
    CompletionRequest r;
    r.prompt = "ignored";
    r.replay_key = key;
    r.raw_response_path = dir_ / "out" / "raw.txt";
    return r;
  }

  fs::path dir_;
};

TEST_F(LlmReplay, FileAnswersEveryRequestAndIsSavedAsRaw) {
  WriteFileAtomic(dir_ / "answer.txt", "```python\nclass ModelNew: pass\n```\n");
  auto provider = Replay(dir_ / "answer.txt");
  EXPECT_FALSE(provider->NeedsApiKey());
  for (const char* key : {"", "19_ReLU", "19_ReLU/attempt3_sample2"}) {
    CompletionRequest r = Key(key);
    Completion c = provider->Complete(r);
    EXPECT_EQ(c.text, "```python\nclass ModelNew: pass\n```\n");
    EXPECT_EQ(c.attempts, 1);
    EXPECT_EQ(ReadFile(r.raw_response_path).value_or(""), c.text);
  }
}

TEST_F(LlmReplay, CandidatesGoFromExactKeyToProblem) {
  auto c = ReplayCandidates("R", "19_ReLU/attempt2_sample1");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0], fs::path("R/19_ReLU/attempt2_sample1.txt"));
  EXPECT_EQ(c[1], fs::path("R/19_ReLU/attempt2.txt"));
  EXPECT_EQ(c[2], fs::path("R/19_ReLU.txt"));
  EXPECT_EQ(ReplayCandidates("R", "19_ReLU"), std::vector<fs::path>{fs::path("R/19_ReLU.txt")});
  EXPECT_TRUE(ReplayCandidates("R", "").empty());
  EXPECT_TRUE(ReplayCandidates("R", "../etc/passwd").empty());
}

TEST_F(LlmReplay, FolderServesAttemptOneFailsAttemptTwoSucceeds) {
  WriteFileAtomic(dir_ / "19_ReLU" / "attempt1.txt", "no code here");
  WriteFileAtomic(dir_ / "19_ReLU.txt", "good answer");
  WriteFileAtomic(dir_ / "19_ReLU" / "attempt3_sample2.txt", "exact answer");
  auto provider = Replay(dir_);
  EXPECT_EQ(provider->Complete(Key("19_ReLU/attempt1_sample1")).text, "no code here");
  EXPECT_EQ(provider->Complete(Key("19_ReLU/attempt1_sample2")).text, "no code here");
  EXPECT_EQ(provider->Complete(Key("19_ReLU/attempt2_sample1")).text, "good answer");
  EXPECT_EQ(provider->Complete(Key("19_ReLU/attempt3_sample2")).text, "exact answer");
  EXPECT_EQ(provider->Complete(Key("19_ReLU")).text, "good answer");
}

TEST_F(LlmReplay, MissingResponseIsReplayMissing) {
  WriteFileAtomic(dir_ / "19_ReLU.txt", "x");
  auto provider = Replay(dir_);
  CompletionRequest r = Key("20_LeakyReLU/attempt1_sample1");
  try {
    provider->Complete(r);
    FAIL() << "no error";
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmErrorKind::kReplayMissing);
    EXPECT_NE(std::string(e.what()).find("20_LeakyReLU.txt"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(r.raw_response_path));
  try {
    provider->Complete(Key(""));
    FAIL() << "no error for an empty key";
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmErrorKind::kReplayMissing);
  }
}

TEST_F(LlmReplay, SourceThatDoesNotExist) {
  auto provider = Replay(dir_ / "nothing");
  try {
    provider->Complete(Key("x"));
    FAIL() << "no error";
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmErrorKind::kReplayMissing);
  }
  ProviderConfig c;
  c.provider = "replay";
  EXPECT_THROW(MakeProvider(c), std::invalid_argument);  // no source at all
}

}  // namespace
}  // namespace kbrun::llm
