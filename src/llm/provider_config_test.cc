// Provider settings: flag > environment > llm.json > default, keys, validation.
#include <gtest/gtest.h>

#include "llm/provider.h"
#include "llm/retry.h"
#include "util/fs.h"

namespace kbrun::llm {
namespace {

using Env = std::map<std::string, std::string>;

class LlmConfig : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-llmconfig-test-"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path File(const std::string& json) {
    WriteFileAtomic(dir_ / "llm.json", json);
    return dir_ / "llm.json";
  }
  static std::string ErrorOf(const std::function<void()>& f) {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "(no error)";
  }
  fs::path dir_;
};

TEST_F(LlmConfig, DefaultsWithNothingSet) {
  ProviderConfig c = ResolveProviderConfig({}, {}, Env{});
  EXPECT_EQ(c.provider, "openai");
  EXPECT_EQ(c.base_url, "https://api.openai.com/v1");
  EXPECT_DOUBLE_EQ(c.temperature, 0.7);
  EXPECT_EQ(c.max_tokens, 8192);
  EXPECT_TRUE(c.api_key.empty());
  EXPECT_EQ(ResolveProviderConfig({}, {}, Env{{"LLM_PROVIDER", "anthropic"}}).base_url, "https://api.anthropic.com/v1");
}

TEST_F(LlmConfig, FlagBeatsEnvironmentBeatsFileBeatsDefault) {
  fs::path file = File(R"({"model": "file-model", "temperature": 0.1, "max_tokens": 111, "reasoning_effort": "low",
                           "base_url": "http://file/v1"})");
  Env env = {{"LLM_MODEL", "env-model"}, {"LLM_TEMPERATURE", "0.2"}, {"LLM_BASE_URL", "http://env/v1"}};
  ProviderSettings flags;
  flags.model = "flag-model";
  ProviderConfig c = ResolveProviderConfig(flags, file, env);
  EXPECT_EQ(c.model, "flag-model");        // flag
  EXPECT_DOUBLE_EQ(c.temperature, 0.2);    // env over file
  EXPECT_EQ(c.base_url, "http://env/v1");  // env over file
  EXPECT_EQ(c.max_tokens, 111);            // file over default
  EXPECT_EQ(c.reasoning_effort, "low");    // file
  EXPECT_EQ(c.max_retries, 5);             // default
}

TEST_F(LlmConfig, ApiKeyOrder) {
  Env env = {{"OPENAI_API_KEY", "openai"}, {"ANTHROPIC_API_KEY", "anthropic"}, {"MY_KEY", "mine"}};
  EXPECT_EQ(ResolveProviderConfig({}, {}, env).api_key, "openai");
  ProviderSettings anthropic;
  anthropic.provider = "anthropic";
  EXPECT_EQ(ResolveProviderConfig(anthropic, {}, env).api_key, "anthropic");
  EXPECT_EQ(ResolveProviderConfig({}, File(R"({"api_key_env": "MY_KEY"})"), env).api_key, "mine");
  env["LLM_GATEWAY_KEY"] = "gateway";
  EXPECT_EQ(ResolveProviderConfig({}, File(R"({"api_key_env": "MY_KEY"})"), env).api_key, "gateway");
  EXPECT_EQ(ResolveProviderConfig(anthropic, {}, env).api_key, "gateway");
}

TEST_F(LlmConfig, HeadersMergeAcrossLayersCaseInsensitively) {
  fs::path file = File(R"({"headers": {"X-Project": "file", "X-Only-File": "1"}})");
  Env env = {{"LLM_HEADERS", "x-project: env\nX-Env: 2"}};
  ProviderSettings flags;
  flags.extra_headers = {{"X-ENV", "flag"}};
  ProviderConfig c = ResolveProviderConfig(flags, file, env);
  EXPECT_EQ(c.extra_headers.size(), 3u);
  EXPECT_EQ(c.extra_headers["x-project"], "env");
  EXPECT_EQ(c.extra_headers["X-Only-File"], "1");
  EXPECT_EQ(c.extra_headers["X-ENV"], "flag");
  EXPECT_EQ(ParseHeader("Name:  value: with colon ").second, "value: with colon");
  EXPECT_THROW(ParseHeader("no colon"), std::invalid_argument);
}

