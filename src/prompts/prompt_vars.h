// The placeholders prompt templates can use, in one place (docs/PROMPTS.md), so
// that `kbrun generate` and the batch runner fill them the same way.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace kbrun::prompts {

namespace fs = std::filesystem;

struct GenerationInputs {
  std::string problem_name;    // file stem: "19_ReLU"
  std::string problem_source;  // the problem's Python source
  std::string backend;         // cuda | thunderkittens | hip | hipkittens
  std::string gpu_name;        // "NVIDIA H100 80GB HBM3"
  std::string precision;       // fp32 | fp16 | bf16
};

struct ReflectionInputs {
  GenerationInputs problem;
  std::string previous_code;       // the candidate that failed or was slow
  std::string feedback;            // error excerpt or timing summary
  std::vector<std::string> hints;  // PromptConfig::HintsFor(kind)
};

// problem_source, problem_name, backend, gpu_name, precision, torch_dtype.
std::map<std::string, std::string> GenerationVars(const GenerationInputs& in);
// GenerationVars plus previous_code, feedback, hints (a "- " list; "(none)" when empty).
std::map<std::string, std::string> ReflectionVars(const ReflectionInputs& in);

// "path/19_ReLU.py" -> "19_ReLU".
std::string ProblemName(const fs::path& problem_file);
// "torch.float32" for fp32, "torch.bfloat16" for bf16, "torch.float16" for fp16.
std::string TorchDtype(const std::string& precision);
// The GPU named in prompts: $KBRUN_GPU_NAME, else nvidia-smi's first GPU for the NVIDIA
// backends, else a generic "NVIDIA GPU" / "AMD Instinct GPU".
std::string DetectGpuName(const std::string& backend);

// "auto" (or empty) becomes "hip" on a machine with AMD's compute driver (/dev/kfd), else
// "cuda"; any other name is returned as given. Cheap: no Python, so `generate` can run
// where torch is not installed (eval resolves "auto" from torch's build instead).
std::string ResolveBackendForPrompts(const std::string& requested);

}  // namespace kbrun::prompts
