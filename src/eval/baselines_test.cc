// --baseline through the real kbrun eval on the CPU (Debian's torch 1.13, docs/EVALUATION.md
// "Baselines"): what cannot run here is recorded as unavailable with its reason, a candidate that
// is not timed leaves them skipped, and none of it changes the verdict. The measured path runs with
// a stand-in torch.compile (tests/worker/standin_compile/sitecustomize.py, on PYTHONPATH): the
// checker times it after the worker has ended, with the candidate's number of calls.
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/subprocess.h"

namespace kbrun {
namespace {

using nlohmann::json;

struct EvalOut {
  int exit_code = -1;
  std::string output;
  json result;
};

const std::vector<std::string> kAllBaselines = {"--baseline", "eager",      "--baseline",
                                                "compile",    "--baseline", "cudagraph"};

// kbrun eval of tests/candidates/<candidate>.py on 1_ScaleAdd (CPU, 10 timed calls, library
// kernels allowed: these are about the baselines), with `extra` flags; `standin` sets the
// stand-in torch.compile's mode (empty: none).
EvalOut Eval(const std::string& candidate, std::vector<std::string> extra, const std::string& standin = "") {
  static int n = 0;
  fs::path out = fs::temp_directory_path() /
                 ("kbrun-baselines-test-" + std::to_string(getpid()) + "-" + std::to_string(++n) + ".json");
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY,
               "eval",
               "--code",
               std::string(KBRUN_TEST_DATA_DIR) + "/candidates/" + candidate + ".py",
               "--problem",
               std::string(KBRUN_TEST_DATA_DIR) + "/problems/1_ScaleAdd.py",
               "--device",
               "cpu",
               "--perf-trials",
               "10",
               "--warmup",
               "3",
               "--allow-library-kernels",
               "--output",
               out.string()};
  spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
  spec.env = CurrentEnvironment();
  if (!standin.empty()) {
    spec.env["PYTHONPATH"] = std::string(KBRUN_TEST_DATA_DIR) + "/worker/standin_compile";
    spec.env["KBRUN_TEST_COMPILE_STANDIN"] = standin;
    spec.env["KBRUN_PASS_ENV"] = "KBRUN_TEST_COMPILE_STANDIN";
  }
  spec.timeout_s = 600;
  ProcessResult p = RunProcess(spec);
  EvalOut r{p.exit_code, p.output, nullptr};
  if (auto text = ReadFile(out)) r.result = json::parse(*text);
  fs::remove(out);
  return r;
}

TEST(Baselines, WhatCannotRunHereIsUnavailableWithItsReason) {
  EvalOut r = Eval("honest_torch_add", kAllBaselines);
  ASSERT_TRUE(r.result.is_object()) << r.output;
  ASSERT_EQ(r.result["status"], "correct") << r.output;
  const json& b = r.result["baselines"];
  ASSERT_EQ(b.size(), 3u) << b.dump(2);
  // eager is the main measurement: the verdict's speedup and the reference's median.
  EXPECT_EQ(b["eager"]["status"], "measured");
  EXPECT_DOUBLE_EQ(b["eager"]["speedup"].get<double>(), r.result["speedup"].get<double>());
  EXPECT_DOUBLE_EQ(b["eager"]["median_ms"].get<double>(), r.result["timing"]["reference"]["median_ms"].get<double>());
  EXPECT_EQ(b["compile"]["status"], "unavailable") << b.dump(2);
  EXPECT_EQ(b["compile"]["reason"], "torch " + r.result["env"]["torch_version"].get<std::string>() +
                                        " has no torch.compile (it came with torch 2.0)")
      << b.dump(2);
  EXPECT_EQ(b["cudagraph"]["status"], "unavailable");
  EXPECT_EQ(b["cudagraph"]["reason"], "CUDA graphs need a GPU; this run is on the CPU");
  EXPECT_FALSE(b["compile"].contains("speedup"));
  // The verdict is the one without baselines: exit code from the eager speedup.
  EXPECT_EQ(r.exit_code, r.result["speedup"].get<double>() >= 1.0 ? 0 : 1);
}

TEST(Baselines, DefaultIsEagerAlone) {
  EvalOut r = Eval("honest_torch_add", {});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["baselines"].size(), 1u) << r.result["baselines"].dump();
  EXPECT_EQ(r.result["baselines"]["eager"]["status"], "measured");
}

