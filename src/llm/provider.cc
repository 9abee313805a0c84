#include "llm/provider.h"

#include <fmt/format.h>

#include "llm/provider_factories.h"

namespace kbrun::llm {

std::string LlmErrorKindName(LlmErrorKind k) {
  switch (k) {
    case LlmErrorKind::kAuth:
      return "auth";
    case LlmErrorKind::kBadRequest:
      return "bad_request";
    case LlmErrorKind::kRateLimited:
      return "rate_limited";
    case LlmErrorKind::kServer:
      return "server";
    case LlmErrorKind::kNetwork:
      return "network";
    case LlmErrorKind::kTimeout:
      return "timeout";
    case LlmErrorKind::kMalformed:
      return "malformed";
    case LlmErrorKind::kNoKey:
      return "no_key";
    case LlmErrorKind::kReplayMissing:
      return "replay_missing";
    case LlmErrorKind::kConnection:
      return "connection";
  }
  return "unknown";
}

std::unique_ptr<Provider> MakeProvider(const ProviderConfig& config) {
  std::unique_ptr<Provider> provider;
  if (config.provider == "openai") {
    provider = MakeOpenAiProvider(config);
  } else if (config.provider == "anthropic") {
    provider = MakeAnthropicProvider(config);
  } else if (config.provider == "replay") {
    if (config.replay_source.empty()) {
      throw std::invalid_argument(
          "the replay provider needs a source: --replay PATH, LLM_REPLAY or \"replay\" in llm.json");
    }
    return MakeReplayProvider(config);
  } else {
    throw std::invalid_argument(
        fmt::format("unknown provider '{}': expected openai, anthropic or replay", config.provider));
  }
  // Fail before any request is made, so that a batch does not start without credentials.
  if (provider->NeedsApiKey() && config.api_key.empty()) {
    std::string fallback = config.provider == "anthropic" ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY";
    throw LlmError(LlmErrorKind::kNoKey,
                   fmt::format("no API key for the {} provider: set LLM_GATEWAY_KEY (or {}); for a local server "
                               "without authentication set LLM_GATEWAY_KEY=none",
                               config.provider, fallback));
  }
  if (config.model.empty()) {
    throw std::invalid_argument(
        fmt::format("no model for the {} provider: set --model, LLM_MODEL or \"model\" in llm.json", config.provider));
  }
  return provider;
}

}  // namespace kbrun::llm
