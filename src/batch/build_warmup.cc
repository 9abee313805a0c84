#include "batch/build_warmup.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <system_error>
#include <thread>

#include "util/fs.h"

namespace kbrun::batch {

namespace {

using json = nlohmann::json;

// A warm-up compile that has not ended by then is stopped: its headers are left to the candidates.
constexpr double kWarmupTimeoutS = 600;

// A CUDA file as models write it: torch's header, a kernel and its host function in one file. kbrun
// splits it (kbrun_eval/cuda_split.py); the host file's header is torch/types.h here, torch/extension.h
// with a PYBIND11_MODULE beside it.
constexpr const char* kCudaFile = R"(#include <torch/extension.h>
__global__ void kbrun_warmup_kernel(float* x, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}
torch::Tensor kbrun_warmup(torch::Tensor x) {
  kbrun_warmup_kernel<<<1, 32>>>(x.data_ptr<float>(), static_cast<int>(x.numel()));
  return x;
}
)";
constexpr const char* kModule = R"(PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("kbrun_warmup", &kbrun_warmup); }
)";
constexpr const char* kDeclaration = "torch::Tensor kbrun_warmup(torch::Tensor x);";
// Names the C++ frontend: the binding file keeps torch/extension.h (kbrun_eval/build.py lighten_binding).
constexpr const char* kFrontend =
    "torch::Tensor kbrun_warmup_relu(torch::Tensor x) { return torch::nn::functional::relu(x); }";

// The problem the warm-up candidates are compiled against, in KernelBench's format.
constexpr const char* kProblem = R"(import torch


class Model(torch.nn.Module):
    def forward(self, x):
        return x


def get_inputs():
    return [torch.zeros(1)]


def get_init_inputs():
    return []
)";

std::string PythonString(const std::string& text) { return json(text).dump(); }

std::string Candidate(const std::string& name, const std::string& cpp, const std::string& cuda,
                      const std::vector<std::string>& functions, const std::vector<std::string>& cuda_flags) {
  std::string call = fmt::format("name={}, cpp_sources={}", PythonString("kbrun_warmup_" + name), PythonString(cpp));
  if (!cuda.empty()) call += ", cuda_sources=" + PythonString(cuda);
  if (!functions.empty()) call += ", functions=" + json(functions).dump();
  if (!cuda_flags.empty()) call += ", extra_cuda_cflags=" + json(cuda_flags).dump();
  return fmt::format(
      "# kbrun's build warm-up: it builds the precompiled headers candidates' builds share; never run.\n"
      "import torch\n"
      "from torch.utils.cpp_extension import load_inline\n\n"
      "load_inline({})\n\n\n"
      "class ModelNew(torch.nn.Module):\n"
      "    def __init__(self, *args, **kwargs):\n"
      "        super().__init__()\n\n"
      "    def forward(self, *args):\n"
      "        return args[0]\n",
      call);
}

struct BuildWarmupOutcome {
  double seconds = 0;     // wall time, all warm-up compiles together
  int failed = 0;         // compile phases that failed (their headers may be missing)
  int headers_built = 0;  // precompiled headers built by the warm-up
  int headers_ready = 0;  // found already built, or built by another build while waited for
  int builds_cached = 0;  // warm-up builds found whole in the cache (an earlier warm-up built them)
  // Per candidate compiled: name, ok, compile_s, error (null when ok), builds (kbrun_eval/build.py's records).
  json records = json::array();
};

// Counts one build record's headers into the outcome.
void CountHeaders(const json& build, BuildWarmupOutcome& out) {
  auto count = [&out](const json& state) {
    if (!state.is_string()) return;
    if (state == "built") ++out.headers_built;
    if (state == "used") ++out.headers_ready;
  };
  if (build.value("cache", "") == "hit") ++out.builds_cached;
  if (build.contains("pch")) count(build["pch"]);
  if (build.contains("split_pch") && build["split_pch"].is_array()) {
    for (const json& s : build["split_pch"]) count(s);
  }
}

}  // namespace

bool BuildWarmupApplies(const eval::EvalOptions& options) {
  return options.compile_mode == "fast" && options.compile_cache && options.precompiled_header;
}

