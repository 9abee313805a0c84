// Anthropic Messages API: POST {base_url}/messages with x-api-key and anthropic-version.
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "llm/http_provider_util.h"
#include "llm/provider_factories.h"

namespace kbrun::llm {
namespace {

using nlohmann::json;

constexpr const char* kAnthropicVersion = "2023-06-01";

// reasoning_effort -> extended thinking budget: low | medium | high, or a number of tokens.
int ThinkingBudget(const std::string& effort) {
  if (effort == "minimal" || effort == "low") return 2048;
  if (effort == "medium") return 8192;
  if (effort == "high") return 24576;
  try {
    size_t used = 0;
    int budget = std::stoi(effort, &used);
    if (used == effort.size() && budget >= 1024) return budget;
  } catch (const std::exception&) {}
  throw std::invalid_argument(fmt::format(
      "reasoning effort '{}' for anthropic: expected low, medium, high or a thinking budget >= 1024 tokens", effort));
}

class AnthropicProvider : public Provider {
 public:
  explicit AnthropicProvider(ProviderConfig config) : config_(std::move(config)) {
    if (!config_.reasoning_effort.empty()) thinking_budget_ = ThinkingBudget(config_.reasoning_effort);
  }

  bool NeedsApiKey() const override { return true; }

  Completion Complete(const CompletionRequest& request) override {
    auto start = std::chrono::steady_clock::now();
    json body = {{"model", config_.model},
                 {"max_tokens", config_.max_tokens},
                 {"messages", json::array({{{"role", "user"}, {"content", request.prompt}}})}};
    if (!request.system.empty()) body["system"] = request.system;
    if (thinking_budget_ > 0) {
      // Extended thinking needs max_tokens above the budget and no temperature.
      body["thinking"] = {{"type", "enabled"}, {"budget_tokens", thinking_budget_}};
      if (config_.max_tokens <= thinking_budget_) body["max_tokens"] = thinking_budget_ + config_.max_tokens;
    } else {
      body["temperature"] = config_.temperature;
    }
    std::map<std::string, std::string> headers = {{"content-type", "application/json"},
                                                  {"anthropic-version", kAnthropicVersion}};
    if (config_.api_key != "none") headers["x-api-key"] = config_.api_key;
    HttpRequest http = MakeHttpRequest(config_, EndpointUrl(config_.base_url, "messages"), headers, body.dump());

    Completion c;
    HttpResponse response = SendWithRetries(http, PolicyFor(config_), &c.attempts);
    c.raw = response.body;
    json j = SaveAndParse(response, request.raw_response_path, http.url);
    c.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (j.value("type", "") == "error") {
      throw LlmError(LlmErrorKind::kServer,
                     fmt::format("{}: the server returned an error: {}", http.url, ServerErrorMessage(response.body)),
                     static_cast<int>(response.status));
    }
    if (!j.contains("content") || !j["content"].is_array()) {
      throw LlmError(LlmErrorKind::kMalformed, fmt::format("{}: the response has no content list", http.url),
                     static_cast<int>(response.status));
    }
    // Only "text" blocks are the answer ("thinking" blocks are the model's scratchpad).
    for (const auto& block : j["content"]) {
      if (block.is_object() && block.value("type", "") == "text" && block.contains("text") &&
          block["text"].is_string()) {
        c.text += block["text"].get<std::string>();
      }
    }
    if (j.contains("stop_reason") && j["stop_reason"].is_string())
      c.finish_reason = j["stop_reason"].get<std::string>();
    if (j.contains("usage") && j["usage"].is_object()) {
      const json& u = j["usage"];
      if (u.contains("input_tokens") && u["input_tokens"].is_number()) c.prompt_tokens = u["input_tokens"].get<int>();
      if (u.contains("output_tokens") && u["output_tokens"].is_number())
        c.completion_tokens = u["output_tokens"].get<int>();
    }
    c.model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : config_.model;
    return c;
  }

 private:
  const ProviderConfig config_;
  int thinking_budget_ = 0;
};

}  // namespace

std::unique_ptr<Provider> MakeAnthropicProvider(const ProviderConfig& config) {
  return std::make_unique<AnthropicProvider>(config);
}

}  // namespace kbrun::llm
