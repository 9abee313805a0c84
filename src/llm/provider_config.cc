// Provider settings from flags, environment and llm.json, merged in that order.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "llm/provider.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::llm {
namespace {

const char* const kDefaultOpenAiUrl = "https://api.openai.com/v1";
const char* const kDefaultAnthropicUrl = "https://api.anthropic.com/v1";

std::optional<std::string> EnvValue(const std::map<std::string, std::string>& env, const std::string& name) {
  auto it = env.find(name);
  if (it == env.end() || Trim(it->second).empty()) return std::nullopt;  // empty counts as unset
  return Trim(it->second);
}

double ParseDouble(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {}
  throw std::invalid_argument(fmt::format("{}: not a number: '{}'", what, text));
}

int ParseInt(const std::string& text, const std::string& what) {
  try {
    size_t used = 0;
    int v = std::stoi(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {}
  throw std::invalid_argument(fmt::format("{}: not an integer: '{}'", what, text));
}

template <typename T>
void Overlay(std::optional<T>& low, const std::optional<T>& high) {
  if (high) low = high;
}

// Applies `high` over `low`: set fields of `high` win.
void OverlaySettings(ProviderSettings& low, const ProviderSettings& high) {
  Overlay(low.provider, high.provider);
  Overlay(low.base_url, high.base_url);
  Overlay(low.model, high.model);
  Overlay(low.reasoning_effort, high.reasoning_effort);
  Overlay(low.temperature, high.temperature);
  Overlay(low.connect_timeout_s, high.connect_timeout_s);
  Overlay(low.request_timeout_s, high.request_timeout_s);
  Overlay(low.backoff_base_s, high.backoff_base_s);
  Overlay(low.backoff_max_s, high.backoff_max_s);
  Overlay(low.max_tokens, high.max_tokens);
  Overlay(low.max_retries, high.max_retries);
  Overlay(low.replay_source, high.replay_source);
  Overlay(low.replay_latency_s, high.replay_latency_s);
  Overlay(low.api_key_env, high.api_key_env);
  Overlay(low.api_key, high.api_key);
  for (const auto& [name, value] : high.extra_headers) {
    // Header names are case-insensitive: drop a lower layer's spelling of the same name.
    std::erase_if(low.extra_headers, [&](const auto& kv) { return ToLower(kv.first) == ToLower(name); });
    low.extra_headers[name] = value;
  }
}

bool IsEnvName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char ch) { return std::isalnum(ch) || ch == '_'; });
}

std::string ResolveApiKey(const ProviderSettings& s, const std::string& provider,
                          const std::map<std::string, std::string>& env) {
  if (s.api_key) return *s.api_key;
  if (auto key = EnvValue(env, "LLM_GATEWAY_KEY")) return *key;
  if (s.api_key_env) {
    if (auto key = EnvValue(env, *s.api_key_env)) return *key;
  }
  if (provider == "openai") return EnvValue(env, "OPENAI_API_KEY").value_or("");
  if (provider == "anthropic") return EnvValue(env, "ANTHROPIC_API_KEY").value_or("");
  return "";
}

void Validate(const ProviderConfig& c) {
  if (c.provider != "openai" && c.provider != "anthropic" && c.provider != "replay") {
    throw std::invalid_argument(fmt::format("unknown provider '{}': expected openai, anthropic or replay", c.provider));
  }
  if (c.temperature < 0 || c.temperature > 2) {
    throw std::invalid_argument(fmt::format("temperature {} is out of range [0, 2]", c.temperature));
  }
  if (c.max_tokens <= 0) throw std::invalid_argument(fmt::format("max_tokens must be positive, not {}", c.max_tokens));
  if (c.max_retries < 0) throw std::invalid_argument("max_retries must not be negative");
  if (c.connect_timeout_s <= 0 || c.request_timeout_s <= 0) throw std::invalid_argument("timeouts must be positive");
  if (c.backoff_base_s < 0 || c.backoff_max_s < 0) throw std::invalid_argument("backoff delays must not be negative");
  if (c.replay_latency_s < 0) throw std::invalid_argument("replay latency must not be negative");
}

}  // namespace

