// Taking the candidate's code out of an LLM response.
#pragma once

#include <string>

namespace kbrun::prompts {

struct ExtractedCode {
  bool ok = false;
  std::string code;
  std::string failure;  // "no_code" | "no_model_new" when !ok, with `reason`
  std::string reason;
};

// The fenced block that defines ModelNew (several blocks, no language tag,
// unclosed fence and surrounding prose are all handled).
ExtractedCode ExtractCode(const std::string& response);

}  // namespace kbrun::prompts
