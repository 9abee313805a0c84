#include "eval/worker_request.h"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "eval/backend.h"
#include "util/env_options.h"

namespace kbrun::eval {

using nlohmann::json;

std::string CompileCacheDir(const EvalOptions& o) {
  if (o.compile_mode != "fast" || !o.compile_cache) return "";
  return fs::absolute(o.compile_cache_dir.empty() ? DefaultCompileCacheDir() : o.compile_cache_dir).string();
}

fs::path DefaultCompileCacheDir() {
  if (auto c = GetEnvOption("KBRUN_COMPILE_CACHE")) return *c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "kbrun/compile";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache/kbrun/compile";
  return fs::temp_directory_path() / fmt::format("kbrun-{}/compile", getuid());
}

json BuildRequest(const EvalOptions& o, const PythonEnv& py) {
  return {{"mode", o.compile_mode},
          {"cache_dir", CompileCacheDir(o).empty() ? json(nullptr) : json(CompileCacheDir(o))},
          {"pch", o.precompiled_header},
          // kbrun's flags for the backend, added to every load_inline build (kbrun_eval/build.py).
          {"backend", BackendFlagsFor(o, py).ToRequest()}};
}

json WorkerRequest(const std::string& phase, const EvalOptions& o, const PythonEnv& py, const std::string& device,
                   uint64_t seed, const fs::path& dir, const std::string& nonce) {
  return {
      {"phase", phase},
      {"problem", fs::absolute(dir / "problem.py").string()},
      {"code", fs::absolute(dir / "candidate.py").string()},
      {"device", device},
      {"precision", o.precision},
      {"seed", seed},
      {"correctness_trials", o.correctness_trials},
      {"timing_trials", o.timing_trials},
      {"warmup_runs", o.warmup_runs},
      {"atol", o.atol ? json(*o.atol) : json(nullptr)},
      {"rtol", o.rtol ? json(*o.rtol) : json(nullptr)},
      {"tolerance", o.tolerance},
      {"shapes", o.shapes},
      {"build", BuildRequest(o, py)},
      {"nonce", nonce},
  };
}

json CheckerRequest(const json& worker_request, const EvalOptions& o, const std::string& device, uint64_t seed,
                    const std::string& nonce) {
  return {{"problem", worker_request["problem"]},
          {"device", device},
          {"precision", o.precision},
          {"seed", seed},
          {"atol", worker_request["atol"]},
          {"rtol", worker_request["rtol"]},
          {"tolerance", o.tolerance},
          {"shapes", o.shapes},
          {"baselines", o.baselines},
          {"nonce", nonce}};
}

}  // namespace kbrun::eval
