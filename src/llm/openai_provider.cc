// OpenAI-compatible Chat Completions (OpenAI, vLLM, SGLang, Ollama, llama.cpp
// server, LiteLLM, OpenRouter, LLM gateways): POST {base_url}/chat/completions.
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "llm/http_provider_util.h"
#include "llm/provider_factories.h"

namespace kbrun::llm {
namespace {

using nlohmann::json;

// message.content is a string, or (some gateways) a list of {"type":"text","text":...} parts.
std::string ContentText(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array()) {
    for (const auto& part : content) {
      if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string()) {
        text += part["text"].get<std::string>();
      }
    }
  }
  return text;  // null content (e.g. a refusal): empty text, code extraction reports it
}

class OpenAiProvider : public Provider {
 public:
  explicit OpenAiProvider(ProviderConfig config) : config_(std::move(config)) {}

  bool NeedsApiKey() const override { return true; }

  Completion Complete(const CompletionRequest& request) override {
    auto start = std::chrono::steady_clock::now();
    json messages = json::array();
    if (!request.system.empty()) messages.push_back({{"role", "system"}, {"content", request.system}});
    messages.push_back({{"role", "user"}, {"content", request.prompt}});
    json body = {{"model", config_.model}, {"messages", messages}};
    if (config_.reasoning_effort.empty()) {
      body["temperature"] = config_.temperature;
      body["max_tokens"] = config_.max_tokens;
    } else {
      // Reasoning models reject max_tokens and any temperature but the default.
      body["reasoning_effort"] = config_.reasoning_effort;
      body["max_completion_tokens"] = config_.max_tokens;
    }
    std::map<std::string, std::string> headers = {{"Content-Type", "application/json"}};
    if (config_.api_key != "none") headers["Authorization"] = "Bearer " + config_.api_key;
    HttpRequest http =
        MakeHttpRequest(config_, EndpointUrl(config_.base_url, "chat/completions"), headers, body.dump());

    Completion c;
    HttpResponse response = SendWithRetries(http, PolicyFor(config_), &c.attempts);
    c.raw = response.body;
    json j = SaveAndParse(response, request.raw_response_path, http.url);
    c.latency_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty() || !j["choices"][0].is_object()) {
      // Some gateways answer 200 with an error object instead of a status code.
      if (j.contains("error")) {
        throw LlmError(LlmErrorKind::kServer,
                       fmt::format("{}: the server returned an error: {}", http.url, ServerErrorMessage(response.body)),
                       static_cast<int>(response.status));
      }
      throw LlmError(LlmErrorKind::kMalformed, fmt::format("{}: the response has no choices[0]", http.url),
                     static_cast<int>(response.status));
    }
    const json& choice = j["choices"][0];
    if (choice.contains("message") && choice["message"].is_object() && choice["message"].contains("content")) {
      c.text = ContentText(choice["message"]["content"]);
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
      c.finish_reason = choice["finish_reason"].get<std::string>();
    }
    if (j.contains("usage") && j["usage"].is_object()) {
      const json& u = j["usage"];
      if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number())
        c.prompt_tokens = u["prompt_tokens"].get<int>();
      if (u.contains("completion_tokens") && u["completion_tokens"].is_number()) {
        c.completion_tokens = u["completion_tokens"].get<int>();
      }
    }
    c.model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : config_.model;
    return c;
  }

 private:
  const ProviderConfig config_;
};

}  // namespace

std::unique_ptr<Provider> MakeOpenAiProvider(const ProviderConfig& config) {
  return std::make_unique<OpenAiProvider>(config);
}

}  // namespace kbrun::llm
