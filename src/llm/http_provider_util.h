// Pieces shared by the two HTTP providers (OpenAI-compatible and Anthropic).
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "llm/http_client.h"
#include "llm/provider.h"
#include "llm/retry.h"

namespace kbrun::llm {

// "https://host/v1" + "chat/completions"; a base URL that already ends in the endpoint is kept.
std::string EndpointUrl(const std::string& base_url, const std::string& endpoint);

// A POST of `body` to `url` with the config's timeouts; `headers` are the provider's own,
// then the config's extra headers (which replace a provider header of the same name).
HttpRequest MakeHttpRequest(const ProviderConfig& config, const std::string& url,
                            const std::map<std::string, std::string>& headers, const std::string& body);
RetryPolicy PolicyFor(const ProviderConfig& config);

// Writes the raw body to `raw_response_path` (when set) before anything can fail, then parses it.
// Throws LlmError(kMalformed) for a body that is not a JSON object.
nlohmann::json SaveAndParse(const HttpResponse& response, const fs::path& raw_response_path, const std::string& url);

}  // namespace kbrun::llm
