// LLM providers: one interface, three implementations
// (OpenAI-compatible Chat Completions, Anthropic Messages, replay from files).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace kbrun::llm {

namespace fs = std::filesystem;

struct ProviderConfig {
  std::string provider = "openai";   // openai | anthropic | replay
  std::string base_url;              // LLM_BASE_URL; default per provider
  std::string model;                 // LLM_MODEL
  std::string api_key;               // LLM_GATEWAY_KEY, then provider fallbacks
  double temperature = 0.7;
  int max_tokens = 8192;
  std::string reasoning_effort;      // empty: not sent
  std::map<std::string, std::string> extra_headers;
  double connect_timeout_s = 10;
  double request_timeout_s = 600;
  int max_retries = 5;
  double backoff_base_s = 1.0;       // exponential backoff with jitter
  double backoff_max_s = 60.0;
  fs::path replay_source;            // replay: a file, or a folder of responses
};

struct Completion {
  std::string text;        // the model's answer (message content)
  std::string raw;         // the raw HTTP body (or replay file)
  int prompt_tokens = 0;
  int completion_tokens = 0;
  double latency_s = 0;    // wall time including retries
  int attempts = 1;        // HTTP requests made
  std::string model;       // as reported by the server
};

// Classified failure of an LLM call.
enum class LlmErrorKind { kAuth, kBadRequest, kRateLimited, kServer, kNetwork, kTimeout, kMalformed, kNoKey, kReplayMissing };
std::string LlmErrorKindName(LlmErrorKind k);

class LlmError : public std::runtime_error {
 public:
  LlmError(LlmErrorKind kind, const std::string& message, int http_status = 0)
      : std::runtime_error(message), kind_(kind), http_status_(http_status) {}
  LlmErrorKind kind() const { return kind_; }
  int http_status() const { return http_status_; }

 private:
  LlmErrorKind kind_;
  int http_status_;
};

struct CompletionRequest {
  std::string system;          // may be empty
  std::string prompt;          // the user message
  // Key the replay provider uses to pick a response (e.g. "19_ReLU/attempt2_sample1").
  std::string replay_key;
  // The raw response body is written here (atomically) before it is parsed.
  fs::path raw_response_path;
};

class Provider {
 public:
  virtual ~Provider() = default;
  // Thread-safe. Throws LlmError.
  virtual Completion Complete(const CompletionRequest& request) = 0;
  virtual bool NeedsApiKey() const = 0;
};

// Fills unset fields from the environment (LLM_GATEWAY_KEY, LLM_BASE_URL, LLM_MODEL, ...).
ProviderConfig ResolveConfig(ProviderConfig config);
std::unique_ptr<Provider> MakeProvider(const ProviderConfig& config);

}  // namespace kbrun::llm
