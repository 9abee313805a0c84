#include "prompts/prompt_config.h"

#include <cstdlib>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/env_options.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::prompts {
namespace {

using nlohmann::ordered_json;

// Hint keys are matched loosely so that eval status names work too ("compile_error").
std::string NormalizeHintKey(const std::string& key) {
  std::string k = ToLower(Trim(key));
  for (char& c : k) {
    if (c == '_' || c == '-') c = ' ';
  }
  return k;
}

class ConfigReader {
 public:
  explicit ConfigReader(fs::path path) : path_(std::move(path)), dir_(path_.parent_path()) {}

  std::runtime_error Error(const std::string& key, const std::string& what) const {
    return std::runtime_error(fmt::format("{}: key '{}': {}", path_.string(), key, what));
  }

  fs::path PromptFile(const std::string& key, const ordered_json& value) const {
    if (!value.is_string() || value.get<std::string>().empty()) throw Error(key, "expected a prompt file name");
    fs::path p = value.get<std::string>();
    if (p.is_relative()) p = dir_ / p;
    if (!fs::is_regular_file(p)) throw Error(key, fmt::format("prompt file not found: {}", p.string()));
    return p;
  }

  std::vector<std::string> Hints(const std::string& key, const ordered_json& value) const {
    if (value.is_string()) return {value.get<std::string>()};
    if (!value.is_array()) throw Error(key, "expected a list of hint strings");
    std::vector<std::string> hints;
    for (const auto& h : value) {
      if (!h.is_string()) throw Error(key, "expected a list of hint strings");
      hints.push_back(h.get<std::string>());
    }
    return hints;
  }

  const fs::path& dir() const { return dir_; }

 private:
  fs::path path_, dir_;
};

bool IsCommentKey(const std::string& key) { return key == "comment" || StartsWith(key, "_"); }

}  // namespace

