#include "util/env_options.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace kbrun {

const std::vector<EnvOption>& EnvOptions() {
  static const std::vector<EnvOption> table = {
      // Evaluation (kbrun eval, batch, serve)
      {"KBRUN_PYTHON", "--python", "eval, batch, generate, serve",
       "interpreter with torch (default: first of python3, /usr/bin/python3, python that imports torch)"},
      {"KBRUN_WORK_DIR", "--work-dir", "eval, batch, serve",
       "where private build directories go (default $XDG_CACHE_HOME/kbrun/work, else ~/.cache/kbrun/work)"},
      {"KBRUN_COMPILE_CACHE", "--compile-cache", "eval, batch, serve",
       "folder of cached builds shared by runs (default ~/.cache/kbrun/compile; with --slurm: "
       "kbrun-compile-cache beside the results folder)"},
      {"KBRUN_PEAKS_DIR", "", "eval, batch (--profile)",
       "cache of measured GPU peaks (default: peaks beside the compile cache folder)"},
      {"KBRUN_PASS_ENV", "", "eval, batch, serve",
       "comma-separated extra variables passed to the worker (never a name with KEY, TOKEN, SECRET...)"},
      {"KBRUN_WORKER", "", "eval, batch, serve", "path of kbrun_worker.py (default: beside the binary)"},
      {"KBRUN_NCU", "", "eval, batch (--profile)", "Nsight Compute binary (default: ncu on PATH, CUDA_HOME/bin)"},
      {"KBRUN_ROCPROF", "", "eval, batch (--profile)", "rocprofv3 binary (default: on PATH, ROCM_PATH/bin)"},
      {"THUNDERKITTENS_ROOT", "--tk-root", "eval, batch, serve",
       "ThunderKittens checkout for --backend thunderkittens (docs/BACKENDS.md)"},
      {"HIPKITTENS_ROOT", "--hk-root", "eval, batch, serve",
       "HipKittens checkout for --backend hipkittens (docs/BACKENDS.md)"},
      // Batch
      {"KERNELBENCH_DIR", "--problems-dir", "batch", "problems folder (N_Name.py files or a KernelBench checkout)"},
      {"NUM_SAMPLES", "--samples", "batch", "samples per attempt (default 3)"},
      {"CUDA_VISIBLE_DEVICES", "--gpus, --gpu", "batch",
       "GPU lanes when neither flag is given, as physical indices (else every GPU torch sees)"},
      {"KBRUN_EVALUATOR_TOKEN", "--evaluator-token-file", "batch (--evaluator)",
       "the kbrun serve service's bearer token (never on the command line)"},
      {"KBRUN_LANE_PROBE", "", "batch",
       "a lane health probe script run as SCRIPT DEVICE GPU PYTHON (exit 0: healthy) instead of kbrun's own "
       "(docs/RESULTS.md \"Lane failures\")"},
      // Generation (kbrun generate, batch)
      {"KBRUN_LLM_CONFIG", "--llm-config", "generate, batch", "llm.json to use (default <prompts dir>/llm.json)"},
      {"KBRUN_PROMPTS_DIR", "--prompts-dir", "generate, batch",
       "prompts folder (default ./prompts, then the installed ones)"},
      {"KBRUN_GPU_NAME", "--gpu-name", "generate, batch", "GPU name written into prompts (default: nvidia-smi's)"},
      {"LLM_GATEWAY_KEY", "", "generate, batch",
       "API key (fallbacks: OPENAI_API_KEY for openai, ANTHROPIC_API_KEY for anthropic; 'none' sends no key, for "
       "local servers)"},
      {"OPENAI_API_KEY", "", "generate, batch", "API key of --provider openai when LLM_GATEWAY_KEY is not set"},
      {"ANTHROPIC_API_KEY", "", "generate, batch", "API key of --provider anthropic when LLM_GATEWAY_KEY is not set"},
      {"LLM_PROVIDER", "--provider", "generate, batch", "openai | anthropic | replay (default openai)"},
      {"LLM_BASE_URL", "--base-url", "generate, batch",
       "API base URL, e.g. http://localhost:8000/v1 (default: the provider's)"},
      {"LLM_MODEL", "--model", "generate, batch", "model name"},
      {"LLM_TEMPERATURE", "--temperature", "generate, batch", "sampling temperature (default 0.7)"},
      {"LLM_MAX_TOKENS", "--max-tokens", "generate, batch", "maximum tokens of the answer (default 8192)"},
      {"LLM_REASONING_EFFORT", "--reasoning-effort", "generate, batch",
       "reasoning effort (default: not sent; openai: sent as is, anthropic: a thinking budget)"},
      {"LLM_HEADERS", "--header", "generate, batch", "extra headers, one 'Name: value' per line"},
      {"LLM_REPLAY", "--replay", "generate, batch", "replay file or folder (with LLM_PROVIDER=replay)"},
      {"LLM_REPLAY_LATENCY", "--replay-latency", "generate, batch",
       "seconds each replayed call waits, a simulated model (default 0)"},
      {"LLM_CONNECT_TIMEOUT_S", "--connect-timeout", "generate, batch", "seconds to connect (default 10)"},
      {"LLM_REQUEST_TIMEOUT_S", "--request-timeout", "generate, batch", "seconds for one whole request (default 600)"},
      {"LLM_MAX_RETRIES", "--max-retries", "generate, batch",
       "retries on 429, 5xx, timeouts, network errors (default 5)"},
      // Tests and scripts
      {"KBRUN_TEST_THROW_IN_EVAL", "", "tests",
       "\"<problem>#<N>\": sample N's evaluation throws, as a kbrun bug would"},
      {"KBRUN_TEST_PROBE_FAIL", "", "tests", "tests/batch/lane_probe.sh: GPU indices whose probe fails"},
      {"KBRUN_TEST_PROBE_LOG", "", "tests", "tests/batch/lane_probe.sh: file each probe appends \"DEVICE GPU\" to"},
      {"KBRUN_TEST_COMPILE_STANDIN", "", "tests",
       "tests/worker/standin_compile: give torch 1.13 a stand-in torch.compile"},
      {"KBRUN_REQUIRE_SLURM", "", "tests",
       "1: the Slurm end-to-end test fails, not skips, when no cluster starts (CI)"},
      {"KBRUN_NO_SANITIZE", "", "scripts/test.sh", "1: skip the sanitizer build of the unit tests"},
      {"KBRUN_NO_HIPCC", "", "scripts/install-deps.sh", "1: do not install hipcc"},
      {"KBRUN_DEVICE_TESTS", "", "CMake", "1 when first configured: register tests/device's GPU checks with ctest"},
      {"KBRUN_PACK", "", "tests/device", "the device pack (tools/pack_device.sh's output; default .devpkg)"},
      {"KBRUN_LEVEL1", "", "tests/device", "KernelBench level1 problems for the device checks (default <pack>/level1)"},
      {"KBRUN_DEVICE_TMP", "", "tests/device", "where the device checks make their work folders (default /tmp)"},
  };
  return table;
}

