// Flag construction for the four backends, backend detection, the not-configured check,
// and (where Debian's hipcc is installed) that hipcc builds the HIP prompts' kernels with
// exactly the flags the hip and hipkittens backends produce.
#include "eval/backend.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "eval/evaluation.h"
#include "eval/python_env.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::eval {
namespace {

bool Has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A fake library checkout: only include/kittens.cuh matters to kbrun.
class BackendRoots : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-backend-test-");
    fs::create_directories(dir_ / "tk/include");
    fs::create_directories(dir_ / "hk/include");
    WriteFileAtomic(dir_ / "tk/include/kittens.cuh", "#pragma once\n");
    WriteFileAtomic(dir_ / "hk/include/kittens.cuh", "#pragma once\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(Backend, CudaUsesTheGpusOwnArchAndAddsNoFlags) {
  BackendFlags b = MakeBackendFlags({.backend = "cuda", .cuda_arch = "9.0a"});
  EXPECT_EQ(b.env.at("TORCH_CUDA_ARCH_LIST"), "9.0a");  // torch turns it into -gencode ...sm_90a
  EXPECT_TRUE(b.device_flags.empty());
  EXPECT_TRUE(b.cxx_flags.empty());
  EXPECT_TRUE(b.include_dirs.empty());
  EXPECT_TRUE(b.ldflags.empty());
  EXPECT_TRUE(b.not_configured.empty());
  auto req = b.ToRequest();
  EXPECT_EQ(req["name"], "cuda");
  EXPECT_TRUE(req["cuda_cflags"].empty() && req["cflags"].empty() && req["include_paths"].empty());

  // No GPU (CI): nothing to say about the arch, torch's defaults stay.
  EXPECT_FALSE(MakeBackendFlags({.backend = "cuda"}).env.count("TORCH_CUDA_ARCH_LIST"));
}

TEST_F(BackendRoots, ThunderKittensGetsTheFlagsOfItsOwnBuild) {
  BackendFlags b = MakeBackendFlags(
      {.backend = "thunderkittens", .cuda_arch = "9.0a", .tk_root = dir_ / "tk", .cuda_stubs_dir = "/cuda/stubs"});
  EXPECT_TRUE(b.not_configured.empty()) << b.not_configured;
  EXPECT_EQ(b.env.at("TORCH_CUDA_ARCH_LIST"), "9.0a");
  EXPECT_EQ(b.env.at("THUNDERKITTENS_ROOT"), (dir_ / "tk").string());
  for (const char* f :
       {"-std=c++20", "--expt-extended-lambda", "--expt-relaxed-constexpr", "-Xcompiler=-fno-strict-aliasing"}) {
    EXPECT_TRUE(Has(b.device_flags, f)) << f;
  }
  EXPECT_FALSE(Has(b.device_flags, "--use_fast_math"));  // changes numerics: the candidate's choice
  EXPECT_EQ(b.defines, (std::vector<std::string>{"NDEBUG", "KITTENS_HOPPER"}));
  EXPECT_EQ(b.include_dirs, (std::vector<fs::path>{dir_ / "tk/include", dir_ / "tk/prototype"}));
  EXPECT_TRUE(Has(b.ldflags, "-lcuda"));
  EXPECT_TRUE(Has(b.ldflags, "-L/cuda/stubs"));
  EXPECT_TRUE(b.cxx_flags.empty());  // the binding file stays C++17 with torch's headers

  auto req = b.ToRequest();
  auto cuda = req["cuda_cflags"].get<std::vector<std::string>>();
  EXPECT_TRUE(Has(cuda, "-DKITTENS_HOPPER"));
  EXPECT_TRUE(Has(cuda, "-DNDEBUG"));
  EXPECT_TRUE(Has(cuda, "-std=c++20"));
  EXPECT_EQ(req["include_paths"][0], (dir_ / "tk/include").string());
}

TEST_F(BackendRoots, ThunderKittensArchFollowsTheGpu) {
  auto define = [&](const std::string& arch) {
    return MakeBackendFlags({.backend = "thunderkittens", .cuda_arch = arch, .tk_root = dir_ / "tk"}).defines.back();
  };
  EXPECT_EQ(define("9.0a"), "KITTENS_HOPPER");
  EXPECT_EQ(define("10.0a"), "KITTENS_BLACKWELL");
  EXPECT_EQ(define("8.0"), "KITTENS_AMPERE");
  // No GPU seen: Hopper's sm_90a, the target of TK's Hopper path.
  BackendFlags none = MakeBackendFlags({.backend = "thunderkittens", .tk_root = dir_ / "tk"});
  EXPECT_EQ(none.env.at("TORCH_CUDA_ARCH_LIST"), "9.0a");
  EXPECT_EQ(none.defines.back(), "KITTENS_HOPPER");
  EXPECT_FALSE(Has(none.ldflags, "-L"));
}

TEST_F(BackendRoots, KittensBackendsWithoutTheirRootAreNotConfigured) {
  BackendFlags tk = MakeBackendFlags({.backend = "thunderkittens", .cuda_arch = "9.0a"});
  EXPECT_NE(tk.not_configured.find("--tk-root"), std::string::npos) << tk.not_configured;
  EXPECT_NE(tk.not_configured.find("THUNDERKITTENS_ROOT"), std::string::npos) << tk.not_configured;
  EXPECT_TRUE(tk.include_dirs.empty());

  // A root without include/kittens.cuh is named in the message.
  BackendFlags wrong = MakeBackendFlags({.backend = "thunderkittens", .tk_root = dir_ / "hk/include"});
  EXPECT_NE(wrong.not_configured.find((dir_ / "hk/include").string()), std::string::npos) << wrong.not_configured;

  BackendFlags hk = MakeBackendFlags({.backend = "hipkittens", .gfx_arch = "gfx942"});
  EXPECT_NE(hk.not_configured.find("--hk-root"), std::string::npos) << hk.not_configured;
  EXPECT_NE(hk.not_configured.find("HIPKITTENS_ROOT"), std::string::npos) << hk.not_configured;
}

TEST(Backend, HipTargetsTheGpusGfxArch) {
  BackendFlags b = MakeBackendFlags({.backend = "hip", .gfx_arch = "gfx942"});
  EXPECT_EQ(b.device_flags, (std::vector<std::string>{"--offload-arch=gfx942"}));
  EXPECT_EQ(b.env.at("PYTORCH_ROCM_ARCH"), "gfx942");
  EXPECT_TRUE(b.defines.empty());
  EXPECT_TRUE(b.not_configured.empty());

  BackendFlags two = MakeBackendFlags({.backend = "hip", .gfx_arch = "gfx90a;gfx942"});
  EXPECT_EQ(two.device_flags, (std::vector<std::string>{"--offload-arch=gfx90a", "--offload-arch=gfx942"}));
  EXPECT_EQ(two.env.at("PYTORCH_ROCM_ARCH"), "gfx90a;gfx942");

  // No AMD GPU seen: torch's own arch list stays.
  BackendFlags none = MakeBackendFlags({.backend = "hip"});
  EXPECT_TRUE(none.device_flags.empty());
  EXPECT_FALSE(none.env.count("PYTORCH_ROCM_ARCH"));
}

TEST_F(BackendRoots, HipKittensGetsItsIncludeStdAndCdnaDefine) {
  BackendFlags b = MakeBackendFlags({.backend = "hipkittens", .gfx_arch = "gfx942", .hk_root = dir_ / "hk"});
  EXPECT_TRUE(b.not_configured.empty()) << b.not_configured;
  EXPECT_EQ(b.device_flags, (std::vector<std::string>{"-std=c++20", "--offload-arch=gfx942"}));
  EXPECT_EQ(b.defines, (std::vector<std::string>{"KITTENS_CDNA3"}));
  EXPECT_EQ(b.include_dirs, (std::vector<fs::path>{dir_ / "hk/include"}));
  EXPECT_EQ(b.env.at("HIPKITTENS_ROOT"), (dir_ / "hk").string());
  EXPECT_EQ(b.env.at("PYTORCH_ROCM_ARCH"), "gfx942");
  EXPECT_TRUE(b.ldflags.empty());

  auto define = [&](const std::string& gfx) {
    return MakeBackendFlags({.backend = "hipkittens", .gfx_arch = gfx, .hk_root = dir_ / "hk"}).defines.at(0);
  };
  EXPECT_EQ(define("gfx90a"), "KITTENS_CDNA2");
  EXPECT_EQ(define("gfx950"), "KITTENS_CDNA4");
  // No GPU seen: HipKittens' CDNA3 target (MI300X / MI325X).
  BackendFlags none = MakeBackendFlags({.backend = "hipkittens", .hk_root = dir_ / "hk"});
  EXPECT_TRUE(Has(none.device_flags, "--offload-arch=gfx942"));
  EXPECT_EQ(none.defines.at(0), "KITTENS_CDNA3");
}

TEST(Backend, AutoDetectionFollowsTorchsBuild) {
  EXPECT_EQ(ResolveBackend("auto", ""), "cuda");
  EXPECT_EQ(ResolveBackend("", ""), "cuda");
  EXPECT_EQ(ResolveBackend("auto", "6.2.41133"), "hip");
  EXPECT_EQ(ResolveBackend("thunderkittens", "6.2"), "thunderkittens");  // named wins
  EXPECT_EQ(ResolveBackend("hipkittens", ""), "hipkittens");
  for (const char* n : {"cuda", "thunderkittens", "hip", "hipkittens"}) EXPECT_TRUE(IsBackendName(n)) << n;
  EXPECT_FALSE(IsBackendName("auto"));
  EXPECT_FALSE(IsBackendName("triton"));
}

TEST_F(BackendRoots, DiscoveryReadsFlagsThenEnvironmentThenTorch) {
  EvalOptions o;
  o.backend = "auto";
  PythonEnv rocm;
  rocm.hip_version = "6.2";
  rocm.gfx_arch = "gfx942";
  BackendFacts f = DiscoverBackendFacts(o, rocm, {{"HIPKITTENS_ROOT", (dir_ / "hk").string()}});
  EXPECT_EQ(f.backend, "hip");
  EXPECT_EQ(f.gfx_arch, "gfx942");
  EXPECT_EQ(f.hk_root, dir_ / "hk");
  EXPECT_TRUE(f.tk_root.empty());
  // The user's arch list wins over the GPU's, as in torch.
  EXPECT_EQ(DiscoverBackendFacts(o, rocm, {{"PYTORCH_ROCM_ARCH", "gfx90a"}}).gfx_arch, "gfx90a");

  PythonEnv h100;
  h100.arch_list = "9.0a";
  o.backend = "thunderkittens";
  o.tk_root = dir_ / "tk";
  f = DiscoverBackendFacts(o, h100, {{"THUNDERKITTENS_ROOT", "/elsewhere"}, {"CUDA_HOME", (dir_ / "cuda").string()}});
  EXPECT_EQ(f.tk_root, dir_ / "tk");  // --tk-root wins over the environment
  EXPECT_EQ(f.cuda_arch, "9.0a");
  EXPECT_TRUE(f.cuda_stubs_dir.empty());  // no lib64/stubs/libcuda.so there
  fs::create_directories(dir_ / "cuda/lib64/stubs");
  WriteFileAtomic(dir_ / "cuda/lib64/stubs/libcuda.so", "");
  f = DiscoverBackendFacts(o, h100, {{"CUDA_HOME", (dir_ / "cuda").string()}, {"TORCH_CUDA_ARCH_LIST", "10.0a"}});
  EXPECT_EQ(f.cuda_stubs_dir, dir_ / "cuda/lib64/stubs");
  EXPECT_EQ(f.cuda_arch, "10.0a");

  // A relative root becomes absolute: the worker runs in another directory.
  o.tk_root = "rel/tk";
  EXPECT_TRUE(DiscoverBackendFacts(o, h100, {}).tk_root.is_absolute());
  o.tk_root.clear();
  EXPECT_EQ(DiscoverBackendFacts(o, h100, {{"THUNDERKITTENS_ROOT", (dir_ / "tk").string()}}).tk_root, dir_ / "tk");
}

TEST(Backend, KittensIncludesAreRecognised) {
  EXPECT_TRUE(IncludesKittens("#include \"kittens.cuh\"\n"));
  EXPECT_TRUE(IncludesKittens("x\n#  include <kittens.cuh>\n"));
  EXPECT_TRUE(IncludesKittens("#include \"include/kittens.cuh\""));
  EXPECT_FALSE(IncludesKittens("#include \"mykittens.cuh\""));
  EXPECT_FALSE(IncludesKittens("// uses kittens.cuh later\n#include <cuda_runtime.h>"));
}

TEST_F(BackendRoots, CandidatesNeedingAnUnconfiguredLibraryAreRefused) {
  const std::string tk_code = "src = '''\n#include \"kittens.cuh\"\n'''\n";
  const std::string plain_code = "src = '''\n#include <cuda_runtime.h>\n'''\n";
  BackendFacts cuda{.backend = "cuda", .cuda_arch = "9.0a"};
  auto err = NotConfiguredError(MakeBackendFlags(cuda), cuda, tk_code);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("--tk-root"), std::string::npos) << *err;
  EXPECT_NE(err->find("--backend thunderkittens"), std::string::npos) << *err;
  EXPECT_FALSE(NotConfiguredError(MakeBackendFlags(cuda), cuda, plain_code));
  // With the root known, a cuda-backend candidate may find TK through THUNDERKITTENS_ROOT.
  cuda.tk_root = dir_ / "tk";
  EXPECT_FALSE(NotConfiguredError(MakeBackendFlags(cuda), cuda, tk_code));

