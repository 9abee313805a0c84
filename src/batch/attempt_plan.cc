#include "batch/attempt_plan.h"

#include <algorithm>

namespace kbrun::batch {

AttemptPlan PlanNextAttempt(const std::map<int, SampleRecord>& records, const std::function<bool(int)>& has_response,
                            int samples_per_attempt, int max_attempts) {
  auto solved_before = [&](int attempt) {
    return std::any_of(records.begin(), records.end(),
                       [&](const auto& kv) { return kv.second.success && kv.second.id.attempt < attempt; });
  };
  AttemptPlan plan;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    if (solved_before(attempt)) break;
    for (int s = 1; s <= samples_per_attempt; ++s) {
      int index = SampleIndex(attempt, s, samples_per_attempt);
      if (records.count(index)) continue;
      (has_response(index) ? plan.to_evaluate : plan.to_generate).push_back(s);
    }
    if (!plan.to_generate.empty() || !plan.to_evaluate.empty()) {
      plan.attempt = attempt;
      return plan;
    }
  }
  plan.finished = true;
  plan.solved = std::any_of(records.begin(), records.end(), [](const auto& kv) { return kv.second.success; });
  return plan;
}

void DropRetryableRecords(std::map<int, SampleRecord>& records) {
  std::erase_if(records, [](const auto& kv) { return kv.second.status == kStatusLlmError; });
}

}  // namespace kbrun::batch
