#include "eval/worker_env.h"

#include <algorithm>
#include <regex>
#include <thread>

#include "eval/backend.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::eval {
namespace {

// Variables the worker may see; anything else (API keys above all) stays behind.
const char* const kPassedEnv[] = {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "CUDA_HOME", "CUDA_PATH", "CUDA_ROOT",
                                  "ROCM_PATH", "HIP_PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "CC", "CXX", "CUDAHOSTCXX",
                                  "NVCC_CCBIN", "TORCH_CUDA_ARCH_LIST", "PYTORCH_ROCM_ARCH", "THUNDERKITTENS_ROOT",
                                  "HIPKITTENS_ROOT", "CCACHE_DIR",
                                  // Keep NVLink multicast off on shared multi-GPU hosts.
                                  "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST", "NVSHMEM_DISABLE_NVLS"};

}  // namespace

bool LooksSecret(const std::string& name) {
  static const std::regex secret("KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL|AUTH", std::regex::icase);
  return std::regex_search(name, secret);
}

// Values of kbrun's secret variables (API keys): scrubbed from whatever a child prints.
std::vector<std::string> SecretValues(const std::map<std::string, std::string>& current) {
  std::vector<std::string> values;
  for (const auto& [name, value] : current) {
    if (LooksSecret(name) && value.size() >= 8) values.push_back(value);
  }
  return values;
}

std::vector<std::string> SecretValues() { return SecretValues(CurrentEnvironment()); }

std::map<std::string, std::string> WorkerEnvironment(const std::map<std::string, std::string>& current,
                                                     const EvalOptions& o, const PythonEnv& py, const fs::path& dir,
                                                     bool gpu_visible) {
  std::map<std::string, std::string> env;
  for (const char* name : kPassedEnv) {
    if (auto it = current.find(name); it != current.end()) env[name] = it->second;
  }
  // Extra variables the user asked to pass (KBRUN_PASS_ENV=A,B), never secrets.
  if (auto it = current.find("KBRUN_PASS_ENV"); it != current.end()) {
    for (const auto& name : SplitLines(std::regex_replace(it->second, std::regex(","), "\n"))) {
      auto v = current.find(Trim(name));
      if (v != current.end() && !LooksSecret(v->first)) env[v->first] = v->second;
    }
  }
  for (auto it = env.begin(); it != env.end();) {
    it = LooksSecret(it->first) ? env.erase(it) : std::next(it);
  }
  env["HOME"] = (dir / "home").string();
  env["TMPDIR"] = (dir / "tmp").string();
  env["TORCH_EXTENSIONS_DIR"] = (dir / "build").string();
  // Triton (torch.compile's kernels) takes its home from HOME when it is imported: in the warm
  // worker, whose HOME its forks cannot write. Named here, it is the run's own.
  env["TRITON_HOME"] = (dir / "home").string();
  env["TRITON_CACHE_DIR"] = (dir / "home" / ".triton" / "cache").string();
  // torch.compile compiles in the calling process, not in a pool of compile workers whose
  // reader thread and processes outlive the call: the guards reject a candidate that leaves
  // threads or processes running (worker/kbrun_eval/guards.py).
  env["TORCHINDUCTOR_COMPILE_THREADS"] = "1";
  env["PYTHONDONTWRITEBYTECODE"] = "1";
  env["PYTHONUNBUFFERED"] = "1";
  unsigned jobs =
      o.compile_jobs > 0 ? static_cast<unsigned>(o.compile_jobs) : std::max(1u, std::thread::hardware_concurrency());
  env["MAX_JOBS"] = std::to_string(jobs);
  // The backend's arch lists and library roots (eval/backend.h).
  for (const auto& [name, value] : BackendFlagsFor(o, py).env) env[name] = value;
  // One GPU, or none: the compile phase never touches a GPU that another
  // candidate may be timing on.
  std::string visible = gpu_visible ? std::to_string(o.gpu_index) : "";
  env["CUDA_VISIBLE_DEVICES"] = visible;
  env["HIP_VISIBLE_DEVICES"] = visible;
  return env;
}

std::map<std::string, std::string> WorkerEnvironment(const EvalOptions& o, const PythonEnv& py, const fs::path& dir,
                                                     bool gpu_visible) {
  return WorkerEnvironment(CurrentEnvironment(), o, py, dir, gpu_visible);
}

}  // namespace kbrun::eval