std::vector<std::pair<std::string, std::string>> BuildWarmupCandidates(BuildWarmup kind) {
  std::vector<std::pair<std::string, std::string>> out;
  if (kind == BuildWarmup::kOff) return out;
  if (kind == BuildWarmup::kCuda) {
    // The binding file and the split host file, with torch's flags and with the -O3 most candidates
    // pass (the host file gets the CUDA flags' -O level); a CUDA file with PYBIND11_MODULE; a binding
    // file that names the C++ frontend.
    const std::vector<std::pair<std::string, std::vector<std::string>>> flag_sets = {
        {"", {}}, {"_O3", {"-O3", "--use_fast_math"}}};
    for (const auto& [suffix, flags] : flag_sets) {
      out.emplace_back("cuda_functions" + suffix,
                       Candidate("cuda_functions" + suffix, kDeclaration, kCudaFile, {"kbrun_warmup"}, flags));
      out.emplace_back("cuda_module" + suffix,
                       Candidate("cuda_module" + suffix, "", std::string(kCudaFile) + kModule, {}, flags));
    }
    out.emplace_back("cuda_frontend", Candidate("cuda_frontend", std::string(kDeclaration) + "\n" + kFrontend,
                                                kCudaFile, {"kbrun_warmup", "kbrun_warmup_relu"}, {}));
    return out;
  }
  out.emplace_back("cpp_functions",
                   Candidate("cpp_functions", "torch::Tensor kbrun_warmup(torch::Tensor x) { return x; }", "",
                             {"kbrun_warmup"}, {}));
  out.emplace_back("cpp_frontend", Candidate("cpp_frontend", kFrontend, "", {"kbrun_warmup_relu"}, {}));
  return out;
}

namespace {

// `scratch`: a folder for the problem and candidates' files (created, then removed).
BuildWarmupOutcome CompileAll(BuildWarmup kind, const eval::EvalOptions& options, const fs::path& scratch) {
  BuildWarmupOutcome out;
  const auto candidates = BuildWarmupCandidates(kind);
  if (candidates.empty()) return out;
  auto start = std::chrono::steady_clock::now();
  fs::create_directories(scratch);
  const fs::path problem = scratch / "kbrun_warmup_problem.py";
  WriteFileAtomic(problem, kProblem);
  eval::EvalOptions o = options;
  o.compile_timeout_s = std::min(o.compile_timeout_s, kWarmupTimeoutS);
  o.keep_work_dir = false;
  std::vector<eval::CompiledCandidate> compiled(candidates.size());
  std::vector<std::string> errors(candidates.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < candidates.size(); ++i) {
    fs::path code = scratch / (candidates[i].first + ".py");
    WriteFileAtomic(code, candidates[i].second);
    threads.emplace_back([&, i, code] {
      try {
        compiled[i] = eval::Compile({problem, code, o});
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < candidates.size(); ++i) {
    eval::CompiledCandidate& c = compiled[i];
    std::string error = !errors[i].empty() ? errors[i] : c.ok ? "" : c.failure.error_message;
    if (!c.ok) ++out.failed;
    for (const json& b : c.builds) CountHeaders(b, out);
    out.records.push_back({{"name", candidates[i].first},
                           {"ok", c.ok},
                           {"compile_s", c.compile_s},
                           {"error", error.empty() ? json(nullptr) : json(error)},
                           {"builds", c.builds}});
    std::error_code ec;
    if (!c.work_dir.empty()) fs::remove_all(c.work_dir, ec);
  }
  std::error_code ec;
  fs::remove_all(scratch, ec);
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

std::string BuildWarmupText(const BuildWarmupOutcome& w) {
  std::string text = fmt::format(
      "build warm-up: {} compiles in {:.1f} s; precompiled headers built {}, found built for {} builds; {} builds "
      "cached by an earlier warm-up",
      w.records.size(), w.seconds, w.headers_built, w.headers_ready, w.builds_cached);
  for (const json& r : w.records) {
    if (r["ok"]) continue;
    std::string error = r["error"].is_string() ? r["error"].get<std::string>() : "";
    text += fmt::format("; {} failed (candidates build what is missing themselves), first: {}: {}", w.failed,
                        r["name"].get<std::string>(), error.substr(0, error.find('\n')));
    break;
  }
  return text;
}

json BuildWarmupJson(const BuildWarmupOutcome& w) {
  return {{"seconds", w.seconds},
          {"compiles", w.records.size()},
          {"failed", w.failed},
          {"headers_built", w.headers_built},
          {"headers_ready", w.headers_ready},
          {"builds_cached", w.builds_cached},
          {"candidates", w.records}};
}

}  // namespace

std::string WarmUpBuilds(BuildWarmup kind, const eval::EvalOptions& options, const fs::path& record) {
  try {
    fs::path scratch = fs::temp_directory_path() / fmt::format("kbrun-build-warmup-{}", getpid());
    BuildWarmupOutcome w = CompileAll(kind, options, scratch);
    WriteFileAtomic(record, BuildWarmupJson(w).dump(2));
    return BuildWarmupText(w);
  } catch (const std::exception& e) {
    return fmt::format("build warm-up failed: {} (candidates build their headers themselves)", e.what());
  }
}

}  // namespace kbrun::batch
