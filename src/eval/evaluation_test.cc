// Integration tests: the real kbrun binary evaluates real candidates on the CPU
// (Debian's torch), one per way a candidate can go wrong.
#include <linux/magic.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval/eval_test_util.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun {
namespace {

using nlohmann::json;

// The fixtures in tests/candidates are plain torch except correct_cpp: they test the
// pipeline, not the library-kernel check, so library kernels are allowed for them.
EvalRun RunEval(const std::string& candidate, std::vector<std::string> extra = {}) {
  extra.push_back("--allow-library-kernels");
  return RunEvalIn("candidates", candidate, extra);
}

TEST(EvalIntegration, CorrectCompiledExtension) {
  // Its own kernel: no allowance needed. No shared cache: a real build happens every time.
  auto r = RunEvalIn("candidates", "correct_cpp", {"--no-compile-cache"});
  EXPECT_FALSE(r.result["fallback"]["uses_library_only"].get<bool>());
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.output;
  EXPECT_TRUE(r.result["compiled"].get<bool>());
  EXPECT_EQ(r.result["correctness"]["trials_run"], 5);
  EXPECT_EQ(r.result["correctness"]["trials_passed"], 5);
  EXPECT_GT(r.result["speedup"].get<double>(), 0.0);
  EXPECT_EQ(r.result["timing"]["candidate"]["trials"], 10);
  EXPECT_GT(r.result["timing"]["reference"]["median_ms"].get<double>(), 0.0);
  EXPECT_GT(r.result["stages"]["compile_s"].get<double>(), 1.0);  // a real build happened
  // The run worker's own parts fit in its wall time; importing the candidate there reuses
  // the compile phase's build (no second compile).
  const auto& st = r.result["stages"];
  EXPECT_GT(st["run_load_candidate_s"].get<double>(), 0.0) << st.dump();
  EXPECT_LT(st["run_load_candidate_s"].get<double>(), st["compile_s"].get<double>() / 2) << st.dump();
  EXPECT_GT(st["run_load_models_s"].get<double>(), 0.0) << st.dump();
  EXPECT_GE(st["run_cuda_init_s"].get<double>(), 0.0) << st.dump();
  EXPECT_LT(st["run_cuda_init_s"].get<double>() + st["run_load_candidate_s"].get<double>() +
                st["run_load_models_s"].get<double>() + st["correctness_s"].get<double>() +
                st["timing_s"].get<double>(),
            st["run_worker_total_s"].get<double>())
      << st.dump();
  // The time past the worker's result line is on record, and part of its wall time.
  EXPECT_GE(st["run_worker_after_result_s"].get<double>(), 0.0) << st.dump();
  EXPECT_LT(st["run_worker_after_result_s"].get<double>(), st["run_worker_total_s"].get<double>()) << st.dump();
  EXPECT_GT(st["checker_total_s"].get<double>(), 0.0) << st.dump();
  // What kbrun added to the build for the backend is on record (CPU: the cuda set, no flags).
  EXPECT_EQ(r.result["build"]["backend_flags"]["name"], "cuda") << r.result["build"].dump();
  EXPECT_EQ(r.result["build"]["extensions"][0]["cache"], "miss");
  // The checker process saw every check pass.
  const auto& checks = r.result["correctness"]["checker"]["checks"];
  EXPECT_EQ(checks["trial"]["passed"], 5) << r.result["correctness"].dump();
  EXPECT_EQ(checks["extra"]["passed"], 2);
  // Every timed call was checked (fresh values each call), and the reference was timed in the
  // checker as often as the candidate in the worker.
  EXPECT_EQ(checks["timed"]["passed"], 10);
  EXPECT_EQ(r.result["timing"]["checked_timed_calls"], 10);
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 1) << r.exit_code;
  EXPECT_EQ(r.exit_code, r.result["speedup"].get<double>() >= 1.0 ? 0 : 1);
}

// The worker and checker share a kbrun-<pid>-* folder in /dev/shm; one that a killed kbrun
// left (its pid gone) is removed by the next kbrun, one of a live process is not.
TEST(EvalIntegration, SharedMemoryFoldersOfAKilledKbrunAreRemoved) {
  struct statfs st {};
  if (statfs("/dev/shm", &st) != 0 || st.f_type != TMPFS_MAGIC || access("/dev/shm", W_OK) != 0) {
    GTEST_SKIP() << "/dev/shm is not a writable tmpfs here: kbrun uses the work dir instead";
  }
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  fs::path stale = fs::path("/dev/shm") / ("kbrun-" + std::to_string(gone) + "-test");
  fs::path live = fs::path("/dev/shm") / ("kbrun-" + std::to_string(getpid()) + "-test");
  fs::create_directories(stale);
  fs::create_directories(live);
  WriteFileAtomic(stale / "torch_1_2_3", "x");
  auto r = RunEval("wrong");
  EXPECT_EQ(r.result["status"], "incorrect") << r.output;
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  fs::remove_all(stale);
  fs::remove_all(live);
}