TEST_F(LlmConfig, ReplayPathInFileIsRelativeToTheFile) {
  ProviderConfig c = ResolveProviderConfig({}, File(R"({"provider": "replay", "replay": "responses"})"), Env{});
  EXPECT_EQ(c.provider, "replay");
  EXPECT_EQ(c.replay_source, dir_ / "responses");
}

TEST_F(LlmConfig, BadValuesNameTheirSource) {
  EXPECT_NE(ErrorOf([] {
              ResolveProviderConfig({}, {}, Env{{"LLM_TEMPERATURE", "warm"}});
            }).find("LLM_TEMPERATURE"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] {
              ResolveProviderConfig({}, {}, Env{{"LLM_MAX_TOKENS", "12k"}});
            }).find("LLM_MAX_TOKENS"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] {
              ResolveProviderConfig({}, {}, Env{{"LLM_PROVIDER", "gemini"}});
            }).find("gemini"),
            std::string::npos);
  EXPECT_NE(ErrorOf([] {
              ResolveProviderConfig({}, {}, Env{{"LLM_TEMPERATURE", "7"}});
            }).find("temperature"),
            std::string::npos);

  fs::path bad_json = File("{ not json");
  std::string e = ErrorOf([&] { ResolveProviderConfig({}, bad_json, Env{}); });
  EXPECT_NE(e.find(bad_json.string()), std::string::npos) << e;

  fs::path unknown = File(R"({"modle": "x"})");
  e = ErrorOf([&] { ResolveProviderConfig({}, unknown, Env{}); });
  EXPECT_NE(e.find("'modle'"), std::string::npos) << e;
  EXPECT_NE(e.find(unknown.string()), std::string::npos) << e;

  e = ErrorOf([&] { ResolveProviderConfig({}, File(R"({"max_tokens": "lots"})"), Env{}); });
  EXPECT_NE(e.find("'max_tokens'"), std::string::npos) << e;

  e = ErrorOf([&] { ResolveProviderConfig({}, File(R"({"api_key_env": "sk-abc123"})"), Env{}); });
  EXPECT_NE(e.find("api_key_env"), std::string::npos) << e;
}

TEST(LlmRetry, BackoffGrowsIsCappedAndJittered) {
  RetryPolicy p{5, 1.0, 10.0};
  for (int i = 0; i < 20; ++i) {
    double d1 = BackoffDelay(1, p, std::nullopt);
    EXPECT_GE(d1, 0.5);
    EXPECT_LE(d1, 1.0);
    double d3 = BackoffDelay(3, p, std::nullopt);
    EXPECT_GE(d3, 2.0);
    EXPECT_LE(d3, 4.0);
    EXPECT_LE(BackoffDelay(10, p, std::nullopt), 10.0);
  }
  EXPECT_DOUBLE_EQ(BackoffDelay(1, p, 3.0), 3.0);
  EXPECT_DOUBLE_EQ(BackoffDelay(1, p, 500.0), 10.0);
}

TEST(LlmRetry, RetryAfterAndServerMessages) {
  EXPECT_EQ(ParseRetryAfter("2"), 2.0);
  EXPECT_EQ(ParseRetryAfter(" 0.5 "), 0.5);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-1"), std::nullopt);
  EXPECT_EQ(ServerErrorMessage(R"({"error": {"message": "bad model"}})"), "bad model");
  EXPECT_EQ(ServerErrorMessage(R"({"type":"error","error":{"type":"invalid_request_error","message":"too long"}})"),
            "too long");
  EXPECT_EQ(ServerErrorMessage(R"({"detail": "Not Found"})"), "Not Found");
  EXPECT_EQ(ServerErrorMessage("<html>bad gateway</html>"), "<html>bad gateway</html>");
  EXPECT_EQ(ServerErrorMessage(""), "(empty body)");
}

}  // namespace
}  // namespace kbrun::llm
