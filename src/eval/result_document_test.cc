// The parts of result.json that come from the checker: the merged timing, the tolerance and
// baselines blocks, the correctness figures.
#include "eval/result_document.h"

#include <gtest/gtest.h>

namespace kbrun::eval {
namespace {

using nlohmann::json;

TEST(ResultDocument, TimingTakesTheReferenceFromTheChecker) {
  json worker = {{"method", "cuda_event"},
                 {"reference", {{"median_ms", 0.001}}},  // the worker's word: replaced
                 {"candidate", {{"median_ms", 2.0}, {"trials", 100}}},
                 {"candidate_kernelbench", {{"median_ms", 2.5}}}};
  json checker = {{"timing",
                   {{"cuda_event", {{"median_ms", 4.0}, {"trials", 100}}},
                    {"kernelbench_cuda_event_l2_flush", {{"median_ms", 5.0}, {"trials", 100}}},
                    {"spin_ms", 0.5}}}};
  json t = MergedTiming(worker, checker);
  EXPECT_EQ(t["reference"]["median_ms"], 4.0);
  EXPECT_EQ(t["reference_spin_ms"], 0.5);
  EXPECT_EQ(t["reference_trials_all_methods"], 200);
  EXPECT_EQ(t["kernelbench"]["speedup"], 2.0);
  EXPECT_FALSE(t.contains("candidate_kernelbench"));
  // No checker: no reference at all.
  t = MergedTiming(worker, std::nullopt);
  EXPECT_TRUE(t["reference"].is_null());
  EXPECT_EQ(t["reference_trials_all_methods"], 0);
}

TEST(ResultDocument, ToleranceFromOptionsThenTheChecker) {
  EvalOptions o;
  o.tolerance = "fixed";
  o.atol = 0.01;
  json t = ToleranceDoc(o, nullptr);
  EXPECT_EQ(t, json({{"rule", "fixed"}, {"atol", 0.01}, {"rtol", nullptr}}));
  WorkerRun run;
  run.checker = json{{"judge", {{"atol", 0.01}, {"rtol", 0.02}, {"k", 4}, {"unrelated", 1}}}};
  t = ToleranceDoc(o, &run);
  EXPECT_EQ(t["rtol"], 0.02);
  EXPECT_EQ(t["k"], 4);
  EXPECT_FALSE(t.contains("unrelated"));
}

TEST(ResultDocument, BaselinesSpeedupsOrWhyNot) {
  EvalOptions o;
  o.baselines = {"eager", "compile", "cudagraph"};
  EvalResult r;
  r.status = Status::kCorrect;
  r.correct = true;
  r.speedup = 2.0;
  json timing = {{"reference", {{"median_ms", 4.0}}}, {"candidate", {{"median_ms", 2.0}}}};
  WorkerRun run;
  run.checker_stage = "baselines";
  run.baselines = {{"compile", {{"status", "measured"}, {"median_ms", 3.0}}}};
  run.checker_process.exit_code = 0;
  json b = BaselinesDoc(o, r, timing, &run);
  EXPECT_EQ(b["eager"]["status"], "measured");
  EXPECT_EQ(b["eager"]["speedup"], 2.0);
  EXPECT_EQ(b["compile"]["speedup"], 1.5);
  EXPECT_DOUBLE_EQ(b["compile"]["speedup_over_eager"].get<double>(), 4.0 / 3.0);
  EXPECT_EQ(b["cudagraph"]["status"], "unavailable");
  EXPECT_EQ(b["cudagraph"]["reason"], "the checker ended in stage 'baselines': it exited with code 0");
  // No run phase: everything skipped, with the verdict.
  r = EvalResult{};
  r.status = Status::kCompileError;
  r.error_category = "build_failed";
  b = BaselinesDoc(o, r, json(nullptr), nullptr);
  EXPECT_EQ(b["eager"]["reason"], "the reference was not timed (compile_error/build_failed)");
  EXPECT_EQ(b["compile"]["reason"], "no run phase (compile_error/build_failed)");
}

TEST(ResultDocument, CheckerFiguresGoIntoCorrectness) {
  EvalOptions o;
  EvalResult r;
  r.json = {{"correctness", {{"trials_run", 5}}}};
  json checker = {{"max_abs_diff", 1e-6},
                  {"mean_abs_diff", nullptr},
                  {"judge", {{"error_ratio", 0.5}}},
                  {"checks", {{"extra", {{"skipped", 1}}}}}};
  AddCheckerFigures(r, checker, o);
  const json& c = r.json["correctness"];
  EXPECT_EQ(c["trials_run"], 5);
  EXPECT_EQ(c["checker"], checker);
  EXPECT_EQ(c["max_abs_diff"], 1e-6);
  EXPECT_FALSE(c.contains("mean_abs_diff"));
  EXPECT_EQ(c["error_ratio"], 0.5);
  EXPECT_EQ(c["extra_trials_skipped"], 1);
  EXPECT_EQ(c["shapes"], "fixed");
}

}  // namespace
}  // namespace kbrun::eval
