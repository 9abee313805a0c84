#include "cli/generation_flags.h"

#include <cstdlib>

#include <fmt/format.h>

#include "cli/commands.h"
#include "util/env_options.h"
#include "util/subprocess.h"

namespace kbrun::cli {

const char* const kLlmSettingsHelp =
    "The LLM settings: a flag wins over its variable, a variable over llm.json (docs/PROVIDERS.md).\n";

void AddLlmFlags(CLI::App& cmd, LlmFlags& f) {
  cmd.add_option("--provider", f.provider, "openai | anthropic | replay (env LLM_PROVIDER; default openai)")
      ->check(CLI::IsMember({"openai", "anthropic", "replay"}));
  cmd.add_option("--base-url", f.base_url, "API base URL, e.g. http://localhost:8000/v1 (env LLM_BASE_URL)");
  cmd.add_option("--model", f.model, "Model name (env LLM_MODEL)");
  cmd.add_option("--temperature", f.temperature, "Sampling temperature (env LLM_TEMPERATURE; default 0.7)")
      ->check(CLI::Range(0.0, 2.0));
  cmd.add_option("--max-tokens", f.max_tokens, "Maximum tokens of the answer (env LLM_MAX_TOKENS; default 8192)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--reasoning-effort", f.reasoning_effort,
                 "Reasoning effort, e.g. low | medium | high (env LLM_REASONING_EFFORT; default: not sent)");
  cmd.add_option("--header", f.headers, "Extra HTTP header 'Name: value' (repeatable; env LLM_HEADERS)")
      ->allow_extra_args(false);
  cmd.add_option("--replay", f.replay, "Replay responses from this file or folder (implies --provider replay)");
  cmd.add_option(
         "--replay-latency", f.replay_latency,
         "Replay: seconds each call waits, a simulated model for benchmarks (env LLM_REPLAY_LATENCY; default 0)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--connect-timeout", f.connect_timeout, "Seconds to connect (env LLM_CONNECT_TIMEOUT_S; default 10)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--request-timeout", f.request_timeout,
                 "Seconds for one whole request (env LLM_REQUEST_TIMEOUT_S; default 600)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--max-retries", f.max_retries,
                 "Retries on 429, 5xx, timeouts and network errors (env LLM_MAX_RETRIES; default 5)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("--llm-config", f.llm_config,
                 "LLM settings file (JSON; default $KBRUN_LLM_CONFIG, else <prompts dir>/llm.json if present)");
}

void AddPromptFlags(CLI::App& cmd, PromptFlags& f) {
  cmd.add_option("--prompts-dir", f.prompts_dir,
                 "Prompts folder (env KBRUN_PROMPTS_DIR; default ./prompts, then the installed ones)");
  cmd.add_option("--prompt-config", f.prompt_config,
                 "Prompt configuration (default <prompts dir>/config.json, hip/config.json for hip, hipkittens)");
}

fs::path ResolvePromptsDir(const PromptFlags& f) {
  return f.prompts_dir.empty() ? prompts::DefaultPromptsDir() : fs::path(f.prompts_dir);
}

prompts::PromptConfig LoadPromptConfig(const PromptFlags& f, const std::string& backend) {
  fs::path path =
      f.prompt_config.empty() ? prompts::PromptConfigPathFor(ResolvePromptsDir(f), backend) : fs::path(f.prompt_config);
  try {
    return prompts::PromptConfig::Load(path, backend);
  } catch (const std::exception& e) {
    throw CommandError{kExitConfig, e.what()};
  }
}

llm::ProviderConfig ResolveLlmConfig(const LlmFlags& f, const fs::path& prompts_dir, fs::path* llm_json) {
  fs::path file;
  if (!f.llm_config.empty()) {
    file = f.llm_config;
    if (!fs::is_regular_file(file)) throw CommandError{kExitUsage, "--llm-config: no such file: " + f.llm_config};
  } else if (auto env = GetEnvOption("KBRUN_LLM_CONFIG")) {
    file = *env;
    if (!fs::is_regular_file(file))
      throw CommandError{kExitConfig, fmt::format("KBRUN_LLM_CONFIG: no such file: {}", *env)};
  } else if (fs::is_regular_file(prompts_dir / "llm.json")) {
    file = prompts_dir / "llm.json";
  }
  if (llm_json) *llm_json = file;

  llm::ProviderSettings s;
  s.provider = f.provider;
  if (f.replay && !s.provider) s.provider = "replay";
  s.base_url = f.base_url;
  s.model = f.model;
  s.reasoning_effort = f.reasoning_effort;
  s.temperature = f.temperature;
  s.max_tokens = f.max_tokens;
  s.max_retries = f.max_retries;
  s.connect_timeout_s = f.connect_timeout;
  s.request_timeout_s = f.request_timeout;
  if (f.replay) s.replay_source = fs::path(*f.replay);
  s.replay_latency_s = f.replay_latency;
  try {
    for (const auto& h : f.headers) s.extra_headers.insert(llm::ParseHeader(h));
  } catch (const std::invalid_argument& e) {
    throw CommandError{kExitUsage, std::string("--header: ") + e.what()};
  }
  try {
    return llm::ResolveProviderConfig(s, file, CurrentEnvironment());
  } catch (const std::exception& e) {
    throw CommandError{kExitConfig, e.what()};
  }
}

}  // namespace kbrun::cli
