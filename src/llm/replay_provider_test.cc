// The replay provider: a file for every request, or a folder looked up by key.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

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

TEST_F(LlmReplay, SimulatedLatencyIsWaitedPerCallAndInParallel) {
  WriteFileAtomic(dir_ / "answer.txt", "text");
  ProviderConfig c;
  c.provider = "replay";
  c.replay_source = dir_ / "answer.txt";
  c.replay_latency_s = 0.3;
  auto provider = MakeProvider(c);
  CompletionRequest r = Key("19_ReLU/attempt1_sample1");
  Completion one = provider->Complete(r);
  EXPECT_GE(one.latency_s, 0.3);
  EXPECT_LT(one.latency_s, 2.0);
  EXPECT_EQ(ReadFile(r.raw_response_path).value_or(""), "text");

  // Calls in flight at once wait side by side, as a served model's do (--llm-concurrency).
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  std::vector<double> latency(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      CompletionRequest q = Key("k");
      q.raw_response_path = dir_ / "out" / ("raw" + std::to_string(i) + ".txt");
      latency[i] = provider->Complete(q).latency_s;
    });
  }
  for (auto& t : threads) t.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (double l : latency) EXPECT_GE(l, 0.3);
  EXPECT_LT(wall, 1.0);  // 4 x 0.3 s one after another would be 1.2 s
}

TEST_F(LlmReplay, LatencySettingFromEnvironmentFlagAndFile) {
  std::map<std::string, std::string> env = {
      {"LLM_PROVIDER", "replay"}, {"LLM_REPLAY", "r"}, {"LLM_REPLAY_LATENCY", "20"}};
  EXPECT_DOUBLE_EQ(ResolveProviderConfig({}, {}, env).replay_latency_s, 20.0);
  ProviderSettings flags;
  flags.replay_latency_s = 1.5;
  EXPECT_DOUBLE_EQ(ResolveProviderConfig(flags, {}, env).replay_latency_s, 1.5);  // the flag wins
  WriteFileAtomic(dir_ / "llm.json", R"({"provider": "replay", "replay": "r", "replay_latency_s": 2.5})");
  EXPECT_DOUBLE_EQ(ResolveProviderConfig({}, dir_ / "llm.json", {}).replay_latency_s, 2.5);
  EXPECT_DOUBLE_EQ(ResolveProviderConfig({}, {}, {{"LLM_PROVIDER", "replay"}, {"LLM_REPLAY", "r"}}).replay_latency_s,
                   0.0);  // default: no wait
  env["LLM_REPLAY_LATENCY"] = "-1";
  EXPECT_THROW(ResolveProviderConfig({}, {}, env), std::invalid_argument);
  env["LLM_REPLAY_LATENCY"] = "soon";
  EXPECT_THROW(ResolveProviderConfig({}, {}, env), std::invalid_argument);
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
