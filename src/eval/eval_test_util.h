// Test helper: run the real `kbrun eval` on a fixture and read its result document.
#pragma once

#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace kbrun {

// One `kbrun eval` of a test, on the CPU: `code` against tests/problems/<problem>.py.
struct EvalCall {
  fs::path code;
  std::string problem = "1_ScaleAdd";
  std::vector<std::string> flags;              // after "--device cpu": the trials, ...
  std::vector<std::string> extra;              // after "--output FILE": the test's own
  std::map<std::string, std::string> env_set;  // over this environment
  std::vector<std::string> env_unset;          // removed from it
  fs::path output;                             // the result file; empty: a temporary one, removed after
  int timeout_s = 600;
};

// tests/<dir>/<name>.py
inline fs::path TestFixture(const std::string& dir, const std::string& name) {
  return fs::path(KBRUN_TEST_DATA_DIR) / dir / (name + ".py");
}

// A quick evaluation of a test's tiny problem: two correctness trials, five timed calls, library
// kernels allowed (on a loaded 2-core machine torch's empty_like once took 67% of such a forward
// and the candidate was rejected).
inline const std::vector<std::string> kQuickEvalFlags = {"--correct-trials", "2", "--perf-trials", "5",
                                                         "--allow-library-kernels"};

// The same quick evaluation in this process (eval::Compile, eval::Run) of tests/candidates/<candidate>.py
// against tests/problems/1_ScaleAdd.py, its private dirs and build cache under `root`.
inline eval::EvalRequest QuickCpuRequest(const std::string& candidate, const fs::path& root) {
  eval::EvalRequest req;
  req.problem = std::string(KBRUN_TEST_DATA_DIR) + "/problems/1_ScaleAdd.py";
  req.code = TestFixture("candidates", candidate).string();
  req.options.device = "cpu";
  req.options.correctness_trials = 2;
  req.options.timing_trials = 5;
  req.options.warmup_runs = 1;
  req.options.allow_library_kernels = true;
  req.options.work_root = root / "work";
  req.options.compile_cache_dir = root / "cache";
  return req;
}

// Runs `call`; `result` is its result document, null when kbrun wrote none.
inline ProcessResult RunKbrunEval(const EvalCall& call, nlohmann::json& result) {
  static int n = 0;
  const fs::path out = !call.output.empty()
                           ? call.output
                           : fs::temp_directory_path() /
                                 ("kbrun-eval-test-" + std::to_string(getpid()) + "-" + std::to_string(++n) + ".json");
  fs::remove(out);
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY,       "eval",      "--code",
               call.code.string(), "--problem", TestFixture("problems", call.problem).string(),
               "--device",         "cpu"};
  spec.argv.insert(spec.argv.end(), call.flags.begin(), call.flags.end());
  spec.argv.insert(spec.argv.end(), {"--output", out.string()});
  spec.argv.insert(spec.argv.end(), call.extra.begin(), call.extra.end());
  spec.env = CurrentEnvironment();
  for (const auto& [k, v] : call.env_set) spec.env[k] = v;
  for (const auto& k : call.env_unset) spec.env.erase(k);
  spec.timeout_s = call.timeout_s;
  ProcessResult p = RunProcess(spec);
  result = nullptr;
  if (auto text = ReadFile(out)) result = nlohmann::json::parse(*text);
  if (call.output.empty()) fs::remove(out);
  return p;
}

struct EvalRun {
  int exit_code;
  std::string output;
  nlohmann::json result;
  double wall_s;
};

inline EvalRun RunEvalCall(const EvalCall& call) {
  nlohmann::json result;
  ProcessResult p = RunKbrunEval(call, result);
  return {p.exit_code, p.output, std::move(result), p.wall_s};
}

// Runs `kbrun eval` on tests/<dir>/<candidate>.py against tests/problems/<problem>.py.
inline EvalRun RunEvalOn(const std::string& problem, const std::string& dir, const std::string& candidate,
                         std::vector<std::string> extra) {
  return RunEvalCall({.code = TestFixture(dir, candidate),
                      .problem = problem,
                      .flags = {"--perf-trials", "10"},
                      .extra = std::move(extra),
                      .env_set = {{"LLM_GATEWAY_KEY", "secret-that-must-not-leak"}}});
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

// Runs `kbrun eval` of `code` against tests/problems/1_ScaleAdd.py on the CPU, quickly
// (kQuickEvalFlags: these tests are about builds), with the result file and the compile cache
// (dir/cache) in `dir`. `env_set` overrides variables of this environment, `env_unset` removes them.
inline BuildEval RunBuildEval(const fs::path& dir, const fs::path& code, const std::vector<std::string>& extra,
                              const std::map<std::string, std::string>& env_set = {},
                              const std::vector<std::string>& env_unset = {}) {
  static int n = 0;
  std::vector<std::string> flags = kQuickEvalFlags;
  flags.insert(flags.end(), {"--compile-cache", (dir / "cache").string()});
  BuildEval e;
  e.process = RunKbrunEval({.code = code,
                            .flags = flags,
                            .extra = extra,
                            .env_set = env_set,
                            .env_unset = env_unset,
                            .output = dir / ("result-" + std::to_string(++n) + ".json")},
                           e.result);
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
