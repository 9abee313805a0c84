// What a reflection prompt tells the model about its previous sample: the failure
// in a few lines (trimmed compiler errors, mismatch figures, the runtime error,
// the timeout, or the measured times when the kernel is correct but too slow).
#pragma once

#include <string>

#include "batch/sample_record.h"

namespace kbrun::batch {

// Feedback for a failed sample; built from the record's result document.
std::string FeedbackFor(const SampleRecord& record, double target_speedup);

// The profile digest of a sample evaluated with --profile (result.json "profile.summary":
// kernel counts and times, what bounds the slowest kernels, the roofline), under a heading;
// empty when there is none. Reflection prompts append it to the feedback when the prompt
// configuration's "reflection_profile" is on (docs/PROMPTS.md).
std::string ProfileFeedbackFor(const SampleRecord& record);

// Feedback is capped so that one huge traceback cannot crowd out the rest of the prompt.
inline constexpr size_t kMaxFeedbackLines = 60;
inline constexpr size_t kMaxFeedbackChars = 6000;

}  // namespace kbrun::batch
