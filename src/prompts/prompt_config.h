// prompts/config.json: which prompt template a problem gets, and the hints
// that reflection prompts add for each failure kind.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "prompts/regex.h"

namespace kbrun::prompts {

namespace fs = std::filesystem;

struct PromptChoice {
  fs::path template_path;
  std::string reason;  // "pattern 'relu|sigmoid' matched '19_ReLU'" or "default_prompt"
};

// Format (docs/PROMPTS.md): default_prompt, patterns (regex -> template, first match in file
// order wins, matched case-insensitively against the problem name), reflection_prompt,
// reflection_hints, and backends.<backend> overriding default_prompt / patterns / hints.
class PromptConfig {
 public:
  // Throws std::runtime_error naming the file and key on bad JSON, bad regex, missing prompt file.
  // `backend` applies the config's "backends"."<backend>" section when there is one.
  static PromptConfig Load(const fs::path& config_json, const std::string& backend = "cuda");
  // First matching pattern in file order (Python `re.search` semantics via PCRE2), else default.
  PromptChoice Select(const std::string& problem_name) const;
  // Hints for a failure kind ("Compile error", "Runtime error", "Incorrect", "Timeout",
  // "PERFORMANCE TOO SLOW"); empty when none.
  std::vector<std::string> HintsFor(const std::string& failure_kind) const;
  const fs::path& dir() const { return dir_; }
  const fs::path& path() const { return path_; }
  // The reflection template (prompts/reflection.txt by default); empty when the set has none.
  const fs::path& reflection_template() const { return reflection_; }
  // "reflection_profile" (default true): reflection feedback carries the previous sample's
  // profile digest and roofline when it was evaluated with --profile.
  bool reflection_profile() const { return reflection_profile_; }

 private:
  fs::path path_;
  fs::path reflection_;
  bool reflection_profile_ = true;
  std::vector<Regex> regexes_;             // compiled patterns_, same order
  std::vector<std::string> pattern_keys_;  // where each pattern is in the file, for messages
  fs::path dir_;
  fs::path default_prompt_;
  std::vector<std::pair<std::string, fs::path>> patterns_;  // in file order
  std::map<std::string, std::vector<std::string>> hints_;
};

// The prompt set of a backend: <prompts_dir>/config.json for cuda and thunderkittens,
// <prompts_dir>/hip/config.json for hip and hipkittens.
fs::path PromptConfigPathFor(const fs::path& prompts_dir, const std::string& backend);
// The shipped prompts: $KBRUN_PROMPTS_DIR, ./prompts, <exe dir>/../share/kbrun/prompts,
// <exe dir>/prompts, then the source tree's prompts/ (first that has config.json).
fs::path DefaultPromptsDir();

// Template placeholders: {{name}} replaced from `vars`; unknown placeholders are an error.
std::string RenderTemplate(const std::string& text, const std::map<std::string, std::string>& vars);

}  // namespace kbrun::prompts
