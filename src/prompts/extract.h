// Taking the candidate's code out of an LLM response.
#pragma once

#include <string>

namespace kbrun::prompts {

struct ExtractedCode {
  bool ok = false;
  std::string code;
  std::string failure;  // "no_code" | "no_model_new" when !ok, with `reason`
  std::string reason;
  std::string note;  // when ok: something worth saying ("the final fence is not closed: truncated?")
};

// The fenced block that defines ModelNew (several blocks, no language tag,
// unclosed fence and surrounding prose are all handled). The last such block
// wins (models restate the final version last); complete <think>...</think>
// sections are ignored; a response with no fences at all that is itself Python
// defining ModelNew is taken whole (from its first Python-looking line).
ExtractedCode ExtractCode(const std::string& response);

}  // namespace kbrun::prompts