// A candidate whose own code never ran is rejected, and the result says why: its build
// failed (with the compiler's line), it never called what it built, or it built nothing.
TEST(EvalIntegration, FallbackReasonNamesWhatHappenedToTheKernel) {
  auto failed = RunEvalIn("candidates", "fallback_build_fails", {});
  ASSERT_FALSE(failed.result.is_null()) << failed.output;
  EXPECT_EQ(failed.result["status"], "rejected") << failed.output;
  EXPECT_EQ(failed.result["error"]["category"], "uses_library_only");
  const json& f = failed.result["fallback"];
  EXPECT_EQ(f["fallback_reason"], "build_failed") << f.dump();
  ASSERT_EQ(f["builds"].size(), 1u) << f.dump();
  EXPECT_EQ(f["builds"][0]["name"], "fallback_build_fails_ext");
  EXPECT_FALSE(f["builds"][0]["ok"].get<bool>());
  EXPECT_TRUE(Contains(f["builds"][0]["error"].get<std::string>(), "error")) << f.dump();
  // The compile phase's build of it (constructing ModelNew there) failed first, and says why.
  const json& compiled = failed.result["build"]["extensions"];
  ASSERT_EQ(compiled.size(), 1u) << failed.result["build"].dump();
  EXPECT_TRUE(Contains(compiled[0].value("error", ""), "error")) << compiled.dump();
  EXPECT_GT(compiled[0]["seconds"].get<double>(), 1.0) << compiled.dump();  // the compiler ran
  // The run phase constructs the model again: the same build fails at once with the same lines
  // instead of compiling again on the GPU lane, and the run worker's build time says so.
  EXPECT_GE(f["builds"][0]["seconds"].get<double>(), 0.0) << f.dump();
  EXPECT_LT(f["builds"][0]["seconds"].get<double>(), compiled[0]["seconds"].get<double>() / 2) << f.dump();
  EXPECT_NEAR(failed.result["stages"]["run_build_s"].get<double>(), f["builds"][0]["seconds"].get<double>(), 0.01)
      << failed.result["stages"].dump();
  const std::string message = failed.result["error"]["message"].get<std::string>();
  EXPECT_TRUE(Contains(message, "fallback_build_fails_ext failed to build")) << message;
  EXPECT_TRUE(Contains(message, "error")) << message;

  auto unused = RunEvalIn("candidates", "fallback_never_launched", {});
  ASSERT_FALSE(unused.result.is_null()) << unused.output;
  EXPECT_EQ(unused.result["status"], "rejected") << unused.output;
  EXPECT_EQ(unused.result["fallback"]["fallback_reason"], "never_launched") << unused.result["fallback"].dump();
  EXPECT_TRUE(unused.result["fallback"]["builds"][0]["ok"].get<bool>());
  EXPECT_TRUE(Contains(unused.result["error"]["message"].get<std::string>(), "never called into it"));

  auto plain = RunEvalIn("candidates", "honest_torch_add", {});
  ASSERT_FALSE(plain.result.is_null()) << plain.output;
  EXPECT_EQ(plain.result["fallback"]["fallback_reason"], "library_only") << plain.result["fallback"].dump();
  EXPECT_TRUE(Contains(plain.result["error"]["message"].get<std::string>(), "builds no kernel of its own"));

  // Its own kernel ran: no reason.
  auto own = RunEvalIn("candidates", "correct_cpp", {});
  EXPECT_TRUE(own.result["fallback"]["fallback_reason"].is_null()) << own.result["fallback"].dump();
}

