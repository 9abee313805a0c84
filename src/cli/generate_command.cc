// kbrun generate: one problem -> prompt -> LLM -> code file.
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/generation_flags.h"
#include "llm/provider.h"
#include "prompts/extract.h"
#include "prompts/prompt_config.h"
#include "prompts/prompt_vars.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::cli {
namespace {

constexpr int kExitNoCode = 2;  // the response has no usable code
constexpr int kExitLlm = 3;     // the LLM call failed

struct GenerateArgs {
  std::string problem, output, prompt, response_file, backend = "auto", precision = "fp32", gpu_name;
  bool verbose = false, dry_run = false;
  bool backend_given = false;  // --backend named one; else it was detected
  LlmFlags llm;
  PromptFlags prompts;
};

// The template and why it was chosen.
prompts::PromptChoice ChoosePrompt(const GenerateArgs& a, const std::string& problem_name) {
  if (!a.prompt.empty()) {
    if (!fs::is_regular_file(a.prompt)) throw CommandError{kExitUsage, "--prompt: no such file: " + a.prompt};
    return {a.prompt, "--prompt"};
  }
  return LoadPromptConfig(a.prompts, a.backend).Select(problem_name);
}

void Run(const GenerateArgs& a, int* exit_code) {
  auto source = ReadFile(a.problem);
  if (!fs::is_regular_file(a.problem) || !source) throw CommandError{kExitUsage, "--problem: cannot read " + a.problem};
  const std::string name = prompts::ProblemName(a.problem);
  auto log = [&](const std::string& line) {
    if (a.verbose) fmt::print(stderr, "{}\n", line);
  };

  prompts::PromptChoice choice = ChoosePrompt(a, name);
  log(fmt::format("backend: {}{}", a.backend, a.backend_given ? "" : " (detected)"));
  log(fmt::format("prompt: {} ({})", choice.template_path.string(), choice.reason));
  prompts::GenerationInputs inputs{name, *source, a.backend,
                                   a.gpu_name.empty() ? prompts::DetectGpuName(a.backend) : a.gpu_name, a.precision};
  std::string prompt;
  try {
    prompt = prompts::RenderTemplate(ReadFileOrThrow(choice.template_path), prompts::GenerationVars(inputs));
  } catch (const std::exception& e) {
    throw CommandError{kExitConfig, fmt::format("{}: {}", choice.template_path.string(), e.what())};
  }
  if (a.dry_run) {
    fmt::print("{}", prompt);
    return;
  }

  fs::path llm_json;
  llm::ProviderConfig config = ResolveLlmConfig(a.llm, ResolvePromptsDir(a.prompts), &llm_json);
  if (!llm_json.empty()) log("LLM settings file: " + llm_json.string());
  std::unique_ptr<llm::Provider> provider;
  try {
    provider = llm::MakeProvider(config);
  } catch (const llm::LlmError& e) {
    throw CommandError{kExitLlm, fmt::format("LLM error ({}): {}", llm::LlmErrorKindName(e.kind()), e.what())};
  } catch (const std::invalid_argument& e) {
    throw CommandError{kExitConfig, e.what()};
  }
  log(config.provider == "replay"
          ? fmt::format("provider: replay from {}", config.replay_source.string())
          : fmt::format("provider: {}, model {}, {}", config.provider, config.model, config.base_url));

  llm::CompletionRequest request;
  request.prompt = prompt;
  request.replay_key = name;
  request.raw_response_path =
      a.response_file.empty() ? fs::path(a.output + ".response.txt") : fs::path(a.response_file);
  llm::Completion completion;
  try {
    completion = provider->Complete(request);
  } catch (const llm::LlmError& e) {
    if (CancelRequested()) throw CommandError{kExitInterrupted, "interrupted"};
    // A failure after a 2xx answer (malformed body...): the body was saved before parsing.
    bool saved = e.http_status() >= 200 && e.http_status() < 300 && fs::exists(request.raw_response_path);
    std::string kept = saved ? fmt::format(" (raw response kept in {})", request.raw_response_path.string()) : "";
    throw CommandError{kExitLlm, fmt::format("LLM error ({}): {}{}", llm::LlmErrorKindName(e.kind()), e.what(), kept)};
  }
  log(fmt::format("LLM: {} in {}, {} attempt{}, tokens {} prompt + {} completion, finish {}", completion.model,
                  FormatDuration(completion.latency_s), completion.attempts, completion.attempts == 1 ? "" : "s",
                  completion.prompt_tokens, completion.completion_tokens,
                  completion.finish_reason.empty() ? "?" : completion.finish_reason));
  if (completion.finish_reason == "length" || completion.finish_reason == "max_tokens") {
    fmt::print(stderr, "kbrun: warning: the answer was cut at --max-tokens ({})\n", config.max_tokens);
  }

  prompts::ExtractedCode code = prompts::ExtractCode(completion.text);
  if (!code.ok) {
    fmt::print(stderr, "kbrun: no usable code in the response ({}): {}; the response is in {}\n", code.failure,
               code.reason, request.raw_response_path.string());
    *exit_code = kExitNoCode;
    return;
  }
  if (!code.note.empty()) log("extraction: " + code.note);
  WriteFileAtomic(a.output, code.code);
  fmt::print("{}: wrote {} ({} lines); response in {}\n", name, a.output, SplitLines(code.code).size(),
             request.raw_response_path.string());
  *exit_code = 0;
}

}  // namespace

void RegisterGenerate(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("generate", "Ask an LLM for a kernel for one KernelBench problem and save its code");
  auto args = std::make_shared<GenerateArgs>();
  cmd->add_option("--problem", args->problem, "KernelBench problem file (defines Model, get_inputs, get_init_inputs)")
      ->required();
  cmd->add_option("--output,-o", args->output, "Write the extracted code (defines ModelNew) here")->required();
  cmd->add_option("--prompt", args->prompt, "Prompt template to use (default: chosen by the prompt configuration)");
  cmd->add_option("--response-file", args->response_file,
                  "Write the raw LLM response here, before anything else (default <output>.response.txt)");
  cmd->add_option("--backend", args->backend,
                  "auto | cuda | thunderkittens | hip | hipkittens: picks the prompt set (auto: hip where AMD's\n"
                  "compute driver /dev/kfd exists, else cuda)")
      ->check(CLI::IsMember({"auto", "cuda", "thunderkittens", "hip", "hipkittens"}))
      ->capture_default_str();
  cmd->add_option("--precision", args->precision, "fp32 | fp16 | bf16: the dtype the evaluator will use")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  cmd->add_option("--gpu-name", args->gpu_name, "GPU named in the prompt (env KBRUN_GPU_NAME; default nvidia-smi's)");
  AddPromptFlags(*cmd, args->prompts);
  AddLlmFlags(*cmd, args->llm);
  cmd->add_flag("--dry-run", args->dry_run, "Print the rendered prompt and stop (no LLM call)");
  cmd->add_flag("--verbose,-v", args->verbose, "Say which prompt was chosen and why, latency and tokens");
  cmd->footer(std::string("Exit codes: 0 code written; 2 the response has no usable code (the response file is\n"
                          "kept); 3 LLM error (auth, rate limit, timeout, malformed response...); 64 usage error;\n"
                          "78 broken configuration (prompt config, template, llm.json, environment).\n\n") +
              kLlmSettingsHelp + EnvOptionsHelp("generate"));
  cmd->callback([args, exit_code] {
    args->backend_given = args->backend != "auto";
    args->backend = prompts::ResolveBackendForPrompts(args->backend);
    Run(*args, exit_code);
  });
}

}  // namespace kbrun::cli
