// Test helper: run the real `kbrun eval` on a fixture and read its result document.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/subprocess.h"

namespace kbrun {

struct EvalRun {
  int exit_code;
  std::string output;
  nlohmann::json result;
  double wall_s;
};

// Runs `kbrun eval` on tests/<dir>/<candidate>.py against tests/problems/<problem>.py.
inline EvalRun RunEvalOn(const std::string& problem, const std::string& dir, const std::string& candidate,
                         std::vector<std::string> extra) {
  fs::path out = fs::temp_directory_path() / ("kbrun-eval-test-" + candidate + ".json");
  fs::remove(out);
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY,    "eval",
               "--code",        std::string(KBRUN_TEST_DATA_DIR) + "/" + dir + "/" + candidate + ".py",
               "--problem",     std::string(KBRUN_TEST_DATA_DIR) + "/problems/" + problem + ".py",
               "--device",      "cpu",
               "--perf-trials", "10",
               "--output",      out.string()};
  spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
  spec.env = CurrentEnvironment();
  spec.env["LLM_GATEWAY_KEY"] = "secret-that-must-not-leak";
  spec.timeout_s = 600;
  ProcessResult p = RunProcess(spec);
  EvalRun run{p.exit_code, p.output, nullptr, p.wall_s};
  if (auto text = ReadFile(out)) run.result = nlohmann::json::parse(*text);
  return run;
}

// Runs `kbrun eval` on tests/<dir>/<candidate>.py against tests/problems/1_ScaleAdd.py.
inline EvalRun RunEvalIn(const std::string& dir, const std::string& candidate, std::vector<std::string> extra) {
  return RunEvalOn("1_ScaleAdd", dir, candidate, std::move(extra));
}

// One `kbrun eval` of a build-step test: its process and result document.
struct BuildEval {
  ProcessResult process;
  nlohmann::json result;
  std::string status() const { return result.is_object() ? result.value("status", "") : ""; }
  std::string category() const {
    return result.is_object() && result["error"].is_object() ? result["error"].value("category", "") : "";
  }
  std::string cache() const { return result["build"]["extensions"].at(0).value("cache", ""); }
  double compile_s() const { return result["stages"]["compile_s"].get<double>(); }
};

// Runs `kbrun eval` of `code` against tests/problems/1_ScaleAdd.py on the CPU, with the
// result file and the compile cache (dir/cache) in `dir`. `env_set` overrides variables of
// this environment, `env_unset` removes them. These tests are about builds: the library-time
// check is off (on a loaded 2-core machine torch's empty_like once took 67% of this tiny
// forward and the candidate was rejected).
inline BuildEval RunBuildEval(const fs::path& dir, const fs::path& code, const std::vector<std::string>& extra,
                              const std::map<std::string, std::string>& env_set = {},
                              const std::vector<std::string>& env_unset = {}) {
  static int n = 0;
  fs::path out = dir / ("result-" + std::to_string(++n) + ".json");
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY,
               "eval",
               "--code",
               code.string(),
               "--problem",
               std::string(KBRUN_TEST_DATA_DIR) + "/problems/1_ScaleAdd.py",
               "--device",
               "cpu",
               "--correct-trials",
               "2",
               "--perf-trials",
               "5",
               "--allow-library-kernels",
               "--compile-cache",
               (dir / "cache").string(),
               "--output",
               out.string()};
  spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
  spec.env = CurrentEnvironment();
  for (const auto& [k, v] : env_set) spec.env[k] = v;
  for (const auto& k : env_unset) spec.env.erase(k);
  spec.timeout_s = 600;
  BuildEval e{RunProcess(spec), nullptr};
  if (auto text = ReadFile(out)) e.result = nlohmann::json::parse(*text);
  return e;
}

// A correct C++ extension for tests/problems/1_ScaleAdd.py, for tests of the build step.
// `preamble` opens the C++ source and must define KB_ONE as 1.0f one way or another;
// `load_inline_args` are further keyword arguments of load_inline (", extra_cflags=[...]").
inline std::string ScaleAddCandidate(const std::string& ext_name, const std::string& preamble,
                                     const std::string& load_inline_args = "") {
  return "import torch\nimport torch.nn as nn\nfrom torch.utils.cpp_extension import load_inline\n"
         "src = r'''\n" +
         preamble + R"(
torch::Tensor scale_add(torch::Tensor x, torch::Tensor y, double alpha) {
  auto xc = x.contiguous(), yc = y.contiguous();
  auto out = torch::empty_like(xc);
  const float* px = xc.data_ptr<float>();
  const float* py = yc.data_ptr<float>();
  float* po = out.data_ptr<float>();
  for (int64_t i = 0, n = xc.numel(); i < n; ++i) po[i] = px[i] * (float)alpha * KB_ONE + py[i];
  return out;
}
'''
ext = load_inline(name=")" +
         ext_name + R"(", cpp_sources=src, functions=["scale_add"], verbose=False)" + load_inline_args + R"()

class ModelNew(nn.Module):
    def __init__(self, alpha):
        super().__init__()
        self.alpha = alpha

    def forward(self, x, y):
        return ext.scale_add(x, y, self.alpha)
)";
}

}  // namespace kbrun