// A kernel built in __init__ is built in the compile phase (ModelNew constructed once there),
// so the run phase only loads it; the construction never decides a verdict.
TEST(EvalIntegration, BuildsInInitHappenInTheCompilePhase) {
  auto r = RunEvalIn("candidates", "lazy_build_init", {"--no-compile-cache"});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.output;
  const json& pre = r.result["build"]["prebuild"];
  EXPECT_TRUE(pre["constructed"].get<bool>()) << pre.dump();
  EXPECT_EQ(pre["builds"], 1) << pre.dump();
  EXPECT_GT(pre["seconds"].get<double>(), 1.0) << pre.dump();  // a real build happened there
  ASSERT_EQ(r.result["build"]["extensions"].size(), 1u) << r.result["build"].dump();
  EXPECT_EQ(r.result["build"]["extensions"][0]["name"], "lazy_build_init_ext");
  // The run phase's construction found the build ready: little of the GPU lane's time went to it.
  EXPECT_LT(r.result["stages"]["run_load_models_s"].get<double>(), pre["seconds"].get<double>() / 2)
      << r.result["stages"].dump();
  EXPECT_LT(r.result["stages"]["run_build_s"].get<double>(), pre["seconds"].get<double>() / 2)
      << r.result["stages"].dump();
  EXPECT_GT(r.result["stages"]["run_build_s"].get<double>(), 0.0) << r.result["stages"].dump();  // it loaded

  // torch.utils.cpp_extension.load of a file the constructor writes again each time (a new mtime
  // in the run phase): the run phase finds the compile phase's build all the same.
  auto files = RunEvalIn("candidates", "lazy_build_load_files", {"--no-compile-cache"});
  ASSERT_FALSE(files.result.is_null()) << files.output;
  EXPECT_EQ(files.result["status"], "correct") << files.output;
  const json& fpre = files.result["build"]["prebuild"];
  EXPECT_EQ(fpre["builds"], 1) << fpre.dump();
  EXPECT_GT(fpre["seconds"].get<double>(), 1.0) << fpre.dump();
  EXPECT_LT(files.result["stages"]["run_build_s"].get<double>(), fpre["seconds"].get<double>() / 2)
      << files.result["stages"].dump();

  // A kernel built on the first forward call: that load_inline call is made in the compile phase
  // too, so the run phase's first call loads a cached build.
  auto fwd = RunEvalIn("candidates", "lazy_build_forward", {"--no-compile-cache"});
  ASSERT_FALSE(fwd.result.is_null()) << fwd.output;
  EXPECT_EQ(fwd.result["status"], "correct") << fwd.output;
  const json& d = fwd.result["build"]["prebuild"]["deferred"];
  EXPECT_EQ(d["found"], 1) << d.dump();
  EXPECT_EQ(d["built"], 1) << d.dump();
  EXPECT_EQ(fwd.result["build"]["prebuild"]["builds"], 1) << fwd.result["build"].dump();
  ASSERT_EQ(fwd.result["build"]["extensions"].size(), 1u) << fwd.result["build"].dump();
  EXPECT_EQ(fwd.result["build"]["extensions"][0]["name"], "lazy_build_forward_ext");
  // The run phase's first forward found the build made in the compile phase (a build of this
  // extension takes seconds).
  EXPECT_LT(fwd.result["stages"]["correctness_s"].get<double>(),
            fwd.result["build"]["prebuild"]["seconds"].get<double>() / 2)
      << fwd.result["stages"].dump();

  // A constructor that builds only when it sees a GPU builds in the compile phase too; what it
  // then does on the GPU fails there, and is only noted.
  auto gpu_only = RunEval("lazy_build_gpu_only");
  ASSERT_FALSE(gpu_only.result.is_null()) << gpu_only.output;
  EXPECT_EQ(gpu_only.result["status"], "correct") << gpu_only.output;  // on the CPU: torch's add
  const json& g = gpu_only.result["build"]["prebuild"];
  EXPECT_EQ(g["builds"], 1) << g.dump();
  EXPECT_FALSE(g["constructed"].get<bool>()) << g.dump();
  EXPECT_TRUE(g.contains("note")) << g.dump();

  auto failing = RunEval("init_exits");
  ASSERT_FALSE(failing.result.is_null()) << failing.output;
  EXPECT_EQ(failing.result["status"], "runtime_error") << failing.output;  // judged in the run phase
  EXPECT_FALSE(failing.result["build"]["prebuild"]["constructed"].get<bool>());
  EXPECT_TRUE(Contains(failing.result["build"]["prebuild"]["note"].get<std::string>(), "exit code 3"))
      << failing.result["build"].dump();
}

