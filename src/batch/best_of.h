// Best-of selection: which sample of a problem is the one to keep (best_* files)
// and the one to reflect on.
//
// Correct beats incorrect; among correct samples the higher speedup wins. Among
// failures, the one that got further is better (it ran but gave wrong numbers >
// it crashed > it hung > it did not compile > no code at all), because its code
// is the better starting point for the next attempt.
#pragma once

#include <map>
#include <optional>

#include "batch/sample_record.h"

namespace kbrun::batch {

// Higher is better; equal ranks compare by speedup (correct samples only).
int OutcomeRank(const SampleRecord& r);

// True when `a` is strictly better than `b`.
bool IsBetter(const SampleRecord& a, const SampleRecord& b);

enum class Ties { kKeepEarlier, kPreferLater };

// Index of the best record, or nullopt when there are none. Records are keyed by sample index;
// ties go to the earlier sample (stable best files) or the later one (fresher reflection).
std::optional<int> PickBest(const std::map<int, SampleRecord>& records, Ties ties = Ties::kKeepEarlier);

}  // namespace kbrun::batch
