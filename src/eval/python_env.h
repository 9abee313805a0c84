// Finding the Python interpreter that has torch, and what it sees (GPUs, versions).
//
// Order: the interpreter the user names (--python or KBRUN_PYTHON), else the first of
// `python3` on PATH, /usr/bin/python3, `python` that can import torch. The probe runs
// once per interpreter per kbrun process.
#pragma once

#include <string>
#include <vector>

namespace kbrun::eval {

struct PythonEnv {
  std::string interpreter;
  std::string python_version;
  std::string torch_version;
  std::string cuda_version;  // empty without CUDA
  std::string hip_version;   // empty without ROCm
  bool gpu_available = false;
  std::vector<std::string> gpu_names;
  std::string arch_list;  // for TORCH_CUDA_ARCH_LIST, e.g. "9.0a"; empty on CPU
  std::string gfx_arch;   // AMD target for --offload-arch, e.g. "gfx942"; empty without a ROCm GPU
};

// Throws std::runtime_error with a message that says how to fix it.
const PythonEnv& DiscoverPython(const std::string& requested);

// The worker script shipped with kbrun (KBRUN_WORKER overrides).
std::string WorkerScriptPath();

}  // namespace kbrun::eval
