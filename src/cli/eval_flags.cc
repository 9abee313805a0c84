#include "cli/eval_flags.h"

#include "util/text.h"

namespace kbrun::cli {

void AddEvalFlags(CLI::App& cmd, EvalFlags& f) {
  cmd.add_option("--device", f.device, "auto | cpu | cuda (auto: cuda when torch sees a GPU)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  cmd.add_option("--gpu", f.gpu, "GPU index to evaluate on")->capture_default_str();
  cmd.add_option("--precision", f.precision, "fp32 | fp16 | bf16: inputs and weights are cast to it")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16"}))
      ->capture_default_str();
  cmd.add_option("--backend", f.backend,
                 "auto | cuda | thunderkittens | hip | hipkittens: the prompt set and the compile flags kbrun adds "
                 "to every build (docs/BACKENDS.md); auto: hip when torch is a ROCm build, else cuda")
      ->check(CLI::IsMember({"auto", "cuda", "thunderkittens", "hip", "hipkittens"}))
      ->capture_default_str();
  cmd.add_option("--tk-root", f.tk_root,
                 "ThunderKittens checkout (has include/kittens.cuh) for --backend thunderkittens "
                 "(env THUNDERKITTENS_ROOT)");
  cmd.add_option("--hk-root", f.hk_root,
                 "HipKittens checkout (has include/kittens.cuh) for --backend hipkittens (env HIPKITTENS_ROOT)");
  cmd.add_option("--correct-trials", f.correct_trials, "Correctness trials, each with fresh inputs")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd.add_option("--perf-trials", f.perf_trials, "Timed runs of reference and candidate")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd.add_option("--warmup", f.warmup, "Untimed warm-up runs")->check(CLI::Range(0, 10000))->capture_default_str();
  cmd.add_option("--shapes", f.shapes,
                 "fixed: correctness at the problem's own shapes (KernelBench's way; kernels may specialise to "
                 "them); varied: also at half and double its batch_size (skipped and recorded where the problem "
                 "has none or the inputs do not fit)")
      ->check(CLI::IsMember({"fixed", "varied"}))
      ->capture_default_str();
  auto* tolerance =
      cmd.add_option("--tolerance", f.tolerance,
                     "How outputs are judged: evidence = against a float64 run of the reference, allowing 128x the "
                     "fp32 reference's own rounding error (another summation order passes, TF32/bf16 arithmetic "
                     "does not); kernelbench = allclose atol = rtol = 1e-2, as KernelBench; fixed = allclose with "
                     "--atol/--rtol (docs/EVALUATION.md)")
          ->check(CLI::IsMember({"evidence", "kernelbench", "fixed"}))
          ->capture_default_str();
  cmd.add_option("--atol", f.atol,
                 "Absolute tolerance of the fixed rule, which it selects (default 1e-4 fp32, 1e-2 fp16/bf16)")
      ->excludes(tolerance);
  cmd.add_option("--rtol", f.rtol, "Relative tolerance of the fixed rule, which it selects (default as --atol)")
      ->excludes(tolerance);
  cmd.add_option("--seed", f.seed, "Seed for inputs and weights (default: random per run, recorded)");
  cmd.add_option("--compile-timeout", f.compile_timeout, "Seconds allowed for worker start and compile")
      ->capture_default_str();
  cmd.add_option("--run-timeout", f.run_timeout, "Seconds allowed for correctness and timing")->capture_default_str();
  cmd.add_option("--compile-jobs", f.compile_jobs, "Parallel jobs for one build (MAX_JOBS; default: cores)");
  cmd.add_option("--compile-mode", f.compile_mode,
                 "fast: cached builds, precompiled torch header, no torch headers in CUDA code that does not "
                 "use them; plain: torch's load_inline build, untouched")
      ->check(CLI::IsMember({"fast", "plain"}))
      ->capture_default_str();
  cmd.add_option("--compile-cache", f.compile_cache,
                 "Folder of cached builds, shared by runs (env KBRUN_COMPILE_CACHE; default ~/.cache/kbrun/compile)");
  cmd.add_flag("--no-compile-cache", f.no_compile_cache, "Build every candidate afresh (fast mode still applies)");
  cmd.add_flag("--no-pch", f.no_pch, "Do not precompile torch/extension.h for the binding file");
  cmd.add_option("--warm-worker", f.warm_worker,
                 "Which workers start as forks of a Python that has imported torch, not as fresh interpreters "
                 "(seconds each): all = every worker and checker; cpu = only those that see no GPU (compile "
                 "phases, CPU evaluations); off = none: every one a fresh interpreter (docs/EVALUATION.md)")
      ->check(CLI::IsMember({"cpu", "all", "off"}))
      ->capture_default_str();
  cmd.add_option("--memory-limit", f.memory_limit,
                 "Memory cap of each worker and checker process and everything it starts, e.g. 16G or 512M: "
                 "auto = half of physical memory, off = none. A run that exceeds it is runtime_error/out_of_memory "
                 "(a cgroup where kbrun can make one, else RLIMIT_DATA; docs/EVALUATION.md)")
      ->check([](const std::string& v) -> std::string {
        return v == "auto" || v == "off" || ParseByteSize(v) ? "" : "expected a size such as 16G, auto or off";
      })
      ->capture_default_str();
  cmd.add_option("--python", f.python, "Python interpreter with torch (env KBRUN_PYTHON)");
  cmd.add_option("--work-dir", f.work_dir, "Root of private build directories (env KBRUN_WORK_DIR)");
  cmd.add_flag("--keep-work-dir", f.keep_work_dir, "Keep the private directory (builds, logs) for inspection");
  cmd.add_flag("--allow-library-kernels", f.allow_library_kernels,
               "Accept candidates whose time is mostly in torch/cuBLAS/cuDNN kernels (flagged, not rejected)");
  cmd.add_flag("--profile", f.profile,
               "After the verdict, profile a correct candidate's and the reference's kernels (ncu on NVIDIA, "
               "rocprofv3 on AMD) and add the roofline figures; result.json gets 'profile' and 'roofline'. "
               "Never changes the verdict, the timing or the exit code");
  cmd.add_option("--baseline", f.baselines,
                 "What the candidate's speed is also compared with; repeat it (or a comma list) for several: "
                 "eager = the reference as written (always timed: the speedup and the verdict are against it); "
                 "compile = torch.compile(reference), inductor, default mode; cudagraph = the reference captured "
                 "in a CUDA graph. Timed after the candidate on the same inputs, compile and capture time apart; "
                 "one that cannot run is recorded as unavailable with the reason (result.json baselines; "
                 "docs/EVALUATION.md)")
      ->check(CLI::IsMember({"eager", "compile", "cudagraph"}))
      ->delimiter(',')
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->capture_default_str();
  cmd.add_option("--profile-timeout", f.profile_timeout,
                 "Seconds allowed for the whole profile step (its own deadline, after the run)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

eval::EvalOptions ToEvalOptions(const EvalFlags& f) {
  eval::EvalOptions o;
  o.device = f.device;
  o.gpu_index = f.gpu;
  o.precision = f.precision;
  o.backend = f.backend;
  o.tk_root = f.tk_root;
  o.hk_root = f.hk_root;
  o.correctness_trials = f.correct_trials;
  o.timing_trials = f.perf_trials;
  o.warmup_runs = f.warmup;
  o.atol = f.atol;
  o.rtol = f.rtol;
  o.tolerance = f.atol || f.rtol ? "fixed" : f.tolerance;
  o.shapes = f.shapes;
  o.seed = f.seed;
  o.compile_timeout_s = f.compile_timeout;
  o.run_timeout_s = f.run_timeout;
  o.python = f.python;
  o.work_root = f.work_dir;
  o.keep_work_dir = f.keep_work_dir;
  o.profile = f.profile;
  o.profile_timeout_s = f.profile_timeout;
  o.compile_jobs = f.compile_jobs;
  o.allow_library_kernels = f.allow_library_kernels;
  o.compile_mode = f.compile_mode;
  o.compile_cache = !f.no_compile_cache;
  o.compile_cache_dir = f.compile_cache;
  o.precompiled_header = !f.no_pch;
  o.warm_worker = f.warm_worker;
  o.baselines = eval::NormalizeBaselines(f.baselines);
  if (f.memory_limit == "off")
    o.memory_limit_bytes = 0;
  else if (f.memory_limit != "auto")
    o.memory_limit_bytes = ParseByteSize(f.memory_limit);
  return o;
}

void AddRunAheadFlag(CLI::App& cmd, std::string& mode) {
  cmd.add_option("--run-ahead", mode,
                 "auto | on | off: while a lane runs an evaluation, the next one in its queue starts its run worker "
                 "and checker (CUDA initialisation only; they wait for the lane), so the lane does not wait for a "
                 "fresh process's CUDA start. auto: on for GPU lanes, off on the CPU (docs/EVALUATION.md)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
}

bool ResolveRunAhead(const std::string& mode, bool on_gpu) { return mode == "on" || (mode == "auto" && on_gpu); }

void AddBuildWarmupFlag(CLI::App& cmd, std::string& mode, const std::string& when) {
  cmd.add_option("--build-warmup", mode,
                 "auto | on | off: " + when +
                     ", build the precompiled headers that candidates' builds share (fast builds with a shared "
                     "cache), so that the first candidates do not build them on their critical path. auto: on for "
                     "GPU lanes (docs/PERFORMANCE.md)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
}

batch::BuildWarmup ResolveBuildWarmup(const std::string& mode, bool on_gpu, bool remote,
                                      const eval::EvalOptions& options, std::string& warning) {
  warning.clear();
  if (!remote && (mode == "on" || (mode == "auto" && on_gpu)) && batch::BuildWarmupApplies(options)) {
    bool cuda_builds = on_gpu && (options.backend == "cuda" || options.backend == "thunderkittens");
    return cuda_builds ? batch::BuildWarmup::kCuda : batch::BuildWarmup::kCpp;
  }
  if (mode == "on") {
    warning = remote ? "--build-warmup on does nothing here: another service evaluates (--evaluator)"
                     : "--build-warmup on does nothing here: it needs fast builds with a shared compile cache and "
                       "precompiled headers";
  }
  return batch::BuildWarmup::kOff;
}

}  // namespace kbrun::cli