// A level-2-style problem (tests/problems/4_Gemm_BatchNorm_ReLU.py): nn.Linear, a parameter and a
// buffer drawn at construction, init inputs that are not all sizes, BatchNorm in training mode and
// two outputs. The worker and the checker each seed the generator (with the run's seed, random per
// run) before get_init_inputs() and again before building their model, as KernelBench does, so a
// candidate that creates the same modules in the same order gets the reference's weights.
TEST(EvalIntegration, Level2ProblemWithWeightsBuffersAndTwoOutputs) {
  const std::vector<std::string> plain_torch = {"--allow-library-kernels"};
  auto ok = RunEvalOn("4_Gemm_BatchNorm_ReLU", "candidates", "level2_gemm_bn_relu", plain_torch);
  ASSERT_FALSE(ok.result.is_null()) << ok.output;
  EXPECT_EQ(ok.result["status"], "correct") << ok.output;
  EXPECT_TRUE(ok.result["seed"].is_number_unsigned()) << ok.result["seed"];
  EXPECT_EQ(ok.exit_code, ok.result["speedup"].get<double>() >= 1.0 ? 0 : 1);
  const json& checks = ok.result["correctness"]["checker"]["checks"];
  EXPECT_EQ(checks["trial"]["passed"], 5) << ok.result["correctness"].dump();
  EXPECT_EQ(checks["timed"]["passed"], 10) << ok.result["correctness"].dump();
  EXPECT_TRUE(ok.result["correctness"]["checker"]["reference_deterministic"].get<bool>());
  // Another seed, other weights, the same match.
  auto seeded = RunEvalOn("4_Gemm_BatchNorm_ReLU", "candidates", "level2_gemm_bn_relu",
                          {"--allow-library-kernels", "--seed", "12345"});
  ASSERT_FALSE(seeded.result.is_null()) << seeded.output;
  EXPECT_EQ(seeded.result["status"], "correct") << seeded.output;
  EXPECT_EQ(seeded.result["seed"], 12345);

  // The same computation with the scale parameter drawn before nn.Linear: every weight differs.
  auto wrong = RunEvalOn("4_Gemm_BatchNorm_ReLU", "candidates", "level2_wrong_weights", plain_torch);
  ASSERT_FALSE(wrong.result.is_null()) << wrong.output;
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_EQ(wrong.result["status"], "incorrect") << wrong.output;
  EXPECT_EQ(wrong.result["error"]["category"], "value_mismatch") << wrong.result["error"].dump();
  EXPECT_EQ(wrong.result["correctness"]["trials_passed"], 0);

  // A candidate that puts itself in eval mode and folds BatchNorm's running statistics (as real
  // ones do) computes another function: the reference runs in training mode, as in KernelBench.
  auto folded = RunEvalOn("4_Gemm_BatchNorm_ReLU", "candidates", "level2_eval_mode", plain_torch);
  ASSERT_FALSE(folded.result.is_null()) << folded.output;
  EXPECT_EQ(folded.result["status"], "incorrect") << folded.output;
  EXPECT_EQ(folded.result["error"]["category"], "value_mismatch") << folded.result["error"].dump();
}

// A reference that draws a new dropout mask on every call (KernelBench's 66_Matmul_Dropout_Softmax
// runs in training mode) cannot be checked: the checker runs it twice on the first trial's inputs,
// and where the runs differ beyond rounding no candidate is judged against it. Before, a constant
// output passed: the float64 run's other mask made the evidence bound as loose as the randomness.
TEST(EvalIntegration, NondeterministicReferenceIsAProblemErrorNotAPass) {
  auto r = RunEvalOn("6_Matmul_Dropout_Softmax", "candidates", "dropout_constant", {"--allow-library-kernels"});
  ASSERT_FALSE(r.result.is_null()) << r.output;
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.result["status"], "runtime_error") << r.output;
  EXPECT_EQ(r.result["error"]["category"], "problem_error") << r.result["error"].dump();
  EXPECT_TRUE(Contains(r.result["error"]["message"].get<std::string>(), "not deterministic")) << r.result["error"];
  EXPECT_FALSE(r.result["correctness"]["checker"]["reference_deterministic"].get<bool>());
  EXPECT_TRUE(r.result["speedup"].is_null());
}

