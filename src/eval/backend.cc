#include "eval/backend.h"

#include <regex>

#include <fmt/format.h>

#include "eval/evaluation.h"
#include "eval/python_env.h"
#include "util/subprocess.h"

namespace kbrun::eval {
namespace {

// "9.0a;10.0a" or "gfx90a gfx942" -> entries.
std::vector<std::string> SplitArchList(const std::string& list) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : list + ";") {
    if (c == ';' || c == ' ' || c == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

// ThunderKittens' architecture switch, as in its kernels/common.mk (GPU := H100 | B200 | A100).
std::string TkArchDefine(const std::string& arch) {
  int major = 0;
  try {
    major = std::stoi(arch);
  } catch (const std::exception&) {
    return "KITTENS_HOPPER";
  }
  if (major >= 10) return "KITTENS_BLACKWELL";
  if (major == 8) return "KITTENS_AMPERE";
  return "KITTENS_HOPPER";
}

// HipKittens' switch, as in its kernels' Makefiles (GPU_TARGET := CDNA2 | CDNA3) and base_types.cuh (CDNA4).
std::string HkArchDefine(const std::string& gfx) {
  if (gfx == "gfx90a") return "KITTENS_CDNA2";
  if (gfx == "gfx950") return "KITTENS_CDNA4";
  return "KITTENS_CDNA3";
}

std::string MissingRootMessage(const std::string& library, const char* flag, const char* env, const fs::path& root) {
  if (root.empty()) {
    return fmt::format(
        "{} is not configured: pass {} DIR or set {} to its checkout (the folder with "
        "include/kittens.cuh)",
        library, flag, env);
  }
  return fmt::format(
      "{} is not configured: {} has no include/kittens.cuh (pass {} DIR or set {} to the "
      "library's checkout)",
      library, root.string(), flag, env);
}

bool HasKittensHeader(const fs::path& root) {
  std::error_code ec;
  return !root.empty() && fs::is_regular_file(root / "include/kittens.cuh", ec);
}

}  // namespace

bool IsBackendName(const std::string& name) {
  return name == "cuda" || name == "thunderkittens" || name == "hip" || name == "hipkittens";
}

bool IsRocmBackend(const std::string& backend) { return backend == "hip" || backend == "hipkittens"; }

std::string ResolveBackend(const std::string& requested, const std::string& torch_hip_version) {
  if (!requested.empty() && requested != "auto") return requested;
  return torch_hip_version.empty() ? "cuda" : "hip";
}

nlohmann::json BackendFlags::ToRequest() const {
  std::vector<std::string> cuda = device_flags;
  for (const auto& d : defines) cuda.push_back("-D" + d);
  std::vector<std::string> includes;
  for (const auto& p : include_dirs) includes.push_back(p.string());
  return {{"name", backend},
          {"cflags", cxx_flags},
          {"cuda_cflags", cuda},
          {"include_paths", includes},
          {"ldflags", ldflags}};
}

BackendFlags MakeBackendFlags(const BackendFacts& f) {
  BackendFlags b;
  b.backend = f.backend;
  if (!f.tk_root.empty()) b.env["THUNDERKITTENS_ROOT"] = f.tk_root.string();
  if (!f.hk_root.empty()) b.env["HIPKITTENS_ROOT"] = f.hk_root.string();

  if (f.backend == "cuda") {
    // torch turns TORCH_CUDA_ARCH_LIST into -gencode (9.0a -> sm_90a); the compile phase sees
    // no GPU, so torch could not find the arch itself.
    if (!f.cuda_arch.empty()) b.env["TORCH_CUDA_ARCH_LIST"] = f.cuda_arch;
  } else if (f.backend == "thunderkittens") {
    // TK's Hopper path (wgmma, TMA) needs sm_90a: the target when no GPU is seen (CI, compile-only).
    std::string arch = f.cuda_arch.empty() ? "9.0a" : f.cuda_arch;
    b.env["TORCH_CUDA_ARCH_LIST"] = arch;
    auto first = SplitArchList(arch);
    // The flags of TK's own builds (kernels/common.mk), less the ones that change numerics
    // (--use_fast_math: a candidate may add it) or only add verbosity.
    b.device_flags = {"-std=c++20", "--expt-extended-lambda", "--expt-relaxed-constexpr",
                      "-Xcompiler=-fno-strict-aliasing"};
    b.defines = {"NDEBUG", TkArchDefine(first.empty() ? arch : first[0])};
    if (HasKittensHeader(f.tk_root)) {
      b.include_dirs = {f.tk_root / "include", f.tk_root / "prototype"};
    } else {
      b.not_configured = MissingRootMessage("ThunderKittens", "--tk-root", "THUNDERKITTENS_ROOT", f.tk_root);
    }
    // TMA descriptors come from the driver API (cuTensorMapEncodeTiled): link libcuda. The
    // toolkit's stub has the driver's soname, so the real driver is loaded at run time.
    // --as-needed: an extension that calls no driver function keeps no libcuda dependency.
    b.ldflags = {"-Wl,--push-state,--as-needed", "-lcuda", "-Wl,--pop-state"};
    if (!f.cuda_stubs_dir.empty()) b.ldflags.push_back("-L" + f.cuda_stubs_dir.string());
  } else if (f.backend == "hip" || f.backend == "hipkittens") {
    std::vector<std::string> archs = SplitArchList(f.gfx_arch);
    // HipKittens targets CDNA3 (MI300X/MI325X) unless the GPU says otherwise.
    if (archs.empty() && f.backend == "hipkittens") archs = {"gfx942"};
    // An explicit --offload-arch stops torch from adding every arch it was built for; the
    // environment variable does the same for torch versions that only read PYTORCH_ROCM_ARCH.
    for (const auto& a : archs) b.device_flags.push_back("--offload-arch=" + a);
    if (!archs.empty()) {
      std::string joined;
      for (const auto& a : archs) joined += (joined.empty() ? "" : ";") + a;
      b.env["PYTORCH_ROCM_ARCH"] = joined;
    }
    if (f.backend == "hipkittens") {
      // HipKittens' own build (kernels/gemm/*/Makefile): -std=c++20, KITTENS_CDNA<n>, include/.
      b.device_flags.insert(b.device_flags.begin(), "-std=c++20");
      b.defines = {HkArchDefine(archs[0])};
      if (HasKittensHeader(f.hk_root)) {
        b.include_dirs = {f.hk_root / "include"};
      } else {
        b.not_configured = MissingRootMessage("HipKittens", "--hk-root", "HIPKITTENS_ROOT", f.hk_root);
      }
    }
  }
  return b;
}

BackendFacts DiscoverBackendFacts(const EvalOptions& o, const PythonEnv& py,
                                  const std::map<std::string, std::string>& environment) {
  auto env = [&](const char* name) -> std::string {
    auto it = environment.find(name);
    return it == environment.end() ? "" : it->second;
  };
  BackendFacts f;
  f.backend = ResolveBackend(o.backend, py.hip_version);
  auto root = [](const fs::path& flag, const std::string& var) -> fs::path {
    fs::path p = !flag.empty() ? flag : fs::path(var);
    return p.empty() ? p : fs::absolute(p).lexically_normal();
  };
  f.tk_root = root(o.tk_root, env("THUNDERKITTENS_ROOT"));
  f.hk_root = root(o.hk_root, env("HIPKITTENS_ROOT"));
  // The user's arch list wins over what torch saw, as torch itself does.
  f.cuda_arch = !env("TORCH_CUDA_ARCH_LIST").empty() ? env("TORCH_CUDA_ARCH_LIST") : py.arch_list;
  f.gfx_arch = !env("PYTORCH_ROCM_ARCH").empty() ? env("PYTORCH_ROCM_ARCH") : py.gfx_arch;
  std::string cuda_home = !env("CUDA_HOME").empty()   ? env("CUDA_HOME")
                          : !env("CUDA_PATH").empty() ? env("CUDA_PATH")
                                                      : "/usr/local/cuda";
  std::error_code ec;
  fs::path stubs = fs::path(cuda_home) / "lib64/stubs";
  if (fs::exists(stubs / "libcuda.so", ec)) f.cuda_stubs_dir = stubs;
  return f;
}

BackendFlags BackendFlagsFor(const EvalOptions& o, const PythonEnv& py) {
  return MakeBackendFlags(DiscoverBackendFacts(o, py, CurrentEnvironment()));
}

bool IncludesKittens(const std::string& source) {
  static const std::regex include(R"(#\s*include\s*[<"]([^>"]*/)?kittens\.cuh[>"])");
  return std::regex_search(source, include);
}

std::optional<std::string> NotConfiguredError(const BackendFlags& flags, const BackendFacts& facts,
                                              const std::string& candidate_source) {
  if (!flags.not_configured.empty()) return flags.not_configured;
  if (!IncludesKittens(candidate_source)) return std::nullopt;
  // kittens.cuh under a plain backend: fine when the user named the library's root (the
  // candidate then finds it through the environment variable), not otherwise.
  bool rocm = IsRocmBackend(flags.backend);
  if (flags.backend == "thunderkittens" || flags.backend == "hipkittens") return std::nullopt;
  if (rocm && !HasKittensHeader(facts.hk_root)) {
    return "the candidate includes kittens.cuh but " +
           MissingRootMessage("HipKittens", "--hk-root", "HIPKITTENS_ROOT", facts.hk_root) +
           "; use --backend hipkittens for HipKittens kernels";
  }
  if (!rocm && !HasKittensHeader(facts.tk_root)) {
    return "the candidate includes kittens.cuh but " +
           MissingRootMessage("ThunderKittens", "--tk-root", "THUNDERKITTENS_ROOT", facts.tk_root) +
           "; use --backend thunderkittens for ThunderKittens kernels";
  }
  return std::nullopt;
}

}  // namespace kbrun::eval
