// LLM and prompt flags shared by `kbrun generate` and `kbrun batch`.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "llm/provider.h"
#include "prompts/prompt_config.h"
#include "util/fs.h"

namespace kbrun::cli {

struct LlmFlags {
  std::optional<std::string> provider, base_url, model, reasoning_effort, replay;
  std::optional<double> temperature, connect_timeout, request_timeout, replay_latency;
  std::optional<int> max_tokens, max_retries;
  std::vector<std::string> headers;  // "Name: value", repeatable
  std::string llm_config;            // llm.json
};

struct PromptFlags {
  std::string prompts_dir;    // default: prompts::DefaultPromptsDir()
  std::string prompt_config;  // default: prompts::PromptConfigPathFor(prompts_dir, backend)
};

void AddLlmFlags(CLI::App& cmd, LlmFlags& f);
void AddPromptFlags(CLI::App& cmd, PromptFlags& f);

// The footer line of the commands that take the LLM flags: what wins over what (their variables:
// EnvOptionsHelp).
extern const char* const kLlmSettingsHelp;

fs::path ResolvePromptsDir(const PromptFlags& f);
// Loads the prompt set for `backend`. Throws CommandError (78) naming the file and key.
prompts::PromptConfig LoadPromptConfig(const PromptFlags& f, const std::string& backend);

// flags > environment > llm.json > defaults, where llm.json is --llm-config, else
// $KBRUN_LLM_CONFIG, else <prompts dir>/llm.json when it exists (*llm_json says which, or empty).
// Throws CommandError: 64 when --llm-config does not exist, 78 for broken settings.
llm::ProviderConfig ResolveLlmConfig(const LlmFlags& f, const fs::path& prompts_dir, fs::path* llm_json = nullptr);

}  // namespace kbrun::cli
