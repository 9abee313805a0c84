// Deciding what a problem needs next, from the samples it has finished. The same
// function starts a fresh problem, moves one to its next attempt, and resumes one
// after a crash: state lives in the results tree, not in memory.
#pragma once

#include <functional>
#include <map>
#include <vector>

#include "batch/sample_record.h"

namespace kbrun::batch {

struct AttemptPlan {
  bool finished = false;         // nothing left to do: solved, or attempts used up
  bool solved = false;           // some sample succeeded
  int attempt = 0;               // the attempt to work on (when !finished)
  std::vector<int> to_generate;  // sample numbers (1-based) that need an LLM call
  std::vector<int> to_evaluate;  // sample numbers whose response is already on disk
};

// `records`: finished samples by index; a sample counts as finished when a record claims its
// attempt and sample (its index may come from other settings: --reconfigure). Samples still
// to do are numbered index_offset + SampleIndex(...). `has_response(index)`: response_N.txt exists.
// The first attempt with unfinished samples is completed before a problem is judged, so a
// resumed batch ends in the same state as one that was never interrupted. A problem is
// solved when an attempt it completed holds a successful sample.
AttemptPlan PlanNextAttempt(const std::map<int, SampleRecord>& records, const std::function<bool(int)>& has_response,
                            int samples_per_attempt, int max_attempts, int index_offset = 0);

// On resume, samples whose LLM call failed are tried again: no answer was lost. So are samples
// the evaluation service could not evaluate (evaluator_unavailable): their saved answers are
// evaluated again.
void DropRetryableRecords(std::map<int, SampleRecord>& records);

}  // namespace kbrun::batch
