#include "batch/best_of.h"

namespace kbrun::batch {

int OutcomeRank(const SampleRecord& r) {
  if (r.correct) return 7;
  if (r.status == "incorrect") return 6;
  if (r.status == "runtime_error") return 5;
  if (r.status == "timeout") return 4;
  if (r.status == "compile_error") return 3;
  if (r.status == "rejected") return 2;
  if (r.status == kStatusNoCode) return 1;
  return 0;  // llm_error, internal_error and anything unknown
}

bool IsBetter(const SampleRecord& a, const SampleRecord& b) {
  int ra = OutcomeRank(a), rb = OutcomeRank(b);
  if (ra != rb) return ra > rb;
  return a.correct && a.speedup > b.speedup;
}

std::optional<int> PickBest(const std::map<int, SampleRecord>& records, Ties ties) {
  std::optional<int> best;
  for (const auto& [index, record] : records) {  // ascending index
    if (!best) {
      best = index;
      continue;
    }
    const SampleRecord& current = records.at(*best);
    bool better = IsBetter(record, current);
    bool tie = !better && !IsBetter(current, record);
    if (better || (tie && ties == Ties::kPreferLater)) best = index;
  }
  return best;
}

}  // namespace kbrun::batch