std::pair<std::string, std::string> ParseHeader(const std::string& line) {
  size_t colon = line.find(':');
  std::string name = colon == std::string::npos ? "" : Trim(line.substr(0, colon));
  if (name.empty() || name.find_first_of(" \t\r\n") != std::string::npos) {
    throw std::invalid_argument(fmt::format("bad header '{}': expected 'Name: value'", line));
  }
  return {name, Trim(line.substr(colon + 1))};
}

ProviderSettings SettingsFromEnvironment(const std::map<std::string, std::string>& env) {
  ProviderSettings s;
  s.provider = EnvValue(env, "LLM_PROVIDER");
  s.base_url = EnvValue(env, "LLM_BASE_URL");
  s.model = EnvValue(env, "LLM_MODEL");
  s.reasoning_effort = EnvValue(env, "LLM_REASONING_EFFORT");
  if (auto v = EnvValue(env, "LLM_TEMPERATURE")) s.temperature = ParseDouble(*v, "LLM_TEMPERATURE");
  if (auto v = EnvValue(env, "LLM_MAX_TOKENS")) s.max_tokens = ParseInt(*v, "LLM_MAX_TOKENS");
  if (auto v = EnvValue(env, "LLM_MAX_RETRIES")) s.max_retries = ParseInt(*v, "LLM_MAX_RETRIES");
  if (auto v = EnvValue(env, "LLM_CONNECT_TIMEOUT_S")) s.connect_timeout_s = ParseDouble(*v, "LLM_CONNECT_TIMEOUT_S");
  if (auto v = EnvValue(env, "LLM_REQUEST_TIMEOUT_S")) s.request_timeout_s = ParseDouble(*v, "LLM_REQUEST_TIMEOUT_S");
  if (auto v = EnvValue(env, "LLM_REPLAY")) s.replay_source = fs::path(*v);
  if (auto v = EnvValue(env, "LLM_REPLAY_LATENCY")) s.replay_latency_s = ParseDouble(*v, "LLM_REPLAY_LATENCY");
  if (auto v = EnvValue(env, "LLM_HEADERS")) {
    for (const auto& line : SplitLines(*v)) {
      if (Trim(line).empty()) continue;
      try {
        s.extra_headers.insert(ParseHeader(line));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("LLM_HEADERS: ") + e.what());
      }
    }
  }
  return s;
}

ProviderSettings SettingsFromFile(const fs::path& llm_json) {
  auto text = ReadFile(llm_json);
  if (!text) throw std::runtime_error(fmt::format("{}: cannot read the LLM settings file", llm_json.string()));
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw std::runtime_error(fmt::format("{}: not a JSON object (invalid JSON?)", llm_json.string()));
  }
  auto fail = [&](const std::string& key, const std::string& what) {
    return std::runtime_error(fmt::format("{}: key '{}': {}", llm_json.string(), key, what));
  };
  auto str = [&](const std::string& key) {
    if (!j[key].is_string()) throw fail(key, "expected a string");
    return j[key].get<std::string>();
  };
  auto num = [&](const std::string& key) {
    if (!j[key].is_number()) throw fail(key, "expected a number");
    return j[key].get<double>();
  };
  auto integer = [&](const std::string& key) {
    if (!j[key].is_number_integer()) throw fail(key, "expected an integer");
    return j[key].get<int>();
  };
  ProviderSettings s;
  for (const auto& [key, value] : j.items()) {
    if (StartsWith(key, "_") || key == "comment") continue;  // room for comments
    if (key == "provider")
      s.provider = str(key);
    else if (key == "base_url")
      s.base_url = str(key);
    else if (key == "model")
      s.model = str(key);
    else if (key == "reasoning_effort")
      s.reasoning_effort = str(key);
    else if (key == "api_key_env")
      s.api_key_env = str(key);
    else if (key == "temperature")
      s.temperature = num(key);
    else if (key == "connect_timeout_s")
      s.connect_timeout_s = num(key);
    else if (key == "request_timeout_s")
      s.request_timeout_s = num(key);
    else if (key == "backoff_base_s")
      s.backoff_base_s = num(key);
    else if (key == "backoff_max_s")
      s.backoff_max_s = num(key);
    else if (key == "replay_latency_s")
      s.replay_latency_s = num(key);
    else if (key == "max_tokens")
      s.max_tokens = integer(key);
    else if (key == "max_retries")
      s.max_retries = integer(key);
    else if (key == "replay") {
      fs::path p = str(key);
      s.replay_source = p.is_absolute() ? p : llm_json.parent_path() / p;  // relative to the file
    } else if (key == "headers") {
      if (!value.is_object()) throw fail(key, "expected an object of \"Name\": \"value\"");
      for (const auto& [name, v] : value.items()) {
        if (!v.is_string()) throw fail("headers." + name, "expected a string");
        s.extra_headers[name] = v.get<std::string>();
      }
    } else {
      throw fail(key, "unknown key (see docs/PROVIDERS.md)");
    }
  }
  if (s.api_key_env && !IsEnvName(*s.api_key_env)) {
    // Catches a key pasted into the file, which would then sit in results folders and backups.
    throw fail("api_key_env", "must name an environment variable (letters, digits, '_'), not hold the key");
  }
  return s;
}

