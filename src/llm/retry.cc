#include "llm/retry.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::llm {
namespace {

bool Retryable(long status) { return status == 408 || status == 429 || status >= 500; }

LlmError ClientError(const HttpRequest& request, const HttpResponse& r) {
  std::string server = ServerErrorMessage(r.body);
  if (r.status == 401 || r.status == 403) {
    return LlmError(LlmErrorKind::kAuth,
                    fmt::format("HTTP {} from {}: the API key was refused; check LLM_GATEWAY_KEY (or "
                                "OPENAI_API_KEY / ANTHROPIC_API_KEY) and that it is valid for this base URL. "
                                "Server said: {}",
                                r.status, request.url, server),
                    static_cast<int>(r.status));
  }
  if (r.status == 404) {
    return LlmError(LlmErrorKind::kBadRequest,
                    fmt::format("HTTP 404 from {}: check --base-url (usually it ends in /v1) and --model. "
                                "Server said: {}",
                                request.url, server),
                    404);
  }
  return LlmError(LlmErrorKind::kBadRequest,
                  fmt::format("HTTP {} from {}: the server rejected the request: {}", r.status, request.url, server),
                  static_cast<int>(r.status));
}

LlmError FinalError(const HttpRequest& request, const HttpResponse& r, int attempts) {
  std::string after = fmt::format("after {} attempt{}", attempts, attempts == 1 ? "" : "s");
  if (!r.transport_ok) {
    if (r.no_connection) {
      return LlmError(LlmErrorKind::kConnection,
                      fmt::format("{}: no connection {}: {}", request.url, after, r.transport_error));
    }
    if (r.timed_out) {
      return LlmError(LlmErrorKind::kTimeout,
                      fmt::format("{}: timed out {} ({}); raise --request-timeout or check the server", request.url,
                                  after, r.transport_error));
    }
    return LlmError(LlmErrorKind::kNetwork,
                    fmt::format("{}: network error {}: {}", request.url, after, r.transport_error));
  }
  std::string server = ServerErrorMessage(r.body);
  if (r.status == 429) {
    return LlmError(LlmErrorKind::kRateLimited,
                    fmt::format("{}: rate limited (HTTP 429) {}: {}", request.url, after, server), 429);
  }
  if (r.status == 408) {
    return LlmError(LlmErrorKind::kTimeout, fmt::format("{}: HTTP 408 {}: {}", request.url, after, server), 408);
  }
  return LlmError(LlmErrorKind::kServer, fmt::format("{}: HTTP {} {}: {}", request.url, r.status, after, server),
                  static_cast<int>(r.status));
}

}  // namespace

// Sleeps in short slices so that Ctrl-C is not held up by a long backoff.
bool SleepUnlessCancelled(double seconds) {
  using Clock = std::chrono::steady_clock;
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    if (CancelRequested()) return false;
    Clock::duration left = end - Clock::now();
    std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(50)));
  }
  return !CancelRequested();
}

std::optional<double> ParseRetryAfter(const std::string& value) {
  std::string v = Trim(value);
  if (v.empty()) return std::nullopt;
  try {
    size_t used = 0;
    double seconds = std::stod(v, &used);
    if (used != v.size() || !std::isfinite(seconds) || seconds < 0) return std::nullopt;
    return seconds;
  } catch (const std::exception&) {
    return std::nullopt;  // HTTP-date form
  }
}

double BackoffDelay(int retry, const RetryPolicy& policy, std::optional<double> retry_after_s) {
  if (retry_after_s) return std::min(*retry_after_s, policy.backoff_max_s);
  double delay = std::min(policy.backoff_max_s, policy.backoff_base_s * std::pow(2.0, std::max(0, retry - 1)));
  // Jitter spreads the retries of parallel workers that failed at the same moment.
  thread_local std::mt19937 rng{std::random_device{}()};
  return delay * std::uniform_real_distribution<double>(0.5, 1.0)(rng);
}

std::string ServerErrorMessage(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    for (const char* key : {"error", "detail", "message"}) {
      if (!j.contains(key)) continue;
      const auto& e = j[key];
      if (e.is_string()) return e.get<std::string>();
      if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"].get<std::string>();
      return e.dump();
    }
  }
  std::string trimmed = Trim(body);
  if (trimmed.empty()) return "(empty body)";
  if (trimmed.size() > 500) trimmed = trimmed.substr(0, 500) + " [...]";
  return trimmed;
}

HttpResponse SendWithRetries(const HttpRequest& request, const RetryPolicy& policy, int* attempts) {
  *attempts = 0;
  for (int attempt = 1;; ++attempt) {
    *attempts = attempt;
    HttpResponse r = HttpPost(request);
    if (r.interrupted) throw LlmError(LlmErrorKind::kNetwork, request.url + ": interrupted");
    if (r.transport_ok && r.status >= 200 && r.status < 300) return r;
    if (r.transport_ok && !Retryable(r.status)) throw ClientError(request, r);
    if (attempt > policy.max_retries) throw FinalError(request, r, attempt);
    std::optional<double> retry_after;
    if (auto it = r.headers.find("retry-after"); it != r.headers.end()) retry_after = ParseRetryAfter(it->second);
    if (!SleepUnlessCancelled(BackoffDelay(attempt, policy, retry_after))) {
      throw LlmError(LlmErrorKind::kNetwork, request.url + ": interrupted");
    }
  }
}

}  // namespace kbrun::llm
