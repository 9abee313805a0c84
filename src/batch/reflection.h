// What a reflection prompt tells the model about its previous sample: the failure
// in a few lines (trimmed compiler errors, mismatch figures, the runtime error,
// the timeout, or the measured times when the kernel is correct but too slow).
#pragma once

#include <string>

#include "batch/sample_record.h"

namespace kbrun::batch {

// Feedback for a failed sample; built from the record's result document.
std::string FeedbackFor(const SampleRecord& record, double target_speedup);

// Feedback is capped so that one huge traceback cannot crowd out the rest of the prompt.
inline constexpr size_t kMaxFeedbackLines = 60;
inline constexpr size_t kMaxFeedbackChars = 6000;

}  // namespace kbrun::batch
