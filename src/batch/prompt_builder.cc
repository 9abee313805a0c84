#include "batch/prompt_builder.h"

#include <stdexcept>

#include <fmt/format.h>

#include "batch/reflection.h"
#include "prompts/prompt_vars.h"
#include "util/fs.h"

namespace kbrun::batch {
namespace {

std::string Render(const fs::path& template_path, const std::map<std::string, std::string>& vars) {
  try {
    return prompts::RenderTemplate(ReadFileOrThrow(template_path), vars);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("{}: {}", template_path.string(), e.what()));
  }
}

// Used only when the prompt set has no reflection template: the first prompt
// followed by the same three sections a reflection template carries.
constexpr const char* kFallbackReflection =
    "\n\nYour previous attempt:\n```python\n{{previous_code}}\n```\n\n"
    "What happened when it was evaluated:\n{{feedback}}\n\nHints:\n{{hints}}\n"
    "Write an improved ModelNew. Answer with one complete Python code block.\n";

}  // namespace

PromptBuilder::PromptBuilder(prompts::PromptConfig config, PromptContext context)
    : config_(std::move(config)), context_(std::move(context)) {}

std::string PromptBuilder::Initial(const Problem& problem) const {
  prompts::GenerationInputs in{problem.name, ReadFileOrThrow(problem.path), context_.backend, context_.gpu_name,
                               context_.precision};
  return Render(config_.Select(problem.name).template_path, prompts::GenerationVars(in));
}

std::string PromptBuilder::Reflection(const Problem& problem, const SampleRecord& previous,
                                      const std::string& previous_code) const {
  prompts::ReflectionInputs in;
  in.problem = {problem.name, ReadFileOrThrow(problem.path), context_.backend, context_.gpu_name, context_.precision};
  in.previous_code =
      previous_code.empty() ? "# (no code could be extracted from the previous response)" : previous_code;
  in.feedback = previous.feedback;
  if (config_.reflection_profile()) {
    if (std::string digest = ProfileFeedbackFor(previous); !digest.empty()) in.feedback += "\n\n" + digest;
  }
  in.hints = config_.HintsFor(previous.failure_kind);
  auto vars = prompts::ReflectionVars(in);
  if (!config_.reflection_template().empty()) return Render(config_.reflection_template(), vars);
  return Initial(problem) + prompts::RenderTemplate(kFallbackReflection, vars);
}

}  // namespace kbrun::batch
