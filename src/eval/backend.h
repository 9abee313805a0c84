// The kernel backends (--backend cuda | thunderkittens | hip | hipkittens): the compile
// flags kbrun adds to every extension a candidate builds with load_inline.
//
// Facts (GPU arch, library roots, CUDA stubs) are gathered once by DiscoverBackendFacts;
// MakeBackendFlags turns them into flags without touching the machine, so the flag
// construction of every backend is unit-tested. The worker (kbrun_build.add_backend_flags)
// puts kbrun's flags before the candidate's own, in both compile modes; they are part of
// the build arguments and so of the compile cache's key (docs/BACKENDS.md).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kbrun::eval {

namespace fs = std::filesystem;

struct EvalOptions;
struct PythonEnv;

// What the machine and the user say; empty fields are unknown or not configured.
struct BackendFacts {
  std::string backend;        // cuda | thunderkittens | hip | hipkittens (resolved, never "auto")
  std::string cuda_arch;      // TORCH_CUDA_ARCH_LIST form: "9.0a", "10.0a", "8.0"
  std::string gfx_arch;       // AMD target without features: "gfx942"
  fs::path tk_root, hk_root;  // ThunderKittens / HipKittens checkouts
  fs::path cuda_stubs_dir;    // a folder with libcuda.so (the toolkit's stubs) for -lcuda
};

struct BackendFlags {
  std::string backend;
  std::vector<std::string> cxx_flags;     // the binding file (g++); on ROCm torch passes them to hipcc too
  std::vector<std::string> device_flags;  // nvcc / hipcc only
  std::vector<std::string> defines;       // NAME or NAME=VALUE, given to the device compiler as -D
  std::vector<fs::path> include_dirs;     // both compilers
  std::vector<std::string> ldflags;
  std::map<std::string, std::string> env;  // set in the worker's environment (arch lists, roots)
  // Set when the backend cannot build at all (its library's root is missing): the message.
  std::string not_configured;

  // The worker request's "backend" object: what kbrun_build.add_backend_flags applies.
  nlohmann::json ToRequest() const;
};

bool IsBackendName(const std::string& name);
// NVIDIA or AMD family of a backend.
bool IsRocmBackend(const std::string& backend);
// "auto" (or empty) picks hip when torch is a ROCm build, else cuda.
std::string ResolveBackend(const std::string& requested, const std::string& torch_hip_version);

BackendFlags MakeBackendFlags(const BackendFacts& facts);

// Reads the roots (--tk-root/--hk-root, else THUNDERKITTENS_ROOT/HIPKITTENS_ROOT), the GPU
// arch (TORCH_CUDA_ARCH_LIST / PYTORCH_ROCM_ARCH when set, else what torch saw) and the
// CUDA stubs folder (CUDA_HOME, CUDA_PATH, else /usr/local/cuda).
BackendFacts DiscoverBackendFacts(const EvalOptions& options, const PythonEnv& py,
                                  const std::map<std::string, std::string>& environment);
BackendFlags BackendFlagsFor(const EvalOptions& options, const PythonEnv& py);

// Whether candidate source code includes kittens.cuh (ThunderKittens or HipKittens).
bool IncludesKittens(const std::string& source);

// The error for a candidate that cannot build under these flags: a kittens backend without
// its root, or a candidate that includes kittens.cuh while no root for its family is set.
// nullopt when the candidate may go ahead.
std::optional<std::string> NotConfiguredError(const BackendFlags& flags, const BackendFacts& facts,
                                              const std::string& candidate_source);

}  // namespace kbrun::eval