// A reference that keeps a hidden state between calls (the corpus's 33_VanillaRNN) is checked: its
// second run on the first trial starts from the state the first one started from, and it stays in
// step with the candidate. A candidate that keeps the state too is correct; one that drops it
// passes the first trial only.
TEST(EvalIntegration, ReferenceWithHiddenStateIsCheckedInStep) {
  auto kept = RunEvalOn("7_VanillaRNN", "candidates", "stateful_rnn", {"--allow-library-kernels"});
  ASSERT_FALSE(kept.result.is_null()) << kept.output;
  EXPECT_EQ(kept.result["status"], "correct") << kept.output;
  EXPECT_TRUE(kept.result["correctness"]["checker"]["reference_deterministic"].get<bool>());
  EXPECT_GT(kept.result["speedup"].get<double>(), 0.0);

  auto frozen = RunEvalOn("7_VanillaRNN", "candidates", "stateful_rnn_frozen", {"--allow-library-kernels"});
  ASSERT_FALSE(frozen.result.is_null()) << frozen.output;
  EXPECT_EQ(frozen.result["status"], "incorrect") << frozen.output;
  EXPECT_EQ(frozen.result["error"]["category"], "value_mismatch") << frozen.result["error"].dump();
  EXPECT_EQ(frozen.result["correctness"]["trials_passed"], 1) << frozen.result["correctness"].dump();
}

TEST(EvalIntegration, WrongOutputIsIncorrectWithDiffFigures) {
  auto r = RunEval("wrong");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.result["status"], "incorrect");
  EXPECT_EQ(r.result["error"]["category"], "value_mismatch");
  EXPECT_GT(r.result["correctness"]["max_abs_diff"].get<double>(), 0.1);
  EXPECT_EQ(r.result["correctness"]["trials_passed"], 0);
  EXPECT_TRUE(r.result["speedup"].is_null());
}

TEST(EvalIntegration, CompileErrorCarriesCompilerMessage) {
  auto r = RunEval("compile_error_cpp");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.result["status"], "compile_error");
  EXPECT_EQ(r.result["error"]["category"], "build_failed");
  EXPECT_FALSE(r.result["compiled"].get<bool>());
  std::string msg = r.result["error"]["message"];
  EXPECT_NE(msg.find("undeclared_thing"), std::string::npos) << msg;
  EXPECT_LT(msg.size(), 8000u);  // trimmed, not the whole log
  // No run phase: its stage fields say so (they once repeated the compile worker's).
  EXPECT_TRUE(r.result["stages"]["run_worker_start"].is_null()) << r.result["stages"].dump();
  EXPECT_EQ(r.result["stages"]["run_worker_total_s"].get<double>(), 0.0);
}

TEST(EvalIntegration, SegfaultIsRuntimeError) {
  auto r = RunEval("crash");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.result["status"], "runtime_error");
  EXPECT_EQ(r.result["error"]["category"], "crash");
  EXPECT_NE(r.result["error"]["message"].get<std::string>().find("SIGSEGV"), std::string::npos);
}

TEST(EvalIntegration, HangIsKilledAtTheRunTimeout) {
  auto r = RunEval("hang", {"--run-timeout", "3"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.result["status"], "timeout");
  EXPECT_EQ(r.result["error"]["category"], "run_timeout");
  EXPECT_LT(r.wall_s, 30.0);
}

TEST(EvalIntegration, MegabytesOfOutputAreCapped) {
  auto r = RunEval("noisy");
  ASSERT_FALSE(r.result.is_null()) << r.output.substr(0, 2000);
  EXPECT_EQ(r.result["status"], "correct");
  // The candidate printed 2 MiB per call over dozens of calls; kbrun's own output stays small.
  EXPECT_LT(r.output.size(), 100000u);
  EXPECT_LT(r.result.dump().size(), 100000u);
}

TEST(EvalIntegration, MissingModelNewIsCompileError) {
  auto r = RunEval("no_model_new");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.result["status"], "compile_error");
  EXPECT_EQ(r.result["error"]["category"], "no_model_new");
}

TEST(EvalIntegration, SecretsDoNotReachTheCandidate) {
  auto r = RunEval("env_probe");
  EXPECT_EQ(r.result["status"], "correct") << r.output;
}

TEST(EvalIntegration, UsageErrorsGetTheirOwnExitCode) {
  ProcessSpec spec;
  spec.argv = {KBRUN_BINARY, "eval", "--code", "/nonexistent.py", "--problem", "/nonexistent2.py"};
  spec.env = CurrentEnvironment();
  ProcessResult p = RunProcess(spec);
  EXPECT_EQ(p.exit_code, 64);
  EXPECT_NE(p.output.find("no such file"), std::string::npos);
  EXPECT_EQ(p.output.find("Traceback"), std::string::npos);
  spec.argv = {KBRUN_BINARY, "eval", "--bogus-flag"};
  EXPECT_EQ(RunProcess(spec).exit_code, 64);
}

}  // namespace
}  // namespace kbrun
