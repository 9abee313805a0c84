#include "llm/http_provider_util.h"

#include <fmt/format.h>

#include "util/fs.h"
#include "util/text.h"

namespace kbrun::llm {

std::string EndpointUrl(const std::string& base_url, const std::string& endpoint) {
  std::string base = base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (base.size() >= endpoint.size() && base.compare(base.size() - endpoint.size(), endpoint.size(), endpoint) == 0) {
    return base;
  }
  return base + "/" + endpoint;
}

HttpRequest MakeHttpRequest(const ProviderConfig& config, const std::string& url,
                            const std::map<std::string, std::string>& headers, const std::string& body) {
  HttpRequest r;
  r.url = url;
  r.body = body;
  r.connect_timeout_s = config.connect_timeout_s;
  r.total_timeout_s = config.request_timeout_s;
  for (const auto& [name, value] : headers) {
    bool overridden = false;
    for (const auto& [extra, unused] : config.extra_headers) overridden |= ToLower(extra) == ToLower(name);
    if (!overridden) r.headers.push_back(name + ": " + value);
  }
  for (const auto& [name, value] : config.extra_headers) r.headers.push_back(name + ": " + value);
  return r;
}

RetryPolicy PolicyFor(const ProviderConfig& config) {
  return RetryPolicy{config.max_retries, config.backoff_base_s, config.backoff_max_s};
}

nlohmann::json SaveAndParse(const HttpResponse& response, const fs::path& raw_response_path, const std::string& url) {
  const std::string& body = response.body;
  // The tokens are paid for: keep the body even if it turns out to be unusable.
  if (!raw_response_path.empty()) WriteFileAtomic(raw_response_path, body);
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    std::string kept =
        raw_response_path.empty() ? "" : fmt::format(" (raw body kept in {})", raw_response_path.string());
    std::string start = Trim(body.substr(0, 200));
    throw LlmError(
        LlmErrorKind::kMalformed,
        fmt::format("{}: the response is not a JSON object{}: {}", url, kept, start.empty() ? "(empty)" : start),
        static_cast<int>(response.status));
  }
  return j;
}

}  // namespace kbrun::llm
