#include "batch/attempt_plan.h"

#include <algorithm>

namespace kbrun::batch {

AttemptPlan PlanNextAttempt(const std::map<int, SampleRecord>& records, const std::function<bool(int)>& has_response,
                            int samples_per_attempt, int max_attempts, int index_offset) {
  auto solved_before = [&](int attempt) {
    return std::any_of(records.begin(), records.end(),
                       [&](const auto& kv) { return kv.second.success && kv.second.id.attempt < attempt; });
  };
  AttemptPlan plan;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    if (solved_before(attempt)) break;
    for (int s = 1; s <= samples_per_attempt; ++s) {
      int index = index_offset + SampleIndex(attempt, s, samples_per_attempt);
      // A record without attempt and sample (hand-made) is known by its index only.
      auto it = records.find(index);
      bool done = (it != records.end() && it->second.id.attempt == 0) ||
                  std::any_of(records.begin(), records.end(), [&](const auto& kv) {
                    return kv.second.id.attempt == attempt && kv.second.id.sample == s;
                  });
      if (done) continue;
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
  // A sample the evaluation service could not evaluate (remote_evaluator.h) has no verdict:
  // its saved response is evaluated again.
  std::erase_if(records, [](const auto& kv) {
    return kv.second.status == kStatusLlmError || kv.second.error_category == "evaluator_unavailable";
  });
}

}  // namespace kbrun::batch
