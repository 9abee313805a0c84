#include "prompts/prompt_vars.h"

#include <cstdlib>

#include "util/env_options.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::prompts {

std::string TorchDtype(const std::string& precision) {
  if (precision == "bf16") return "torch.bfloat16";
  if (precision == "fp16") return "torch.float16";
  return "torch.float32";
}

std::map<std::string, std::string> GenerationVars(const GenerationInputs& in) {
  return {{"problem_name", in.problem_name}, {"problem_source", in.problem_source},
          {"backend", in.backend},           {"gpu_name", in.gpu_name},
          {"precision", in.precision},       {"torch_dtype", TorchDtype(in.precision)}};
}

std::map<std::string, std::string> ReflectionVars(const ReflectionInputs& in) {
  auto vars = GenerationVars(in.problem);
  vars["previous_code"] = in.previous_code;
  vars["feedback"] = in.feedback;
  std::string hints;
  for (const auto& h : in.hints) hints += "- " + h + "\n";
  vars["hints"] = hints.empty() ? "(none)" : hints;
  return vars;
}

std::string ProblemName(const fs::path& problem_file) { return problem_file.stem().string(); }

std::string ResolveBackendForPrompts(const std::string& requested) {
  if (!requested.empty() && requested != "auto") return requested;
  std::error_code ec;
  return fs::exists("/dev/kfd", ec) ? "hip" : "cuda";
}

std::string DetectGpuName(const std::string& backend) {
  if (auto env = GetEnvOption("KBRUN_GPU_NAME")) return *env;
  if (backend == "hip" || backend == "hipkittens") return "AMD Instinct GPU";
  ProcessSpec spec;
  spec.argv = {"nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "-i", "0"};
  spec.env = CurrentEnvironment();
  spec.timeout_s = 10;
  ProcessResult r = RunProcess(spec);
  if (!r.spawn_failed && !r.timed_out && r.exit_code == 0) {
    auto lines = SplitLines(r.output);
    if (!lines.empty() && !Trim(lines[0]).empty()) return Trim(lines[0]);
  }
  return "NVIDIA GPU";
}

}  // namespace kbrun::prompts