PromptConfig PromptConfig::Load(const fs::path& config_json, const std::string& backend) {
  auto text = ReadFile(config_json);
  if (!text) throw std::runtime_error(fmt::format("{}: cannot read the prompt configuration", config_json.string()));
  ordered_json j;
  try {
    j = ordered_json::parse(*text);  // ordered: the first matching pattern in file order wins
  } catch (const ordered_json::parse_error& e) {
    throw std::runtime_error(fmt::format("{}: invalid JSON: {}", config_json.string(), e.what()));
  }
  if (!j.is_object()) throw std::runtime_error(fmt::format("{}: expected a JSON object", config_json.string()));
  ConfigReader reader(config_json);

  PromptConfig c;
  c.path_ = config_json;
  c.dir_ = config_json.parent_path();
  // Adds one section's patterns (top level or a backend's) in file order.
  auto add_patterns = [&](const std::string& prefix, const ordered_json& patterns) {
    if (!patterns.is_object()) throw reader.Error(prefix, "expected an object of \"regex\": \"prompt file\"");
    for (const auto& [pattern, file] : patterns.items()) {
      std::string key = fmt::format("{}.{}", prefix, pattern);
      try {
        c.regexes_.push_back(Regex::Compile(pattern, /*case_insensitive=*/true));
      } catch (const std::invalid_argument& e) {
        throw reader.Error(key, e.what());
      }
      c.patterns_.emplace_back(pattern, reader.PromptFile(key, file));
      c.pattern_keys_.push_back(prefix);
    }
  };
  auto add_hints = [&](const std::string& prefix, const ordered_json& hints) {
    if (!hints.is_object()) throw reader.Error(prefix, "expected an object of \"failure kind\": [hints]");
    for (const auto& [kind, list] : hints.items()) c.hints_[kind] = reader.Hints(prefix + "." + kind, list);
  };

  // A backend's section comes first so that its patterns are tried before the general ones.
  if (j.contains("backends")) {
    if (!j["backends"].is_object()) throw reader.Error("backends", "expected an object keyed by backend");
    if (j["backends"].contains(backend)) {
      const auto& section = j["backends"][backend];
      std::string prefix = "backends." + backend;
      if (!section.is_object()) throw reader.Error(prefix, "expected an object");
      for (const auto& [key, value] : section.items()) {
        if (key == "patterns")
          add_patterns(prefix + ".patterns", value);
        else if (key != "default_prompt" && key != "reflection_hints" && !IsCommentKey(key)) {
          throw reader.Error(prefix + "." + key, "unknown key (expected default_prompt, patterns, reflection_hints)");
        }
      }
    }
  }
  for (const auto& [key, value] : j.items()) {
    if (key == "default_prompt")
      c.default_prompt_ = reader.PromptFile(key, value);
    else if (key == "patterns")
      add_patterns("patterns", value);
    else if (key == "reflection_hints")
      add_hints(key, value);
    else if (key == "reflection_prompt")
      c.reflection_ = reader.PromptFile(key, value);
    else if (key == "reflection_profile") {
      if (!value.is_boolean()) throw reader.Error(key, "expected true or false");
      c.reflection_profile_ = value.get<bool>();
    } else if (key != "backends" && !IsCommentKey(key)) {
      throw reader.Error(key,
                         "unknown key (expected default_prompt, patterns, reflection_prompt, reflection_hints, "
                         "reflection_profile, backends)");
    }
  }
  if (!j.contains("default_prompt"))
    throw reader.Error("default_prompt", "missing (the prompt when no pattern matches)");
  // The backend's default prompt and hints replace the general ones.
  if (j.contains("backends") && j["backends"].contains(backend)) {
    const auto& section = j["backends"][backend];
    std::string prefix = "backends." + backend;
    if (section.contains("default_prompt")) {
      c.default_prompt_ = reader.PromptFile(prefix + ".default_prompt", section["default_prompt"]);
    }
    if (section.contains("reflection_hints")) add_hints(prefix + ".reflection_hints", section["reflection_hints"]);
  }
  if (c.reflection_.empty() && fs::is_regular_file(c.dir_ / "reflection.txt"))
    c.reflection_ = c.dir_ / "reflection.txt";
  return c;
}

PromptChoice PromptConfig::Select(const std::string& problem_name) const {
  for (size_t i = 0; i < patterns_.size(); ++i) {
    if (regexes_[i].Search(problem_name)) {
      return {patterns_[i].second, fmt::format("{} '{}' matched '{}' (case-insensitive)", pattern_keys_[i],
                                               patterns_[i].first, problem_name)};
    }
  }
  return {default_prompt_, fmt::format("default_prompt: no pattern matched '{}'", problem_name)};
}

std::vector<std::string> PromptConfig::HintsFor(const std::string& failure_kind) const {
  if (auto it = hints_.find(failure_kind); it != hints_.end()) return it->second;
  std::string wanted = NormalizeHintKey(failure_kind);
  for (const auto& [kind, hints] : hints_) {
    if (NormalizeHintKey(kind) == wanted) return hints;
  }
  return {};
}

fs::path PromptConfigPathFor(const fs::path& prompts_dir, const std::string& backend) {
  if (backend == "hip" || backend == "hipkittens") return prompts_dir / "hip" / "config.json";
  return prompts_dir / "config.json";
}

fs::path DefaultPromptsDir() {
  std::vector<fs::path> candidates;
  if (auto env = GetEnvOption("KBRUN_PROMPTS_DIR")) return *env;  // explicit: no probing
  candidates.push_back(fs::current_path() / "prompts");
  candidates.push_back(ExecutableDir().parent_path() / "share" / "kbrun" / "prompts");
  candidates.push_back(ExecutableDir() / "prompts");
  candidates.push_back(fs::path(KBRUN_SOURCE_DIR) / "prompts");
  for (const auto& dir : candidates) {
    if (fs::is_regular_file(dir / "config.json")) return dir;
  }
  return candidates.back();
}

}  // namespace kbrun::prompts
