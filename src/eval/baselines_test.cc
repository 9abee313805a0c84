// --baseline through the real kbrun eval on the CPU (Debian's torch 1.13, docs/EVALUATION.md
// "Baselines"): what cannot run here is recorded as unavailable with its reason, a candidate that
// is not timed leaves them skipped, and none of it changes the verdict. The measured path runs with
// a stand-in torch.compile (tests/worker/standin_compile/sitecustomize.py, on PYTHONPATH): the
// checker times it after the worker has ended, with the candidate's number of calls.
#include <gtest/gtest.h>

#include "eval/eval_test_util.h"

namespace kbrun {
namespace {

using nlohmann::json;

const std::vector<std::string> kAllBaselines = {"--baseline", "eager",      "--baseline",
                                                "compile",    "--baseline", "cudagraph"};

// kbrun eval of tests/candidates/<candidate>.py on 1_ScaleAdd (CPU, 10 timed calls, library
// kernels allowed: these are about the baselines), with `extra` flags; `standin` sets the
// stand-in torch.compile's mode (empty: none).
EvalRun Eval(const std::string& candidate, std::vector<std::string> extra, const std::string& standin = "") {
  EvalCall call{.code = TestFixture("candidates", candidate),
                .flags = {"--perf-trials", "10", "--warmup", "3", "--allow-library-kernels"},
                .extra = std::move(extra)};
  if (!standin.empty()) {
    call.env_set = {{"PYTHONPATH", std::string(KBRUN_TEST_DATA_DIR) + "/worker/standin_compile"},
                    {"KBRUN_TEST_COMPILE_STANDIN", standin},
                    {"KBRUN_PASS_ENV", "KBRUN_TEST_COMPILE_STANDIN"}};
  }
  return RunEvalCall(call);
}

TEST(Baselines, WhatCannotRunHereIsUnavailableWithItsReason) {
  EvalRun r = Eval("honest_torch_add", kAllBaselines);
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
  EvalRun r = Eval("honest_torch_add", {});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["baselines"].size(), 1u) << r.result["baselines"].dump();
  EXPECT_EQ(r.result["baselines"]["eager"]["status"], "measured");
}

TEST(Baselines, ACandidateThatIsNotTimedLeavesThemSkipped) {
  EvalRun wrong = Eval("wrong", kAllBaselines);
  ASSERT_TRUE(wrong.result.is_object()) << wrong.output;
  ASSERT_EQ(wrong.result["status"], "incorrect");
  for (const char* name : {"eager", "compile", "cudagraph"}) {
    const json& b = wrong.result["baselines"][name];
    EXPECT_EQ(b["status"], "skipped") << name << " " << b.dump();
    EXPECT_NE(b["reason"].get<std::string>().find("(incorrect/value_mismatch)"), std::string::npos) << b.dump();
  }
  EvalRun broken = Eval("compile_error_cpp", kAllBaselines);
  ASSERT_TRUE(broken.result.is_object()) << broken.output;
  ASSERT_EQ(broken.result["status"], "compile_error");
  EXPECT_EQ(broken.result["baselines"]["compile"]["reason"], "no run phase (compile_error/build_failed)")
      << broken.result["baselines"].dump();
}

// The measured path, with torch.compile standing in as the model itself: timed by the checker
// after the worker ended, as many timed calls as the candidate's, the first and last outputs
// checked, the speedups from the medians.
TEST(Baselines, ACompileStandInIsTimedLikeTheReference) {
  EvalRun r = Eval("honest_torch_add", {"--baseline", "compile"}, "identity");
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
  EvalRun r = Eval("honest_torch_add", {"--baseline", "compile"}, "wrong");
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
  EvalRun r = Eval("honest_torch_add", {"--baseline", "compile", "--run-timeout", "15"}, "hang");
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
