// LLM providers: one interface, three implementations
// (OpenAI-compatible Chat Completions, Anthropic Messages, replay from files).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kbrun::llm {

namespace fs = std::filesystem;

struct ProviderConfig {
  std::string provider = "openai";  // openai | anthropic | replay
  std::string base_url;             // LLM_BASE_URL; default per provider
  std::string model;                // LLM_MODEL
  std::string api_key;              // LLM_GATEWAY_KEY, then provider fallbacks
  double temperature = 0.7;
  int max_tokens = 8192;
  std::string reasoning_effort;  // empty: not sent
  std::map<std::string, std::string> extra_headers;
  double connect_timeout_s = 10;
  double request_timeout_s = 600;
  int max_retries = 5;
  double backoff_base_s = 1.0;  // exponential backoff with jitter
  double backoff_max_s = 60.0;
  fs::path replay_source;       // replay: a file, or a folder of responses
  double replay_latency_s = 0;  // replay: simulated seconds per call (benchmarks)
};

struct Completion {
  std::string text;  // the model's answer (message content)
  std::string raw;   // the raw HTTP body (or replay file)
  int prompt_tokens = 0;
  int completion_tokens = 0;
  double latency_s = 0;       // wall time including retries
  int attempts = 1;           // HTTP requests made
  std::string model;          // as reported by the server
  std::string finish_reason;  // "stop", "length" (truncated), "end_turn", ...; empty if not reported
};

// Classified failure of an LLM call.
// kConnection: no connection to the endpoint at all (refused, host unknown, connect timeout):
// the endpoint is down, not this request wrong; the batch pauses its LLM stage on a run of them.
enum class LlmErrorKind {
  kAuth,
  kBadRequest,
  kRateLimited,
  kServer,
  kNetwork,
  kTimeout,
  kMalformed,
  kNoKey,
  kReplayMissing,
  kConnection
};
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
  std::string system;  // may be empty
  std::string prompt;  // the user message
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
// A field still equal to its ProviderConfig{} default counts as unset.
// Throws std::invalid_argument on a malformed environment value.
ProviderConfig ResolveConfig(ProviderConfig config);
// Throws LlmError(kNoKey) when the provider needs an API key and none is set,
// std::invalid_argument for an unknown provider or a missing model.
std::unique_ptr<Provider> MakeProvider(const ProviderConfig& config);

// --- Layered settings (docs/PROVIDERS.md) -------------------------------------------
// One source of settings; unset fields fall through to the next layer.
struct ProviderSettings {
  std::optional<std::string> provider, base_url, model, reasoning_effort;
  std::optional<double> temperature, connect_timeout_s, request_timeout_s, backoff_base_s, backoff_max_s,
      replay_latency_s;
  std::optional<int> max_tokens, max_retries;
  std::optional<fs::path> replay_source;
  std::optional<std::string> api_key_env;            // llm.json only: name of the variable holding the key
  std::optional<std::string> api_key;                // programmatic only: never a flag (it would show in ps)
  std::map<std::string, std::string> extra_headers;  // merged over layers; higher layer wins per name
};

// LLM_PROVIDER, LLM_BASE_URL, LLM_MODEL, LLM_TEMPERATURE, LLM_MAX_TOKENS, LLM_REASONING_EFFORT,
// LLM_HEADERS (newline-separated "Name: value"), LLM_REPLAY, LLM_REPLAY_LATENCY, LLM_CONNECT_TIMEOUT_S,
// LLM_REQUEST_TIMEOUT_S, LLM_MAX_RETRIES. Throws std::invalid_argument naming the variable.
ProviderSettings SettingsFromEnvironment(const std::map<std::string, std::string>& env);
// llm.json (keys in docs/PROVIDERS.md). Throws std::runtime_error naming the file and key.
ProviderSettings SettingsFromFile(const fs::path& llm_json);
// "Name: value" -> {Name, value}; throws std::invalid_argument when there is no ':'.
std::pair<std::string, std::string> ParseHeader(const std::string& line);

// flags > environment > llm.json (skipped when `llm_json` is empty) > defaults. The API key
// comes from LLM_GATEWAY_KEY, then llm.json's api_key_env, then OPENAI_API_KEY / ANTHROPIC_API_KEY.
// Sets the provider's default base URL. Throws like the two functions above.
ProviderConfig ResolveProviderConfig(const ProviderSettings& flags, const fs::path& llm_json,
                                     const std::map<std::string, std::string>& env);

// Where a replay folder looks for `replay_key`, in order (docs/PROVIDERS.md):
// "19_ReLU/attempt2_sample1" -> 19_ReLU/attempt2_sample1.txt, 19_ReLU/attempt2.txt, 19_ReLU.txt.
std::vector<fs::path> ReplayCandidates(const fs::path& folder, const std::string& replay_key);

}  // namespace kbrun::llm
