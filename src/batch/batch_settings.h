// The settings a results folder was run with, and which of them a resumed batch may not
// change silently: those that decide what is generated (samples, attempts, model, prompts...)
// and how it is judged (target speedup, backend, precision, tolerances...). The others
// (pools, lanes, schedule, problem range, base URL) only decide how fast it goes.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kbrun::batch {

struct SettingChange {
  std::string key;
  nlohmann::json before, after;
};

// The keys of summary.json's "config" that shape the plan.
const std::vector<std::string>& PlanSettingKeys();

// Plan settings whose value differs between an earlier run's config and this run's. A key
// the earlier config lacks (written by an older kbrun) is not compared.
std::vector<SettingChange> PlanSettingChanges(const nlohmann::json& before, const nlohmann::json& after);

// "samples: 1 -> 2; target_speedup: 1.0 -> 1.5"
std::string DescribeChanges(const std::vector<SettingChange>& changes);

}  // namespace kbrun::batch
