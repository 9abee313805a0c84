// The feedback a reflection prompt carries for each failure kind.
#include "batch/reflection.h"

#include <gtest/gtest.h>

#include "util/text.h"

namespace kbrun::batch {
namespace {

using nlohmann::json;

SampleExtras Extras(double target = 1.0) {
  SampleExtras e;
  e.target_speedup = target;
  e.has_code = true;
  return e;
}

eval::EvalResult Result(eval::Status status, const std::string& category, const std::string& message,
                        json doc = json::object()) {
  eval::EvalResult r;
  r.status = status;
  r.correct = status == eval::Status::kCorrect;
  r.compiled = status != eval::Status::kCompileError;
  r.error_category = category;
  r.error_message = message;
  r.json = std::move(doc);
  return r;
}

const SampleId kId{"19_ReLU", 2, 1, 2};

TEST(Reflection, CompileErrorCarriesTheTrimmedCompilerOutput) {
  auto e = Result(eval::Status::kCompileError, "build_failed",
                  "build failed:\nmain.cpp:5:3: error: 'undeclared_thing' was not declared in this scope");
  SampleRecord r = MakeRecord(kId, &e, "", "", Extras());
  EXPECT_EQ(r.failure_kind, "Compile error");
  EXPECT_TRUE(Contains(r.feedback, "Compile error (build_failed)")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "'undeclared_thing' was not declared")) << r.feedback;
  EXPECT_EQ(r.doc["feedback"], r.feedback);
  EXPECT_EQ(r.doc["failure_kind"], "Compile error");
}

TEST(Reflection, IncorrectCarriesTheMismatchFigures) {
  json doc = {
      {"correctness", {{"trials_run", 1}, {"trials_passed", 0}, {"max_abs_diff", 9.62735}, {"mean_abs_diff", 1.6}}},
      {"tolerance", {{"atol", 1e-4}, {"rtol", 1e-4}}}};
  auto e = Result(eval::Status::kIncorrect, "value_mismatch", "trial 0: output 0 differs", doc);
  SampleRecord r = MakeRecord(kId, &e, "", "", Extras());
  EXPECT_EQ(r.failure_kind, "Incorrect");
  EXPECT_TRUE(Contains(r.feedback, "0 of 1 correctness trials passed")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "max abs diff 9.62735")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "atol=0.0001")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "trial 0: output 0 differs")) << r.feedback;
}

TEST(Reflection, IncorrectCarriesBothErrorsAndTheirRatio) {
  json doc = {{"correctness",
               {{"trials_run", 1},
                {"trials_passed", 0},
                {"err_candidate", 0.0125},
                {"err_reference", 2.5e-5},
                {"error_ratio", 500.0}}},
              {"tolerance", {{"rule", "evidence"}, {"k", 128}, {"fp64_reference", true}}}};
  auto e = Result(eval::Status::kIncorrect, "precision_downgrade", "trial 0: output 0: ...", doc);
  SampleRecord r = MakeRecord(kId, &e, "", "", Extras());
  EXPECT_TRUE(Contains(r.feedback,
                       "float64 run of the reference 0.0125, the fp32 reference's own error 2.5e-05 "
                       "(ratio 500)"))
      << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "allowed: 128x the reference's own error")) << r.feedback;
}

TEST(Reflection, TooSlowCarriesTheMeasuredTimes) {
  json doc = {{"timing", {{"reference", {{"median_ms", 1.25}}}, {"candidate", {{"median_ms", 2.5}, {"trials", 100}}}}},
              {"device", {{"name", "NVIDIA H100"}}}};
  auto e = Result(eval::Status::kCorrect, "", "", doc);
  e.speedup = 0.5;
  SampleRecord r = MakeRecord(kId, &e, "", "", Extras(1.0));
  EXPECT_FALSE(r.success);
  EXPECT_EQ(r.failure_kind, "PERFORMANCE TOO SLOW");
  EXPECT_TRUE(Contains(r.feedback, "PERFORMANCE TOO SLOW")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "0.500x")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "reference 1.2500 ms, your kernel 2.5000 ms (median of 100 runs on NVIDIA H100)"))
      << r.feedback;
  // Fast enough: a success, no feedback.
  e.speedup = 1.5;
  SampleRecord fast = MakeRecord(kId, &e, "", "", Extras(1.0));
  EXPECT_TRUE(fast.success);
  EXPECT_EQ(fast.failure_kind, "");
  EXPECT_EQ(fast.feedback, "");
  EXPECT_TRUE(fast.doc["feedback"].is_null());
}