TEST(Baselines, ACandidateThatIsNotTimedLeavesThemSkipped) {
  EvalOut wrong = Eval("wrong", kAllBaselines);
  ASSERT_TRUE(wrong.result.is_object()) << wrong.output;
  ASSERT_EQ(wrong.result["status"], "incorrect");
  for (const char* name : {"eager", "compile", "cudagraph"}) {
    const json& b = wrong.result["baselines"][name];
    EXPECT_EQ(b["status"], "skipped") << name << " " << b.dump();
    EXPECT_NE(b["reason"].get<std::string>().find("(incorrect/value_mismatch)"), std::string::npos) << b.dump();
  }
  EvalOut broken = Eval("compile_error_cpp", kAllBaselines);
  ASSERT_TRUE(broken.result.is_object()) << broken.output;
  ASSERT_EQ(broken.result["status"], "compile_error");
  EXPECT_EQ(broken.result["baselines"]["compile"]["reason"], "no run phase (compile_error/build_failed)")
      << broken.result["baselines"].dump();
}

// The measured path, with torch.compile standing in as the model itself: timed by the checker
// after the worker ended, as many timed calls as the candidate's, the first and last outputs
// checked, the speedups from the medians.
TEST(Baselines, ACompileStandInIsTimedLikeTheReference) {
  EvalOut r = Eval("honest_torch_add", {"--baseline", "compile"}, "identity");
  ASSERT_TRUE(r.result.is_object()) << r.output;
  ASSERT_EQ(r.result["status"], "correct") << r.output;
  const json& c = r.result["baselines"]["compile"];
  ASSERT_EQ(c["status"], "measured") << c.dump(2);
  EXPECT_EQ(c["trials"], 10);
  EXPECT_EQ(c["method"], "wall_clock_cache_flush");
  EXPECT_EQ(c["checked_calls"], 2);
  EXPECT_GE(c["compile_s"].get<double>(), 0.0);
  double candidate = r.result["timing"]["candidate"]["median_ms"].get<double>();
  double eager = r.result["timing"]["reference"]["median_ms"].get<double>();
  double median = c["median_ms"].get<double>();
  EXPECT_DOUBLE_EQ(c["speedup"].get<double>(), median / candidate);
  EXPECT_DOUBLE_EQ(c["speedup_over_eager"].get<double>(), eager / median);
  EXPECT_FALSE(r.result["baselines"].contains("cudagraph"));
  // The main measurement is as it always is: every timed call checked, the reference timed as often.
  EXPECT_EQ(r.result["correctness"]["checker"]["checks"]["timed"]["passed"], 10);
  EXPECT_EQ(r.result["timing"]["reference"]["trials"], 10);
}

TEST(Baselines, ACompiledReferenceThatComputesSomethingElseIsUnavailable) {
  EvalOut r = Eval("honest_torch_add", {"--baseline", "compile"}, "wrong");
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.output;
  const json& c = r.result["baselines"]["compile"];
  EXPECT_EQ(c["status"], "unavailable") << c.dump(2);
  EXPECT_NE(c["reason"].get<std::string>().find("differs from the eager reference's in warm-up call 0"),
            std::string::npos)
      << c.dump(2);
}

// A compile that never returns is stopped at the baselines' deadline (--run-timeout, from the
// worker's end); the verdict and its figures are the checker's, sent before.
TEST(Baselines, ACompileThatHangsIsStoppedAtTheBaselinesDeadline) {
  EvalOut r = Eval("honest_torch_add", {"--baseline", "compile", "--run-timeout", "15"}, "hang");
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.output;
  const json& c = r.result["baselines"]["compile"];
  EXPECT_EQ(c["status"], "unavailable") << c.dump(2);
  EXPECT_EQ(c["reason"],
            "the checker ended in stage 'baseline compile': it was stopped at the baselines' deadline (--run-timeout, "
            "15 s)")
      << c.dump(2);
  EXPECT_EQ(r.result["correctness"]["checker"]["checks"]["timed"]["passed"], 10);
}

}  // namespace
}  // namespace kbrun
