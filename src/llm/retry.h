// Retrying HTTP calls to LLM APIs: exponential backoff with jitter on 429, 5xx,
// timeouts and network errors; Retry-After honoured; no retry on client errors.
#pragma once

#include <optional>
#include <string>

#include "llm/http_client.h"
#include "llm/provider.h"

namespace kbrun::llm {

struct RetryPolicy {
  int max_retries = 5;  // retries after the first attempt
  double backoff_base_s = 1.0;
  double backoff_max_s = 60.0;
};

// Sends `request` until it gets a 2xx response and returns it. Throws LlmError
// (kAuth, kBadRequest, kRateLimited, kServer, kNetwork, kTimeout) when a failure
// cannot be retried or the retries are used up. *attempts counts HTTP requests made.
HttpResponse SendWithRetries(const HttpRequest& request, const RetryPolicy& policy, int* attempts);

// Seconds before retry number `retry` (1-based): base * 2^(retry-1), capped at max,
// times a random factor in [0.5, 1]. A Retry-After value replaces it (capped at max).
double BackoffDelay(int retry, const RetryPolicy& policy, std::optional<double> retry_after_s);
// "Retry-After: 3" -> 3. The HTTP-date form is not supported (nullopt: use backoff).
std::optional<double> ParseRetryAfter(const std::string& value);
// Sleeps in short slices so that Ctrl-C is not held up by a long wait. False: cancelled.
bool SleepUnlessCancelled(double seconds);
// The human-readable error in an API error body ({"error":{"message":...}}, {"detail":...}, ...),
// or the start of the body when it has none.
std::string ServerErrorMessage(const std::string& body);

}  // namespace kbrun::llm