  BackendFacts hip{.backend = "hip", .gfx_arch = "gfx942"};
  err = NotConfiguredError(MakeBackendFlags(hip), hip, tk_code);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("--hk-root"), std::string::npos) << *err;

  // A kittens backend without its root refuses every candidate: nothing it builds can work as asked.
  BackendFacts tk{.backend = "thunderkittens", .cuda_arch = "9.0a"};
  EXPECT_TRUE(NotConfiguredError(MakeBackendFlags(tk), tk, plain_code));
  tk.tk_root = dir_ / "tk";
  EXPECT_FALSE(NotConfiguredError(MakeBackendFlags(tk), tk, tk_code));
}

// Debian's hipcc (ROCm 5.2, clang 15) knows gfx90a but not gfx942, so CI compiles for gfx90a.
fs::path Hipcc() {
  for (fs::path p : {fs::path("/opt/rocm/bin/hipcc"), fs::path("/usr/bin/hipcc")}) {
    if (fs::exists(p)) return p;
  }
  return {};
}

// The kernels of the HIP prompts' examples (the part before the torch glue), compiled with
// the hip and hipkittens backends' device flags and defines. HipKittens' own headers need a
// newer ROCm (hip_bf16.h) than Debian's, so its include path is not exercised here.
TEST(Backend, HipPromptKernelsCompileWithTheBackendsFlags) {
  fs::path hipcc = Hipcc();
  if (hipcc.empty()) GTEST_SKIP() << "no hipcc (scripts/install-deps.sh installs Debian's)";
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-hip-examples-");
  fs::path prompts = fs::path(KBRUN_SOURCE_DIR) / "prompts/hip";
  int compiled = 0;
  for (const char* name : {"generic_hip.txt", "elementwise_bf16_hip.txt"}) {
    std::string text = ReadFileOrThrow(prompts / name);
    const std::string open = "hip_source = r\"\"\"\n";
    size_t a = text.find(open);
    ASSERT_NE(a, std::string::npos) << name;
    size_t b = text.find("\ntorch::Tensor", a);  // the torch glue starts here
    ASSERT_NE(b, std::string::npos) << name;
    std::string kernels;
    for (const auto& line : SplitLines(text.substr(a + open.size(), b - a - open.size()))) {
      if (line.find("#include") == std::string::npos) kernels += line + "\n";  // torch's headers need ROCm torch
    }
    ASSERT_NE(kernels.find("__global__"), std::string::npos) << name;
    WriteFileAtomic(dir / "k.hip", "#include <hip/hip_runtime.h>\n#include <cstdint>\n" + kernels);
    for (const char* backend : {"hip", "hipkittens"}) {
      BackendFlags f = MakeBackendFlags({.backend = backend, .gfx_arch = "gfx90a", .hk_root = dir});
      ProcessSpec spec;
      spec.argv = {hipcc.string()};
      for (const auto& flag : f.ToRequest()["cuda_cflags"]) spec.argv.push_back(flag.get<std::string>());
      spec.argv.insert(spec.argv.end(), {"-O3", "-c", (dir / "k.hip").string(), "-o", (dir / "k.o").string()});
      spec.env = CurrentEnvironment();
      spec.timeout_s = 300;
      ProcessResult p = RunProcess(spec);
      EXPECT_EQ(p.exit_code, 0) << name << " " << backend << ": " << p.output;
      EXPECT_TRUE(fs::exists(dir / "k.o"));
      fs::remove(dir / "k.o");
      ++compiled;
    }
  }
  EXPECT_EQ(compiled, 4);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kbrun::eval
