// How much runs at once: which GPU lanes time candidates and how many compiles share the
// cores. One place for that policy: `kbrun batch` resolves its lanes and compile pool here,
// and the scheduler and `kbrun serve` take their defaults from here.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kbrun::batch {

// The machine's cores (at least 1).
int CoreCount();

// "0,1" -> {0, 1}; blanks ignored. Throws std::invalid_argument "<what>: not a GPU index list:
// '<text>' (expected e.g. 0,1)" for anything else.
std::vector<int> ParseGpuList(const std::string& text, const std::string& what);

// One timing lane per GPU: --gpus, else --gpu when given, else (on a GPU) every GPU named by
// physical index in CUDA_VISIBLE_DEVICES (UUIDs or MIG names: not used), else every GPU torch
// sees (`torch_gpus`), else one lane 0; off the GPU, one lane 0. Throws what ParseGpuList throws
// for a bad --gpus.
struct LaneRequest {
  std::string gpus;                  // --gpus, "" when not given
  std::optional<int> gpu;            // --gpu when given
  bool on_gpu = false;               // the evaluations run on a GPU
  std::string cuda_visible_devices;  // the variable's value, "" when unset
  size_t torch_gpus = 0;             // GPUs the Python probe saw
};
std::vector<int> ResolveLanes(const LaneRequest& r);

// kbrun serve's lanes: --gpus as given, else (and on the CPU) the one --gpu.
std::vector<int> ResolveServeLanes(const std::vector<int>& gpus, int gpu, bool on_cpu);

// The batch's compile pool: --compile-jobs compiles at once (default: one per core), each
// build then getting its share of the cores as MAX_JOBS (at least 1).
struct CompilePool {
  int compiles = 1;        // BatchOptions::compile_pool
  int jobs_per_build = 1;  // EvalOptions::compile_jobs of each
};
CompilePool ResolveCompilePool(int compile_jobs_flag, int cores = CoreCount());

// A pool size of 0 or less means one per core (BatchOptions::compile_pool, ServiceOptions).
int PoolSizeOrCores(int requested);

}  // namespace kbrun::batch
