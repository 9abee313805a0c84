// How a run that gave no result to trust is classified.
#include "eval/verdict.h"

#include <signal.h>

#include <gtest/gtest.h>

namespace kbrun::eval {
namespace {

using nlohmann::json;

// `text` contains `part`.
::testing::AssertionResult Has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not in: " << text;
}

TEST(Verdict, DeadWorkerByHowItEnded) {
  EvalOptions o;
  o.memory_limit_bytes = 1ULL << 30;
  WorkerRun run;
  run.process.timed_out = true;
  run.process.wall_s = 901;
  EvalResult r = FromDeadWorker(run, o);
  EXPECT_EQ(r.status, Status::kTimeout);
  EXPECT_EQ(r.error_category, "compile_timeout");
  EXPECT_TRUE(Has(r.error_message, "in stage 'start' (limit 900 s)"));
  run.last_stage = "timing";
  r = FromDeadWorker(run, o);
  EXPECT_EQ(r.error_category, "run_timeout");
  EXPECT_TRUE(Has(r.error_message, "(limit 300 s)"));

  run = WorkerRun{};
  run.process.cancelled = true;
  run.process.timed_out = true;  // cancelled wins
  EXPECT_EQ(FromDeadWorker(run, o).error_category, "cancelled");

  run = WorkerRun{};
  run.process.out_of_memory = true;
  run.last_stage = "correctness";
  r = FromDeadWorker(run, o);
  EXPECT_EQ(r.status, Status::kRuntimeError);
  EXPECT_EQ(r.error_category, "out_of_memory");
  EXPECT_TRUE(Has(r.error_message, "in stage 'correctness'"));

  run = WorkerRun{};
  run.process.term_signal = SIGSEGV;
  EXPECT_EQ(FromDeadWorker(run, o).error_category, "crash");

  run = WorkerRun{};
  run.process.spawn_failed = true;
  EXPECT_EQ(FromDeadWorker(run, o).error_category, "worker_failed");

  run = WorkerRun{};
  run.process.exit_status_lost = true;
  EXPECT_TRUE(Has(FromDeadWorker(run, o).error_message, "exit status is unknown"));

  run = WorkerRun{};
  run.process.exit_code = 3;
  r = FromDeadWorker(run, o);
  EXPECT_EQ(r.error_category, "worker_failed");
  EXPECT_TRUE(Has(r.error_message, "exited with code 3 without a result"));
}

TEST(Verdict, WorkerFailuresCannotClaimCorrect) {
  EvalResult r = FromWorkerFailure({{"status", "correct"}, {"category", "x"}, {"message", "m"}}, "");
  EXPECT_EQ(r.status, Status::kRejected);
  r = FromWorkerFailure({{"status", "nonsense"}}, "");
  EXPECT_EQ(r.status, Status::kRejected);
  EXPECT_EQ(r.error_category, "unknown");
  r = FromWorkerFailure(
      {{"status", "runtime_error"}, {"category", "cuda_error"}, {"message", "boom"}, {"detail", "trace"}},
      "worker output");
  EXPECT_EQ(r.status, Status::kRuntimeError);
  EXPECT_EQ(r.error_message, "boom\ntrace\nworker output");
  r = FromWorkerFailure({{"status", "incorrect"}, {"category", "mismatch"}, {"message", "off by 1"}}, "");
  EXPECT_EQ(r.status, Status::kIncorrect);
  EXPECT_EQ(r.error_message, "off by 1");
}

json GoodChecker(int trials) {
  return {
      {"checks",
       {{"trial", {{"passed", trials}}}, {"extra", {{"passed", 2}, {"skipped", 0}}}, {"timed", {{"passed", 100}}}}}};
}

json GoodWorker(int timing_trials) {
  return {{"correctness", {{"extra_trials_run", 2}}},
          {"timing",
           {{"checked_timed_calls", 100},
            {"reference_trials_all_methods", 100},
            {"candidate", {{"trials", timing_trials}}},
            {"reference", {{"trials", timing_trials}}}}}};
}

TEST(Verdict, CheckerMustCoverEveryCheck) {
  EvalOptions o;
  WorkerRun run;
  EXPECT_FALSE(CheckerDisagrees(run, o, GoodWorker(100)));  // no checker asked for
  run.checked = true;
  auto d = CheckerDisagrees(run, o, GoodWorker(100));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->error_category, "checker_failed");
  run.checker = GoodChecker(5);
  EXPECT_FALSE(CheckerDisagrees(run, o, GoodWorker(100)));
  run.checker = GoodChecker(4);
  d = CheckerDisagrees(run, o, GoodWorker(100));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->status, Status::kIncorrect);
  EXPECT_EQ(d->error_category, "incomplete_checks");
  run.checker = GoodChecker(5);
  EXPECT_TRUE(CheckerDisagrees(run, o, GoodWorker(99)));
  o.shapes = "varied";
  d = CheckerDisagrees(run, o, GoodWorker(100));
  ASSERT_TRUE(d);
  EXPECT_TRUE(Has(d->error_message, "varied-shape"));
  run.checker = json{{"failure", {{"status", "incorrect"}, {"category", "mismatch"}, {"message", "m"}}}};
  d = CheckerDisagrees(run, o, GoodWorker(100));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->error_category, "mismatch");
}

TEST(Verdict, FallbackExplanations) {
  EXPECT_EQ(FallbackExplanation({{"fallback_reason", nullptr}}), "");
  EXPECT_EQ(FallbackExplanation({{"fallback_reason", "library_only"}}), "; it builds no kernel of its own");
  EXPECT_EQ(FallbackExplanation({{"fallback_reason", "never_launched"}, {"builds", {{{"name", "ext"}, {"ok", true}}}}}),
            "; its own extension ext built, but the forward never called into it");
  EXPECT_TRUE(Has(FallbackExplanation({{"fallback_reason", "build_failed"},
                                       {"builds", {{{"name", "ext"}, {"ok", false}, {"error", "nvcc: error"}}}}}),
                  "its own extension ext failed to build"));
}

}  // namespace
}  // namespace kbrun::eval
