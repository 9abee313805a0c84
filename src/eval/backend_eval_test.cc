// The backends through the real binary on the CPU: a candidate that needs ThunderKittens
// when it is not configured is refused before compiling, and kbrun's backend flags reach
// every load_inline build in both compile modes and change the compile cache's key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval/eval_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using nlohmann::json;

const fs::path kData = KBRUN_TEST_DATA_DIR;

// A correct CPU extension for tests/problems/1_ScaleAdd.py, unless the backend's include
// path holds kb_backend_marker.h: then KB_ONE comes from there.
std::string Candidate(const std::string& header) { return ScaleAddCandidate("backend_test_ext", header); }

using Eval = BuildEval;

class BackendEval : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeUniqueDir(fs::temp_directory_path(), "kbrun-backend-eval-"); }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& text) {
    fs::create_directories((dir_ / name).parent_path());
    WriteFileAtomic(dir_ / name, text);
    return dir_ / name;
  }

  // The roots must come from the flags of each test, never from the machine.
  Eval Run(const fs::path& code, std::vector<std::string> extra) {
    return RunBuildEval(dir_, code, extra, {}, {"THUNDERKITTENS_ROOT", "HIPKITTENS_ROOT"});
  }

  size_t ExtEntries() {
    size_t n = 0;
    if (!fs::exists(dir_ / "cache/ext")) return 0;
    for (const auto& e : fs::directory_iterator(dir_ / "cache/ext")) n += e.is_directory() ? 1 : 0;
    return n;
  }

  fs::path dir_;
};

TEST_F(BackendEval, KittensCandidateWithoutTheLibraryIsRefusedBeforeCompiling) {
  fs::path code = Write("tk.py", Candidate("#include \"kittens.cuh\"\n#define KB_ONE 1.0f"));
  for (const char* backend : {"thunderkittens", "cuda"}) {
    Eval e = Run(code, {"--backend", backend});
    EXPECT_EQ(e.process.exit_code, 2) << e.process.output;
    EXPECT_EQ(e.status(), "compile_error") << e.process.output;
    EXPECT_EQ(e.category(), "backend_not_configured") << e.process.output;
    std::string message = e.result["error"].value("message", "");
    EXPECT_NE(message.find("--tk-root"), std::string::npos) << message;
    EXPECT_NE(message.find("THUNDERKITTENS_ROOT"), std::string::npos) << message;
    EXPECT_EQ(e.result["backend"], backend);
    // Decided before a worker or compiler started.
    EXPECT_EQ(e.result["stages"]["compile_s"], 0.0);
    EXPECT_LT(e.process.wall_s, 30) << backend;
  }
  // A root without include/kittens.cuh is not a root.
  fs::create_directories(dir_ / "empty");
  Eval e = Run(code, {"--backend", "thunderkittens", "--tk-root", (dir_ / "empty").string()});
  EXPECT_EQ(e.category(), "backend_not_configured") << e.process.output;
  EXPECT_NE(e.result["error"].value("message", "").find((dir_ / "empty").string()), std::string::npos);
}

// The hipkittens backend's include path holds a header that changes KB_ONE: a candidate
// that finds it was built with kbrun's flags (on the CPU only the include path matters).
TEST_F(BackendEval, FlagsReachEveryBuildInBothModesAndChangeTheCacheKey) {
  Write("hk/include/kittens.cuh", "#pragma once\n");
  Write("hk/include/kb_backend_marker.h", "#define KB_ONE 2.0f\n");
  fs::path code = Write("c.py", Candidate("#if __has_include(\"kb_backend_marker.h\")\n"
                                          "#include \"kb_backend_marker.h\"\n"
                                          "#else\n#define KB_ONE 1.0f\n#endif"));
  const std::vector<std::string> hk = {"--backend", "hipkittens", "--hk-root", (dir_ / "hk").string()};

  Eval plain_backend = Run(code, {"--backend", "cuda", "--no-pch"});
  ASSERT_EQ(plain_backend.status(), "correct") << plain_backend.process.output;
  EXPECT_EQ(plain_backend.cache(), "miss");

  Eval with_flags = Run(code, [&] {
    auto v = hk;
    v.push_back("--no-pch");
    return v;
  }());
  EXPECT_EQ(with_flags.status(), "incorrect")
      << "the backend's include path was not used: " << with_flags.process.output;
  EXPECT_EQ(with_flags.cache(), "miss");  // same sources, other flags: another key
  EXPECT_EQ(with_flags.result["backend"], "hipkittens");
  EXPECT_EQ(ExtEntries(), 2u);

  Eval again = Run(code, [&] {
    auto v = hk;
    v.push_back("--no-pch");
    return v;
  }());
  EXPECT_EQ(again.cache(), "hit");  // the key is stable
  EXPECT_EQ(again.status(), "incorrect");

  // torch's own build (--compile-mode plain) gets them too.
  Eval plain_mode = Run(code, [&] {
    auto v = hk;
    v.insert(v.end(), {"--compile-mode", "plain"});
    return v;
  }());
  EXPECT_EQ(plain_mode.status(), "incorrect")
      << "plain mode built without the backend's flags: " << plain_mode.process.output;
  EXPECT_TRUE(plain_mode.result["build"]["extensions"].empty());
}

// A batch for a kittens backend without its library stops before any LLM call.
TEST_F(BackendEval, BatchWithoutTheLibraryStopsBeforeAnyWork) {
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY,
               "batch",
               "4",
               "4",
               "--problems-dir",
               (kData / "batch/problems").string(),
               "--results",
               (dir_ / "results").string(),
               "--provider",
               "openai",
               "--base-url",
               "http://127.0.0.1:9/v1",
               "--model",
               "fake-model",
               "--device",
               "cpu",
               "--backend",
               "thunderkittens"};
  spec.env = CurrentEnvironment();
  spec.env.erase("THUNDERKITTENS_ROOT");
  spec.env["LLM_GATEWAY_KEY"] = "test-key";
  spec.timeout_s = 120;
  ProcessResult p = RunProcess(spec);
  EXPECT_EQ(p.exit_code, 78) << p.output;
  EXPECT_TRUE(Contains(p.output, "--tk-root")) << p.output;
  EXPECT_FALSE(fs::exists(dir_ / "results"));
}

}  // namespace
}  // namespace kbrun
