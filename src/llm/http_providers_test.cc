// The OpenAI-compatible and Anthropic providers against a real HTTP server
// (tests/fake_llm_server.py): retries, timeouts, errors, raw-response saving.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "llm/fake_server_test_util.h"
#include "llm/provider.h"
#include "util/fs.h"

namespace kbrun::llm {
namespace {

using nlohmann::json;
using test_util::FakeLlmServer;

// Small timeouts and backoff so that failure tests stay fast.
ProviderConfig TestConfig(const FakeLlmServer& server, const std::string& provider = "openai") {
  ProviderConfig c;
  c.provider = provider;
  c.base_url = server.base_url();
  c.model = "test-model";
  c.api_key = "test-key";
  c.connect_timeout_s = 2;
  c.request_timeout_s = 5;
  c.max_retries = 2;
  c.backoff_base_s = 0.05;
  c.backoff_max_s = 2;
  return c;
}

std::string Scenario(const json& rules) { return rules.dump(); }

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

CompletionRequest Request(const FakeLlmServer& server, const std::string& prompt = "write a kernel") {
  CompletionRequest r;
  r.prompt = prompt;
  r.raw_response_path = server.dir() / "raw" / "response.json";
  return r;
}

LlmError ExpectLlmError(Provider& provider, const CompletionRequest& request) {
  try {
    provider.Complete(request);
  } catch (const LlmError& e) {
    return e;
  }
  ADD_FAILURE() << "no LlmError thrown";
  return LlmError(LlmErrorKind::kServer, "none");
}

TEST(LlmHttp, OpenAiSuccessRecordsTextTokensAndRawBody) {
  FakeLlmServer server(Scenario(json::array({{{"response_text", "```python\nclass ModelNew: pass\n```"},
                                              {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 22}}}}})));
  auto provider = MakeProvider(TestConfig(server));
  CompletionRequest request = Request(server);
  request.system = "be brief";
  Completion c = provider->Complete(request);

  EXPECT_EQ(c.text, "```python\nclass ModelNew: pass\n```");
  EXPECT_EQ(c.prompt_tokens, 11);
  EXPECT_EQ(c.completion_tokens, 22);
  EXPECT_EQ(c.attempts, 1);
  EXPECT_EQ(c.model, "test-model");
  EXPECT_EQ(c.finish_reason, "stop");
  EXPECT_GT(c.latency_s, 0);
  EXPECT_EQ(ReadFile(request.raw_response_path).value_or(""), c.raw);
  EXPECT_TRUE(json::parse(c.raw).contains("choices"));

  auto requests = server.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0]["path"], "/v1/chat/completions");
  EXPECT_TRUE(requests[0]["auth_present"].get<bool>());
  const json& body = requests[0]["body"];
  EXPECT_EQ(body["model"], "test-model");
  EXPECT_EQ(body["messages"][0]["role"], "system");
  EXPECT_EQ(body["messages"][1]["content"], "write a kernel");
  EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 0.7);
  EXPECT_EQ(body["max_tokens"], 8192);
  EXPECT_FALSE(body.contains("reasoning_effort"));
}

TEST(LlmHttp, RateLimitedThenSuccessHonoursRetryAfter) {
  FakeLlmServer server(Scenario(json::array({{{"times", 1},
                                              {"status", 429},
                                              {"headers", {{"Retry-After", "1"}}},
                                              {"body", R"({"error":{"message":"slow down"}})"}},
                                             {{"response_text", "ok"}}})));
  auto provider = MakeProvider(TestConfig(server));
  auto start = std::chrono::steady_clock::now();
  Completion c = provider->Complete(Request(server));
  double waited = Seconds(start);
  EXPECT_EQ(c.text, "ok");
  EXPECT_EQ(c.attempts, 2);
  EXPECT_GE(waited, 0.95);  // Retry-After: 1, not the 0.05 s backoff
  EXPECT_LT(waited, 3.0);
  EXPECT_EQ(server.Requests().size(), 2u);
}

TEST(LlmHttp, RetryAfterIsCappedAtBackoffMax) {
  FakeLlmServer server(
      Scenario(json::array({{{"times", 1}, {"status", 429}, {"headers", {{"Retry-After", "120"}}}, {"body", "{}"}},
                            {{"response_text", "ok"}}})));
  ProviderConfig config = TestConfig(server);
  config.backoff_max_s = 0.2;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(MakeProvider(config)->Complete(Request(server)).text, "ok");
  EXPECT_LT(Seconds(start), 2.0);
}

TEST(LlmHttp, ServerErrorThenSuccess) {
  FakeLlmServer server(Scenario(json::array(
      {{{"times", 1}, {"status", 500}, {"body", "internal error"}}, {{"response_text", "second time lucky"}}})));
  Completion c = MakeProvider(TestConfig(server))->Complete(Request(server));
  EXPECT_EQ(c.text, "second time lucky");
  EXPECT_EQ(c.attempts, 2);
}