std::optional<std::string> GetEnvOption(std::string_view name) {
  bool known = false;
  for (const auto& o : EnvOptions()) known = known || name == o.name;
  if (!known)
    throw std::logic_error("GetEnvOption: " + std::string(name) + " is not in EnvOptions() (util/env_options.cc)");
  const char* value = std::getenv(std::string(name).c_str());
  if (!value || !*value) return std::nullopt;
  return std::string(value);
}

std::string EnvOptionsMarkdown() {
  auto cell = [](const char* text) {  // a '|' in a cell would end it
    std::string out;
    for (const char* c = text; *c; ++c) out += *c == '|' ? std::string("\\|") : std::string(1, *c);
    return out;
  };
  std::string out = "| Variable | Flag | Read by | Sets |\n|---|---|---|---|\n";
  for (const auto& o : EnvOptions()) {
    out += std::string("| `") + o.name + "` | " + (*o.flag ? std::string("`") + o.flag + "`" : std::string()) + " | " +
           cell(o.commands) + " | " + cell(o.meaning) + " |\n";
  }
  return out;
}

namespace {

// Whether the commands column ("eval, batch (--profile)") names `command`.
bool ReadBy(std::string_view commands, std::string_view command) {
  size_t start = 0;
  while (start < commands.size()) {
    size_t end = commands.find(',', start);
    if (end == std::string_view::npos) end = commands.size();
    std::string_view item = commands.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    if (item.substr(0, item.find(' ')) == command) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

std::string EnvOptionsHelp(std::string_view command) {
  constexpr size_t kWidth = 100;
  std::vector<const EnvOption*> rows;
  size_t name_width = 0;
  for (const auto& o : EnvOptions()) {
    if (!ReadBy(o.commands, command)) continue;
    rows.push_back(&o);
    name_width = std::max(name_width, std::string_view(o.name).size());
  }
  if (rows.empty()) return "";
  const std::string indent(2 + name_width + 2, ' ');
  std::string out = "Environment (a flag wins over its variable; every variable: docs/OPTIONS.md):\n";
  for (const EnvOption* o : rows) {
    std::string line = "  " + std::string(o->name);
    line.resize(indent.size(), ' ');
    std::string text = *o->flag ? std::string(o->flag) + ": " + o->meaning : std::string(o->meaning);
    bool first_word = true;
    for (size_t at = 0; at < text.size();) {  // word by word; a word longer than the line stays whole
      size_t space = text.find(' ', at);
      if (space == std::string::npos) space = text.size();
      std::string_view word(text.data() + at, space - at);
      if (!first_word && line.size() + 1 + word.size() > kWidth) {
        out += line + "\n";
        line = indent;
        first_word = true;
      }
      if (!first_word) line += ' ';
      line += word;
      first_word = false;
      at = space + 1;
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace kbrun