TEST(Reflection, RuntimeErrorAndTimeout) {
  auto crash = Result(eval::Status::kRuntimeError, "crash", "worker killed by SIGSEGV in stage 'correctness'");
  SampleRecord r = MakeRecord(kId, &crash, "", "", Extras());
  EXPECT_EQ(r.failure_kind, "Runtime error");
  EXPECT_TRUE(Contains(r.feedback, "Runtime error (crash)")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "SIGSEGV")) << r.feedback;
  auto hang = Result(eval::Status::kTimeout, "run_timeout", "killed after 300 s in stage 'timing'");
  SampleRecord t = MakeRecord(kId, &hang, "", "", Extras());
  EXPECT_EQ(t.failure_kind, "Timeout");
  EXPECT_TRUE(Contains(t.feedback, "Timeout (run_timeout): killed after 300 s")) << t.feedback;
}

TEST(Reflection, NoCodeSaysSo) {
  SampleExtras extras = Extras();
  extras.has_code = false;
  SampleRecord r = MakeRecord(kId, nullptr, kStatusNoCode, "no_code: no fenced code block", extras);
  EXPECT_EQ(r.status, "no_code");
  EXPECT_EQ(r.failure_kind, "No code");
  EXPECT_TRUE(Contains(r.feedback, "No usable code")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "no fenced code block")) << r.feedback;
  EXPECT_TRUE(r.doc["files"]["code"].is_null());
  EXPECT_TRUE(r.doc["eval"].is_null());
}

TEST(Reflection, HugeErrorsAreCapped) {
  std::string log;
  for (int i = 0; i < 500; ++i) log += "line " + std::to_string(i) + " of a very long traceback\n";
  auto e = Result(eval::Status::kRuntimeError, "exception", log);
  SampleRecord r = MakeRecord(kId, &e, "", "", Extras());
  EXPECT_LE(r.feedback.size(), kMaxFeedbackChars + 100);
  EXPECT_TRUE(Contains(r.feedback, "line 0 ")) << r.feedback;
  EXPECT_TRUE(Contains(r.feedback, "line 499 ")) << r.feedback;  // the end of a traceback matters most
}

TEST(Reflection, RecordRoundTripsThroughItsDocument) {
  json doc = {{"correctness", {{"trials_run", 5}, {"trials_passed", 5}}}};
  auto e = Result(eval::Status::kCorrect, "", "", doc);
  e.speedup = 1.7;
  SampleExtras extras = Extras(1.0);
  extras.llm = {{"prompt_tokens", 10}, {"completion_tokens", 20}};
  extras.llm_stage = {100, 110};
  extras.gpu_lane = 1;
  SampleRecord r = MakeRecord(kId, &e, "", "", extras);
  SampleRecord back = RecordFromJson(json::parse(r.doc.dump()));
  EXPECT_EQ(back.id.problem, "19_ReLU");
  EXPECT_EQ(back.id.index, 2);
  EXPECT_EQ(back.id.attempt, 1);
  EXPECT_EQ(back.id.sample, 2);
  EXPECT_EQ(back.status, "correct");
  EXPECT_TRUE(back.success);
  EXPECT_DOUBLE_EQ(back.speedup, 1.7);
  EXPECT_TRUE(back.has_code);
  EXPECT_DOUBLE_EQ(back.doc["stages"]["llm"]["seconds"].get<double>(), 10.0);
  EXPECT_EQ(back.doc["eval"]["correctness"]["trials_run"], 5);
}

}  // namespace
}  // namespace kbrun::batch