TEST(LlmHttp, ServerErrorsUseUpTheRetries) {
  FakeLlmServer server(Scenario(json::array({{{"status", 503}, {"body", R"({"error":{"message":"overloaded"}})"}}})));
  ProviderConfig config = TestConfig(server);
  config.max_retries = 1;
  auto provider = MakeProvider(config);
  LlmError e = ExpectLlmError(*provider, Request(server));
  EXPECT_EQ(e.kind(), LlmErrorKind::kServer);
  EXPECT_EQ(e.http_status(), 503);
  EXPECT_NE(std::string(e.what()).find("overloaded"), std::string::npos);
  EXPECT_EQ(server.Requests().size(), 2u);
}

TEST(LlmHttp, TimeoutIsRetriedThenReported) {
  FakeLlmServer server(Scenario(json::array({{{"delay_s", 3}, {"response_text", "too late"}}})));
  ProviderConfig config = TestConfig(server);
  config.request_timeout_s = 0.3;
  config.max_retries = 1;
  auto provider = MakeProvider(config);
  CompletionRequest request = Request(server);
  auto start = std::chrono::steady_clock::now();
  LlmError e = ExpectLlmError(*provider, request);
  EXPECT_EQ(e.kind(), LlmErrorKind::kTimeout) << e.what();
  EXPECT_LT(Seconds(start), 2.5);
  EXPECT_EQ(server.Requests().size(), 2u);
  EXPECT_FALSE(fs::exists(request.raw_response_path));
}

TEST(LlmHttp, MalformedJsonKeepsTheRawBody) {
  FakeLlmServer server(Scenario(json::array({{{"body", "this is not JSON {"}}})));
  auto provider = MakeProvider(TestConfig(server));
  CompletionRequest request = Request(server);
  LlmError e = ExpectLlmError(*provider, request);
  EXPECT_EQ(e.kind(), LlmErrorKind::kMalformed);
  EXPECT_EQ(ReadFile(request.raw_response_path).value_or(""), "this is not JSON {");
  EXPECT_EQ(server.Requests().size(), 1u);  // a paid-for answer is not asked for again
}

TEST(LlmHttp, JsonWithoutChoicesIsMalformed) {
  FakeLlmServer server(Scenario(json::array({{{"body", R"({"id": "x"})"}}})));
  auto provider = MakeProvider(TestConfig(server));
  CompletionRequest request = Request(server);
  EXPECT_EQ(ExpectLlmError(*provider, request).kind(), LlmErrorKind::kMalformed);
  EXPECT_TRUE(fs::exists(request.raw_response_path));
}

TEST(LlmHttp, UnauthorizedIsNotRetried) {
  FakeLlmServer server(
      Scenario(json::array({{{"status", 401}, {"body", R"({"error":{"message":"invalid key xyz"}})"}}})));
  auto provider = MakeProvider(TestConfig(server));
  LlmError e = ExpectLlmError(*provider, Request(server));
  EXPECT_EQ(e.kind(), LlmErrorKind::kAuth);
  EXPECT_EQ(e.http_status(), 401);
  std::string message = e.what();
  EXPECT_NE(message.find("LLM_GATEWAY_KEY"), std::string::npos) << message;
  EXPECT_NE(message.find("invalid key xyz"), std::string::npos) << message;
  EXPECT_EQ(server.Requests().size(), 1u);
}

TEST(LlmHttp, BadRequestShowsTheServerMessage) {
  FakeLlmServer server(Scenario(
      json::array({{{"status", 400}, {"body", R"({"error":{"message":"max_tokens is too large: 999999"}})"}}})));
  auto provider = MakeProvider(TestConfig(server));
  LlmError e = ExpectLlmError(*provider, Request(server));
  EXPECT_EQ(e.kind(), LlmErrorKind::kBadRequest);
  EXPECT_NE(std::string(e.what()).find("max_tokens is too large: 999999"), std::string::npos) << e.what();
  EXPECT_EQ(server.Requests().size(), 1u);
}

TEST(LlmHttp, ConnectionRefusedIsAConnectionError) {
  ProviderConfig c;
  c.base_url = "http://127.0.0.1:1/v1";  // nothing listens on port 1
  c.model = "m";
  c.api_key = "k";
  c.max_retries = 1;
  c.backoff_base_s = 0.01;
  auto provider = MakeProvider(c);
  try {
    provider->Complete(CompletionRequest{"", "hi", "", ""});
    FAIL() << "no error";
  } catch (const LlmError& e) {
    EXPECT_EQ(e.kind(), LlmErrorKind::kConnection) << e.what();
  }
}

