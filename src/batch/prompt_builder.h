// The prompts of a batch: the problem's template for attempt 1, and for later
// attempts the reflection template filled with the best previous sample's code,
// what went wrong with it, and the configured hints for that kind of failure.
#pragma once

#include <string>

#include "batch/problem_set.h"
#include "batch/sample_record.h"
#include "prompts/prompt_config.h"

namespace kbrun::batch {

struct PromptContext {
  std::string backend = "cuda";
  std::string gpu_name;
  std::string precision = "fp32";
};

class PromptBuilder {
 public:
  PromptBuilder(prompts::PromptConfig config, PromptContext context);

  // Throws std::runtime_error naming the template on a missing file or bad placeholder.
  std::string Initial(const Problem& problem) const;
  // `previous` is the sample to reflect on; `previous_code` its code (empty when it had none).
  std::string Reflection(const Problem& problem, const SampleRecord& previous, const std::string& previous_code) const;

 private:
  prompts::PromptConfig config_;
  PromptContext context_;
};

}  // namespace kbrun::batch