ProviderConfig ResolveProviderConfig(const ProviderSettings& flags, const fs::path& llm_json,
                                     const std::map<std::string, std::string>& env) {
  ProviderSettings merged;
  if (!llm_json.empty()) merged = SettingsFromFile(llm_json);
  OverlaySettings(merged, SettingsFromEnvironment(env));
  OverlaySettings(merged, flags);

  ProviderConfig c;
  if (merged.provider) c.provider = ToLower(*merged.provider);
  if (merged.base_url) c.base_url = *merged.base_url;
  if (merged.model) c.model = *merged.model;
  if (merged.reasoning_effort) c.reasoning_effort = *merged.reasoning_effort;
  if (merged.temperature) c.temperature = *merged.temperature;
  if (merged.max_tokens) c.max_tokens = *merged.max_tokens;
  if (merged.connect_timeout_s) c.connect_timeout_s = *merged.connect_timeout_s;
  if (merged.request_timeout_s) c.request_timeout_s = *merged.request_timeout_s;
  if (merged.max_retries) c.max_retries = *merged.max_retries;
  if (merged.backoff_base_s) c.backoff_base_s = *merged.backoff_base_s;
  if (merged.backoff_max_s) c.backoff_max_s = *merged.backoff_max_s;
  if (merged.replay_source) c.replay_source = *merged.replay_source;
  if (merged.replay_latency_s) c.replay_latency_s = *merged.replay_latency_s;
  c.extra_headers = merged.extra_headers;
  Validate(c);

  c.api_key = ResolveApiKey(merged, c.provider, env);
  if (c.base_url.empty() && c.provider == "openai") c.base_url = kDefaultOpenAiUrl;
  if (c.base_url.empty() && c.provider == "anthropic") c.base_url = kDefaultAnthropicUrl;
  return c;
}

ProviderConfig ResolveConfig(ProviderConfig config) {
  // The struct cannot say which fields were set: a value equal to the default counts as unset.
  const ProviderConfig d;
  ProviderSettings s;
  if (config.provider != d.provider) s.provider = config.provider;
  if (!config.base_url.empty()) s.base_url = config.base_url;
  if (!config.model.empty()) s.model = config.model;
  if (!config.api_key.empty()) s.api_key = config.api_key;
  if (!config.reasoning_effort.empty()) s.reasoning_effort = config.reasoning_effort;
  if (config.temperature != d.temperature) s.temperature = config.temperature;
  if (config.max_tokens != d.max_tokens) s.max_tokens = config.max_tokens;
  if (config.connect_timeout_s != d.connect_timeout_s) s.connect_timeout_s = config.connect_timeout_s;
  if (config.request_timeout_s != d.request_timeout_s) s.request_timeout_s = config.request_timeout_s;
  if (config.max_retries != d.max_retries) s.max_retries = config.max_retries;
  if (config.backoff_base_s != d.backoff_base_s) s.backoff_base_s = config.backoff_base_s;
  if (config.backoff_max_s != d.backoff_max_s) s.backoff_max_s = config.backoff_max_s;
  if (!config.replay_source.empty()) s.replay_source = config.replay_source;
  if (config.replay_latency_s != d.replay_latency_s) s.replay_latency_s = config.replay_latency_s;
  s.extra_headers = config.extra_headers;
  return ResolveProviderConfig(s, {}, CurrentEnvironment());
}

}  // namespace kbrun::llm