TEST(LlmHttp, ReasoningEffortSendsMaxCompletionTokensAndNoTemperature) {
  FakeLlmServer server(Scenario(json::array({{{"response_text", "ok"}}})));
  ProviderConfig config = TestConfig(server);
  config.reasoning_effort = "high";
  config.max_tokens = 1000;
  MakeProvider(config)->Complete(Request(server));
  const json body = server.Requests().at(0)["body"];
  EXPECT_EQ(body["reasoning_effort"], "high");
  EXPECT_EQ(body["max_completion_tokens"], 1000);
  EXPECT_FALSE(body.contains("temperature"));
  EXPECT_FALSE(body.contains("max_tokens"));
}

TEST(LlmHttp, ExtraHeadersAreSentAndKeyNoneSendsNoAuthorization) {
  FakeLlmServer server(Scenario(json::array({{{"response_text", "ok"}}})));
  ProviderConfig config = TestConfig(server);
  config.api_key = "none";
  config.extra_headers = {{"X-Gateway-Project", "kbrun"}};
  MakeProvider(config)->Complete(Request(server));
  const json r = server.Requests().at(0);
  EXPECT_FALSE(r["auth_present"].get<bool>());
  EXPECT_EQ(r["headers"]["X-Gateway-Project"], "kbrun");
}

TEST(LlmHttp, ConcurrentCallsFromSeveralThreads) {
  FakeLlmServer server(Scenario(json::array({{{"delay_s", 0.2}, {"response_text", "ok"}}})));
  auto provider = MakeProvider(TestConfig(server));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      CompletionRequest r;
      r.prompt = "thread " + std::to_string(i);
      r.raw_response_path = server.dir() / ("raw" + std::to_string(i) + ".json");
      if (provider->Complete(r).text == "ok") ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(server.Requests().size(), 8u);
}

TEST(LlmHttp, AnthropicSuccess) {
  FakeLlmServer server(Scenario(json::array({{{"match", "kernel please"},
                                              {"response_text", "```python\nclass ModelNew: pass\n```"},
                                              {"usage", {{"prompt_tokens", 5}, {"completion_tokens", 7}}}}})));
  auto provider = MakeProvider(TestConfig(server, "anthropic"));
  CompletionRequest request = Request(server, "kernel please");
  request.system = "you write kernels";
  Completion c = provider->Complete(request);
  EXPECT_EQ(c.text, "```python\nclass ModelNew: pass\n```");
  EXPECT_EQ(c.prompt_tokens, 5);
  EXPECT_EQ(c.completion_tokens, 7);
  EXPECT_EQ(c.finish_reason, "end_turn");
  EXPECT_TRUE(fs::exists(request.raw_response_path));

  const json r = server.Requests().at(0);
  EXPECT_EQ(r["path"], "/v1/messages");
  EXPECT_TRUE(r["auth_present"].get<bool>());
  EXPECT_EQ(r["headers"]["anthropic-version"], "2023-06-01");
  EXPECT_EQ(r["body"]["system"], "you write kernels");
  EXPECT_EQ(r["body"]["messages"][0]["content"], "kernel please");
  EXPECT_EQ(r["body"]["max_tokens"], 8192);
}

TEST(LlmHttp, AnthropicReasoningEffortEnablesThinking) {
  FakeLlmServer server(Scenario(json::array({{{"response_text", "ok"}}})));
  ProviderConfig config = TestConfig(server, "anthropic");
  config.reasoning_effort = "medium";
  config.max_tokens = 4000;
  MakeProvider(config)->Complete(Request(server));
  const json body = server.Requests().at(0)["body"];
  EXPECT_EQ(body["thinking"]["type"], "enabled");
  EXPECT_EQ(body["thinking"]["budget_tokens"], 8192);
  EXPECT_GT(body["max_tokens"].get<int>(), 8192);
  EXPECT_FALSE(body.contains("temperature"));
}

TEST(LlmHttp, MissingKeyIsReportedBeforeAnyRequest) {
  for (const std::string provider : {"openai", "anthropic"}) {
    ProviderConfig c;
    c.provider = provider;
    c.model = "m";
    c.base_url = "http://127.0.0.1:1/v1";
    try {
      MakeProvider(c);
      FAIL() << "no error for " << provider;
    } catch (const LlmError& e) {
      EXPECT_EQ(e.kind(), LlmErrorKind::kNoKey);
      EXPECT_NE(std::string(e.what()).find("LLM_GATEWAY_KEY"), std::string::npos);
    }
  }
}

TEST(LlmHttp, MissingModelIsAConfigurationError) {
  ProviderConfig c;
  c.api_key = "k";
  EXPECT_THROW(MakeProvider(c), std::invalid_argument);
}

}  // namespace
}  // namespace kbrun::llm
