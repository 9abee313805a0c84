// kbrun's evaluator: the C++ supervisor side.
//
// A candidate (KernelBench format: a Python file defining ModelNew) is evaluated
// against a problem (Model, get_inputs, get_init_inputs) by the Python worker
// (eval/worker/kbrun_worker.py) in a child process that the supervisor controls:
// private directory, clean environment, one GPU, deadlines, capped output.
// The worker measures; the supervisor decides the verdict from the measurements.
//
// Evaluation has two phases so that the batch scheduler can run compiles in a
// CPU pool and timing on one GPU lane at a time:
//   Compile(): builds the candidate's extensions (no GPU work) in a private dir;
//   Run():     correctness trials and timing, reusing that dir's build.
// Evaluate() does both.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kbrun::eval {

namespace fs = std::filesystem;

enum class Status { kCorrect, kIncorrect, kCompileError, kRuntimeError, kTimeout, kRejected };
std::string StatusName(Status s);  // "correct", "incorrect", "compile_error", ...
std::optional<Status> ParseStatus(const std::string& name);

struct EvalOptions {
  std::string device = "auto";     // auto | cpu | cuda
  int gpu_index = 0;               // physical GPU, exported to the worker as CUDA_VISIBLE_DEVICES
  std::string precision = "fp32";  // fp32 | fp16 | bf16
  std::string backend = "cuda";    // cuda | thunderkittens | hip | hipkittens | auto (eval/backend.h)
  fs::path tk_root, hk_root;       // ThunderKittens / HipKittens; empty: THUNDERKITTENS_ROOT / HIPKITTENS_ROOT
  int correctness_trials = 5;
  int timing_trials = 100;
  int warmup_runs = 5;
  std::optional<double> atol, rtol;  // the fixed rule's tolerances; default by precision
  // How outputs are judged (worker/kbrun_judge.py, docs/EVALUATION.md "Correctness"):
  // "evidence" = against a float64 run of the reference, relative to the reference's own
  // rounding error; "kernelbench" = allclose with atol = rtol = 1e-2; "fixed" = allclose
  // with atol/rtol (chosen whenever atol or rtol is given).
  std::string tolerance = "evidence";
  // "varied": correctness is also checked at half and double the problem's batch_size (its
  // module-level global); "fixed": only at the problem's own shapes, as KernelBench does.
  std::string shapes = "fixed";
  double compile_timeout_s = 900;
  double run_timeout_s = 300;
  std::optional<uint64_t> seed;  // default: random per run, recorded in the result
  std::string python;            // interpreter; empty: discover (see python_env.h)
  fs::path work_root;            // private dirs go here; empty: default cache dir
  bool keep_work_dir = false;
  // After the verdict: the profile step (eval/profile.h, docs/EVALUATION.md "Profiling").
  bool profile = false;
  double profile_timeout_s = 300;  // the whole profile step: roofline, profiler, digest
  // A candidate whose forward spends >90% of its time in torch/library kernels is
  // rejected (uses_library_only) unless this is set (e.g. the cuBLAS GEMM prompt).
  bool allow_library_kernels = false;
  int compile_jobs = 0;  // MAX_JOBS for the build; 0 = number of cores
  // How load_inline builds run (worker/kbrun_build.py): "fast" = cached, precompiled torch
  // header, lighter CUDA headers; "plain" = torch's own build, untouched.
  std::string compile_mode = "fast";
  bool compile_cache = true;       // share builds across candidates and runs (fast mode)
  fs::path compile_cache_dir;      // empty: KBRUN_COMPILE_CACHE or ~/.cache/kbrun/compile
  bool precompiled_header = true;  // fast mode with a shared cache only
  // Which workers and checkers start as forks of a warm Python that has imported torch
  // (eval/warm_worker.h) instead of fresh interpreters: "cpu" = those that see no GPU
  // (compile phases, CPU evaluations); "all" = GPU runs too (the default: a fork starts
  // in ~0.7 s instead of ~10, measured on the H100, docs/PERFORMANCE.md); "off" = none.
  std::string warm_worker = "all";
  // Memory cap of each worker and checker process and all it starts (util/subprocess.h:
  // a cgroup, else RLIMIT_DATA). nullopt: half of physical memory; 0: none.
  std::optional<unsigned long long> memory_limit_bytes;
  // What the candidate's speed is also compared with (result.json "baselines"; docs/EVALUATION.md
  // "Baselines"): "eager" is the reference as written, the main measurement, always there;
  // "compile" (torch.compile, inductor, default mode) and "cudagraph" (the reference captured in a
  // CUDA graph) are timed by the checker after the candidate's timing. NormalizeBaselines' order.
  std::vector<std::string> baselines = {"eager"};
};

// The baselines --baseline accepts, in the order they are reported: eager, compile, cudagraph.
const std::vector<std::string>& BaselineNames();
bool IsBaselineName(const std::string& name);
// `names` (known ones) without repeats, in BaselineNames() order, with eager always first.
std::vector<std::string> NormalizeBaselines(const std::vector<std::string>& names);

struct EvalRequest {
  fs::path problem;
  fs::path code;
  EvalOptions options;
};

struct EvalResult {
  Status status = Status::kRuntimeError;
  bool compiled = false;
  bool correct = false;
  double speedup = 0;          // reference median / candidate median; 0 when not timed
  std::string error_category;  // empty when correct
  std::string error_message;   // trimmed: the part of the log or traceback that matters
  nlohmann::json json;         // the full result document (docs/RESULT_SCHEMA.md)
};

// Outcome of the compile phase. When !ok, `failure` is the final result.
struct CompiledCandidate {
  bool ok = false;
  fs::path work_dir;  // private dir holding the build; Run() removes it
  double compile_s = 0;
  double worker_start_s = 0;
  double compile_cpu_s = 0;                         // CPU seconds of the whole compile-phase worker and its compilers
  double compile_worker_s = 0;                      // wall time of the compile-phase worker, start to end
  bool warm_start = false;                          // the compile-phase worker was a fork of the warm worker
  double warm_worker_setup_s = 0;                   // of compile_worker_s: starting the warm worker (once per process)
  nlohmann::json builds = nlohmann::json::array();  // one record per extension (kbrun_build.py)
  nlohmann::json prebuild;  // the compile phase's construction of ModelNew (kbrun_worker.prebuild)
  EvalResult failure;
};

// Run() started ahead of its turn on a GPU lane (run_gate.h): its worker and checker start and
// initialise CUDA at once, then wait, running nothing, until Run(request, compiled, ahead) lets
// them go; their deadlines and the run's lane time start there. Released unused, they end and
// `compiled` can be run later as if nothing had happened.
class RunAhead;
std::shared_ptr<RunAhead> StartRunAhead(const EvalRequest& request, const CompiledCandidate& compiled);

CompiledCandidate Compile(const EvalRequest& request);
// `ahead`: from StartRunAhead for the same request and candidate. `next`: the next sample's, started
// ahead while this one runs: this one's timing waits until next's processes have set up CUDA.
EvalResult Run(const EvalRequest& request, CompiledCandidate& compiled, std::shared_ptr<RunAhead> ahead = nullptr,
               const std::shared_ptr<const RunAhead>& next = nullptr);
EvalResult Evaluate(const EvalRequest& request);

// Where shared builds are cached: KBRUN_COMPILE_CACHE, else the user's cache folder.
fs::path DefaultCompileCacheDir();

// Exit code of `kbrun eval`: 0 correct and speedup >= target, 1 correct but slower, 2 failed.
int ExitCodeFor(const EvalResult& result, double target_speedup = 1.0);

}  // namespace kbrun::eval
