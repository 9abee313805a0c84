// prompts/config.json: which prompt template a problem gets, and the hints
// that reflection prompts add for each failure kind.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kbrun::prompts {

namespace fs = std::filesystem;

struct PromptChoice {
  fs::path template_path;
  std::string reason;  // "pattern 'relu|sigmoid' matched '19_ReLU'" or "default_prompt"
};

class PromptConfig {
 public:
  // Throws std::runtime_error naming the file and key on bad JSON, bad regex, missing prompt file.
  static PromptConfig Load(const fs::path& config_json, const std::string& backend = "cuda");
  // First matching pattern in file order (Python `re.search` semantics via PCRE2), else default.
  PromptChoice Select(const std::string& problem_name) const;
  // Hints for a failure kind ("Compile error", "Runtime error", "Incorrect", "Timeout",
  // "PERFORMANCE TOO SLOW"); empty when none.
  std::vector<std::string> HintsFor(const std::string& failure_kind) const;
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
  fs::path default_prompt_;
  std::vector<std::pair<std::string, fs::path>> patterns_;  // in file order
  std::map<std::string, std::vector<std::string>> hints_;
};

// Template placeholders: {{name}} replaced from `vars`; unknown placeholders are an error.
std::string RenderTemplate(const std::string& text, const std::map<std::string, std::string>& vars);

}  // namespace kbrun::prompts
