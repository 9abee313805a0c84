// kbrun's build step (worker/kbrun_eval/build.py) through the real binary on the CPU: the
// content-addressed cache (hit, miss, invalidation by flags, toolchain and headers,
// concurrent writers), the precompiled header, the lighter binding header (torch/python.h
// for main.cpp, with the fallback to the file as written) and the lighter CUDA headers.
#include <gtest/gtest.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "eval/eval_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using nlohmann::json;

const fs::path kData = KBRUN_TEST_DATA_DIR;

// A correct C++ extension for tests/problems/1_ScaleAdd.py; `marker` changes the source
// (and so the cache key) without changing what it computes.
std::string Candidate(const std::string& marker, const std::string& cflags = "", const fs::path& include_dir = {}) {
  std::string include = include_dir.empty() ? "#define KB_ONE 1.0f" : "#include \"kb_dep.h\"";
  std::string paths = include_dir.empty() ? "" : ", extra_include_paths=[\"" + include_dir.string() + "\"]";
  std::string flags = cflags.empty() ? "" : ", extra_cflags=[\"" + cflags + "\"]";
  return ScaleAddCandidate("cache_test_ext", "// " + marker + "\n" + include, flags + paths);
}

using Eval = BuildEval;

class CompileCache : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-cache-test-"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& text) {
    WriteFileAtomic(dir_ / name, text);
    return dir_ / name;
  }

  Eval Run(const fs::path& code, const std::vector<std::string>& extra = {},
           const std::map<std::string, std::string>& env_extra = {}) {
    return RunBuildEval(dir_, code, extra, env_extra);
  }

  std::vector<fs::path> Entries(const std::string& sub) {
    std::vector<fs::path> out;
    if (!fs::exists(dir_ / "cache" / sub)) return out;
    for (const auto& e : fs::directory_iterator(dir_ / "cache" / sub)) {
      if (e.is_directory()) out.push_back(e.path());
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(CompileCache, HitSkipsTheBuildAndThePrecompiledHeaderIsReused) {
  fs::path one = Write("one.py", Candidate("one"));
  Eval first = Run(one);
  ASSERT_EQ(first.result["status"], "correct") << first.process.output;
  EXPECT_EQ(first.cache(), "miss");
  EXPECT_EQ(first.result["build"]["extensions"][0]["pch"], "built");
  EXPECT_EQ(first.result["build"]["extensions"][0]["binding_header"], "torch_python_only");
  EXPECT_FALSE(first.result["build"]["extensions"][0].contains("fallback"));

  Eval again = Run(one);
  ASSERT_EQ(again.result["status"], "correct") << again.process.output;
  EXPECT_EQ(again.cache(), "hit");
  EXPECT_LT(again.compile_s(), first.compile_s() / 5) << first.compile_s() << " then " << again.compile_s();

  // New source, same flags: a miss that uses the header built above.
  Eval two = Run(Write("two.py", Candidate("two")));
  ASSERT_EQ(two.result["status"], "correct") << two.process.output;
  EXPECT_EQ(two.cache(), "miss");
  EXPECT_EQ(two.result["build"]["extensions"][0]["pch"], "used");
  // Where the build's time went: ninja's steps (main.o compiled, then the library linked)
  // fit inside ninja's wall time, which fits inside the build step's.
  const auto& ext = two.result["build"]["extensions"][0];
  ASSERT_TRUE(ext.contains("ninja_steps")) << ext.dump();
  std::vector<std::string> outputs;
  double last_end = 0;
  for (const auto& step : ext["ninja_steps"]) {
    outputs.push_back(step[0].get<std::string>());
    EXPECT_LE(step[1].get<double>(), step[2].get<double>()) << step.dump();
    last_end = std::max(last_end, step[2].get<double>());
  }
  EXPECT_EQ(outputs, (std::vector<std::string>{"main.o", "cache_test_ext.so"})) << ext.dump();
  EXPECT_GT(ext["ninja_steps"][0][2].get<double>(), 0.5) << "a torch binding file compiles in well over 0.5 s";
  EXPECT_LE(last_end, ext["ninja_s"].get<double>() + 0.05);
  EXPECT_LE(ext["ninja_s"].get<double>(), ext["seconds"].get<double>());
  EXPECT_LE(ext["key_s"].get<double>() + ext["ninja_s"].get<double>(), ext["seconds"].get<double>() + 0.01);

  EXPECT_EQ(Entries("ext").size(), 2u);
  EXPECT_EQ(Entries("pch").size(), 1u);
  for (const char* sub : {"ext", "pch"}) {
    for (const auto& e : Entries(sub)) EXPECT_FALSE(StartsWith(e.filename().string(), ".tmp-")) << e;
  }
}

TEST_F(CompileCache, FlagsToolchainAndHeadersInvalidate) {
  fs::path inc = dir_ / "inc";
  fs::create_directories(inc);
  WriteFileAtomic(inc / "kb_dep.h", "#define KB_ONE 1.0f\n");
  fs::path base = Write("base.py", Candidate("base", "", inc));
  ASSERT_EQ(Run(base, {"--no-pch"}).cache(), "miss");
  ASSERT_EQ(Run(base, {"--no-pch"}).cache(), "hit");

  // Other flags: another build.
  Eval flags = Run(Write("flags.py", Candidate("base", "-O1", inc)), {"--no-pch"});
  EXPECT_EQ(flags.result["status"], "correct") << flags.process.output;
  EXPECT_EQ(flags.cache(), "miss");

  // Another compiler (a wrapper is another path and identity): another build, then its own hit.
  fs::path wrapper = Write("my-c++", "#!/bin/sh\nexec g++ \"$@\"\n");
  fs::permissions(wrapper, fs::perms::owner_all);
  Eval tool = Run(base, {"--no-pch"}, {{"CXX", wrapper.string()}});
  EXPECT_EQ(tool.result["status"], "correct") << tool.process.output;
  EXPECT_EQ(tool.cache(), "miss");
  EXPECT_EQ(Run(base, {"--no-pch"}, {{"CXX", wrapper.string()}}).cache(), "hit");

  // A header the build read changed: the entry is stale and rebuilt, and the new header counts.
  WriteFileAtomic(inc / "kb_dep.h", "#define KB_ONE 2.0f\n");
  Eval stale = Run(base, {"--no-pch"});
  EXPECT_EQ(stale.cache(), "stale");
  EXPECT_EQ(stale.result["status"], "incorrect") << "the old build was used: " << stale.process.output;
}

TEST_F(CompileCache, ConcurrentBuildsOfOneSourceLeaveOneEntry) {
  fs::path code = Write("same.py", Candidate("concurrent"));
  Eval a, b;
  std::thread ta([&] { a = Run(code, {"--no-pch"}); });
  std::thread tb([&] { b = Run(code, {"--no-pch"}); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.result["status"], "correct") << a.process.output;
  EXPECT_EQ(b.result["status"], "correct") << b.process.output;
  auto entries = Entries("ext");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_FALSE(StartsWith(entries[0].filename().string(), ".tmp-"));
  EXPECT_EQ(Run(code, {"--no-pch"}).cache(), "hit");
}

TEST_F(CompileCache, PlainModeIsTorchsOwnBuild) {
  Eval plain = Run(Write("plain.py", Candidate("plain")), {"--compile-mode", "plain"});
  EXPECT_EQ(plain.result["status"], "correct") << plain.process.output;
  EXPECT_EQ(plain.result["build"]["mode"], "plain");
  EXPECT_TRUE(plain.result["build"]["extensions"].empty());
  EXPECT_TRUE(Entries("ext").empty());
}

// main.cpp with torch/python.h in place of torch/extension.h means what torch's own build
// means: __FILE__ and __LINE__ (the candidate checks them) are those of torch's main.cpp, in
// both builds. Code that needs more than torch/python.h and slips past the name check is
// built again as written, and is correct.
TEST_F(CompileCache, LighterBindingHeaderKeepsMeaningAndFallsBack) {
  // main.cpp: line 1 is torch's include, line 2 the empty first line of `src`, then this.
  const std::string where =
      "// where\n"
      "static bool kb_where() { std::string f = __FILE__; return __LINE__ == 4 && f.size() > 9 && "
      "f.substr(f.size() - 9) == \"/main.cpp\"; }\n"
      "#define KB_ONE (kb_where() ? 1.0f : 2.0f)";
  fs::path code = Write("where.py", ScaleAddCandidate("cache_test_ext", where));
  Eval plain = Run(code, {"--compile-mode", "plain"});
  ASSERT_EQ(plain.result["status"], "correct") << "the test's own line arithmetic: " << plain.process.output;
  Eval fast = Run(code);
  EXPECT_EQ(fast.result["status"], "correct") << fast.process.output;
  const json& ext = fast.result["build"]["extensions"].at(0);
  EXPECT_EQ(ext["binding_header"], "torch_python_only");
  EXPECT_FALSE(ext.contains("fallback")) << ext.dump();

  // torch::kSum comes with torch/extension.h (torch/enum.h), not with torch/python.h.
  const std::string enum_user =
      "#define KB_ONE 1.0f\n"
      "using kb_reduction = decltype(torch::kSum);";
  Eval fallback = Run(Write("enum.py", ScaleAddCandidate("cache_test_ext", enum_user)), {"--no-pch"});
  EXPECT_EQ(fallback.result["status"], "correct") << fallback.process.output;
  const json& fb = fallback.result["build"]["extensions"].at(0);
  EXPECT_EQ(fb["binding_header"], "torch_python_only");
  ASSERT_TRUE(fb.contains("fallback")) << fb.dump();
  EXPECT_TRUE(Contains(fb["fallback"].get<std::string>(), "built again as written (main.o)")) << fb.dump();
}

// The header lightening's cases (lighten_binding, lighten_cuda) and the plan that decides, before
// compiling, which torch header a CUDA file gets (plan_cuda_headers) are pytest tests of the build
// module: tests/worker/test_build_lighten.py, tests/worker/test_build_plan.py.

// Mono-layout candidates (torch/extension.h inside cuda_sources) through kbrun on the CPU: one whose
// host code torch/types.h suits, one that binds its module with PYBIND11_MODULE in the CUDA file.
// kbrun_eval/cuda_split.py splits both: a kernel file without torch headers (nvcc) and a host file
// (g++), linked together with the template kernel's instantiations; the extension loads and its
// verdict is correct. Each file is compiled exactly once (one ninja run, no fallback), and the path
// taken and its reason are in result.json.
// Debian's CPU torch has no CUDA libraries for torch's link line: empty stand-ins take their place
// (the extension's host code computes on the CPU, so it runs). nvcc parses torch's headers here:
// minutes on a loaded 2-core machine (docs/PERFORMANCE.md), hence one test per fixture and a long limit.
class MonoLayout : public CompileCache {
 protected:
  void Check(const std::string& file, const std::string& mode, const std::string& reason) {
    fs::path nvcc = "/usr/local/cuda/bin/nvcc";
    if (const char* home = std::getenv("CUDA_HOME"); home && *home) nvcc = fs::path(home) / "bin/nvcc";
    if (!fs::exists(nvcc)) GTEST_SKIP() << "no nvcc";
    fs::path stubs = dir_ / "stub-libs";
    fs::create_directories(stubs);
    for (const char* lib : {"c10_cuda", "torch_cuda"}) {
      ProcessSpec cc;
      cc.argv = {"cc", "-shared", "-x", "c", "/dev/null", "-o", (stubs / ("lib" + std::string(lib) + ".so")).string()};
      cc.env = CurrentEnvironment();
      ASSERT_EQ(RunProcess(cc).exit_code, 0);
    }
    std::string ld = stubs.string() + ":" + nvcc.parent_path().parent_path().string() + "/lib64";
    if (const char* old = std::getenv("LD_LIBRARY_PATH"); old && *old) ld += std::string(":") + old;
    std::vector<std::string> flags = kQuickEvalFlags;
    flags.insert(flags.end(), {"--compile-cache", (dir_ / "cache").string(), "--no-pch"});
    json result;
    ProcessResult p = RunKbrunEval({.code = kData / "candidates" / (file + ".py"),
                                    .flags = flags,
                                    .env_set = {{"TORCH_CUDA_ARCH_LIST", "8.0"},
                                                {"LIBRARY_PATH", stubs.string()},
                                                {"LD_LIBRARY_PATH", ld},
                                                {"KBRUN_PASS_ENV", "LIBRARY_PATH"}},
                                    .output = dir_ / "result.json",
                                    .timeout_s = 850},
                                   result);
    ASSERT_TRUE(result.is_object()) << p.output;
    ASSERT_EQ(result["status"], "correct") << file << ": " << p.output;
    const json& ext = result["build"]["extensions"].at(0);
    EXPECT_EQ(ext["cuda_headers"], json::array({mode})) << ext.dump();
    ASSERT_TRUE(ext["cuda_header_reasons"].is_array()) << ext.dump();
    EXPECT_TRUE(Contains(ext["cuda_header_reasons"][0].get<std::string>(), reason)) << ext.dump();
    EXPECT_EQ(ext["ninja_runs"], 1) << ext.dump();
    EXPECT_FALSE(ext.contains("fallback")) << ext.dump();
    int cuda_compiles = 0;
    for (const auto& step : ext["ninja_steps"]) {
      std::string output = step[0].get<std::string>();
      cuda_compiles += output.size() > 7 && output.substr(output.size() - 7) == ".cuda.o";
    }
    EXPECT_EQ(cuda_compiles, 1) << ext.dump();
    EXPECT_EQ(ext["path"], "light") << "main.cpp gets torch/python.h in both: " << ext.dump();
  }
};

TEST_F(MonoLayout, TypesOnlyCandidateIsSplitAndCompiledOnce) {
  Check("mono_layout_light", "split", "kernels without torch");
}

TEST_F(MonoLayout, PybindInCudaCandidateIsSplitAndCompiledOnce) {
  Check("mono_layout_pybind", "split", "kernels without torch");
}

}  // namespace
}  // namespace kbrun
