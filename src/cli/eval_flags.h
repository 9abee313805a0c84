// Evaluation flags shared by `kbrun eval` and `kbrun batch`.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "batch/build_warmup.h"
#include "eval/evaluation.h"

namespace kbrun::cli {

struct EvalFlags {
  std::string device = "auto", precision = "fp32", backend = "auto", python, work_dir;
  std::string compile_mode = "fast", compile_cache;
  std::string tk_root, hk_root;  // empty: THUNDERKITTENS_ROOT / HIPKITTENS_ROOT
  bool no_compile_cache = false, no_pch = false;
  std::string warm_worker = "all";
  std::string memory_limit = "auto";
  std::string tolerance = "evidence", shapes = "fixed";
  int gpu = 0, correct_trials = 5, perf_trials = 100, warmup = 5, compile_jobs = 0;
  std::optional<double> atol, rtol;
  std::optional<uint64_t> seed;
  double compile_timeout = 900, run_timeout = 300, profile_timeout = 300;
  bool keep_work_dir = false, profile = false, allow_library_kernels = false;
  std::vector<std::string> baselines = {"eager"};  // --baseline, repeatable
};

void AddEvalFlags(CLI::App& cmd, EvalFlags& f);
eval::EvalOptions ToEvalOptions(const EvalFlags& f);

// --run-ahead of `kbrun batch` and `kbrun serve` (auto | on | off): whether a lane's next
// evaluation starts its processes while the current one runs (eval::StartRunAhead). auto is on
// for GPU lanes only: on a CPU lane there is no CUDA start to hide, and the waiting processes
// take cores from the evaluation being timed.
void AddRunAheadFlag(CLI::App& cmd, std::string& mode);
bool ResolveRunAhead(const std::string& mode, bool on_gpu);

// --build-warmup of `kbrun batch` and `kbrun serve` (auto | on | off; batch/build_warmup.h): at the
// start, the precompiled headers that candidates' builds share are built before the first candidates
// need them. auto is on for GPU lanes; CUDA builds too on a CUDA backend. It is off where kbrun's
// build step cannot use them (plain builds, no shared cache or PCH, another service evaluates):
// then `warning` says so when it was asked for (`on`).
void AddBuildWarmupFlag(CLI::App& cmd, std::string& mode, const std::string& when);
batch::BuildWarmup ResolveBuildWarmup(const std::string& mode, bool on_gpu, bool remote,
                                      const eval::EvalOptions& options, std::string& warning);

}  // namespace kbrun::cli
