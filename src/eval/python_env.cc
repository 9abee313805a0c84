#include "eval/python_env.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"

namespace kbrun::eval {
namespace {

// Prints one JSON line describing torch and the GPUs it sees.
constexpr const char* kProbe = R"PY(
import json, sys
import torch
info = {"python": sys.version.split()[0], "exe": sys.executable, "torch": torch.__version__,
        "cuda": torch.version.cuda, "hip": getattr(torch.version, "hip", None),
        "gpu": torch.cuda.is_available(), "names": [], "arch": ""}
if info["gpu"]:
    info["names"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if not info["hip"]:
        major, minor = torch.cuda.get_device_capability(0)
        # Hopper's arch-specific features (wgmma, TMA) need sm_90a.
        info["arch"] = "%d.%d%s" % (major, minor, "a" if major >= 9 else "")
    else:
        # "gfx942:sramecc+:xnack-": the target without its features, for --offload-arch.
        info["gfx"] = getattr(torch.cuda.get_device_properties(0), "gcnArchName", "").split(":")[0]
print("KBRUN_PROBE " + json.dumps(info))
)PY";

std::optional<PythonEnv> Probe(const std::string& interpreter, std::string* why) {
  ProcessSpec spec;
  spec.argv = {interpreter, "-c", kProbe};
  spec.env = CurrentEnvironment();
  spec.timeout_s = 120;
  ProcessResult r = RunProcess(spec);
  auto pos = r.output.find("KBRUN_PROBE ");
  if (r.exit_code != 0 || pos == std::string::npos) {
    *why = r.spawn_failed ? "not found" : "cannot import torch";
    return std::nullopt;
  }
  auto line = r.output.substr(pos + 12);
  line = line.substr(0, line.find('\n'));
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded()) {
    *why = "probe printed no JSON";
    return std::nullopt;
  }
  PythonEnv env;
  // The resolved path: shims (pyenv) may not work in the worker's clean environment.
  env.interpreter = j.value("exe", interpreter);
  if (env.interpreter.empty()) env.interpreter = interpreter;
  env.python_version = j.value("python", "");
  env.torch_version = j.value("torch", "");
  env.cuda_version = j["cuda"].is_string() ? j["cuda"].get<std::string>() : "";
  env.hip_version = j["hip"].is_string() ? j["hip"].get<std::string>() : "";
  env.gpu_available = j.value("gpu", false);
  env.gpu_names = j.value("names", std::vector<std::string>{});
  env.arch_list = j.value("arch", "");
  env.gfx_arch = j.value("gfx", "");
  return env;
}

}  // namespace

const PythonEnv& DiscoverPython(const std::string& requested) {
  static std::mutex mu;
  static std::map<std::string, PythonEnv> cache;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(requested); it != cache.end()) return it->second;

  std::vector<std::string> candidates;
  if (!requested.empty()) {
    candidates = {requested};
  } else if (auto env = GetEnvOption("KBRUN_PYTHON")) {
    candidates = {*env};
  } else {
    candidates = {"python3", "/usr/bin/python3", "python"};
  }
  std::string tried;
  for (const auto& c : candidates) {
    std::string why;
    if (auto env = Probe(c, &why)) return cache[requested] = *env;
    tried += fmt::format("\n  {}: {}", c, why);
  }
  throw std::runtime_error(
      fmt::format("no Python interpreter with torch found; tried:{}\n"
                  "Name one with --python PATH or KBRUN_PYTHON (on Debian: apt-get install python3-torch, "
                  "then --python /usr/bin/python3).",
                  tried));
}

std::string WorkerScriptPath() {
  if (auto env = GetEnvOption("KBRUN_WORKER")) return *env;
  // Installed layout first (bin/kbrun, share/kbrun/kbrun_worker.py), then the build
  // tree (CMake copies it beside the binary), then the source tree.
  auto exe_dir = ExecutableDir();
  for (const auto& p : {exe_dir / "../share/kbrun/kbrun_worker.py", exe_dir / "kbrun_worker.py",
                        fs::path(KBRUN_SOURCE_DIR) / "src/eval/worker/kbrun_worker.py"}) {
    if (fs::exists(p)) return fs::weakly_canonical(p).string();
  }
  throw std::runtime_error("kbrun_worker.py not found (set KBRUN_WORKER)");
}

}  // namespace kbrun::eval
