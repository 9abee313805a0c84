#include "batch/batch_settings.h"

#include <fmt/format.h>

namespace kbrun::batch {

using nlohmann::json;

const std::vector<std::string>& PlanSettingKeys() {
  static const std::vector<std::string> keys = {// What is generated.
                                                "problems_dir", "samples", "attempts", "provider", "model",
                                                "prompts_dir", "temperature", "max_tokens", "reasoning_effort",
                                                // How it is judged.
                                                "target_speedup", "device", "precision", "backend",
                                                "correctness_trials", "timing_trials", "warmup_runs", "tolerance",
                                                "atol", "rtol", "shapes", "allow_library_kernels"};
  return keys;
}

std::vector<SettingChange> PlanSettingChanges(const json& before, const json& after) {
  std::vector<SettingChange> changes;
  if (!before.is_object()) return changes;
  for (const std::string& key : PlanSettingKeys()) {
    if (!before.contains(key)) continue;
    json now = after.is_object() && after.contains(key) ? after[key] : json(nullptr);
    if (before[key] != now) changes.push_back({key, before[key], now});
  }
  return changes;
}

std::string DescribeChanges(const std::vector<SettingChange>& changes) {
  std::string out;
  for (const auto& c : changes) {
    out += fmt::format("{}{}: {} -> {}", out.empty() ? "" : "; ", c.key, c.before.dump(), c.after.dump());
  }
  return out;
}

}  // namespace kbrun::batch
