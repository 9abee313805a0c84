// Planning a problem's next step from its finished samples: fresh start, next
// attempt, resume after a crash, solved, out of attempts.
#include "batch/attempt_plan.h"

#include <gtest/gtest.h>

#include <set>

namespace kbrun::batch {
namespace {

constexpr int kSamples = 3, kAttempts = 3;

SampleRecord Rec(int attempt, int sample, const std::string& status, bool success = false) {
  SampleRecord r;
  r.id = MakeSampleId("1_P", attempt, sample, kSamples);
  r.status = status;
  r.correct = status == "correct";
  r.success = success;
  return r;
}

std::map<int, SampleRecord> Records(std::initializer_list<SampleRecord> list) {
  std::map<int, SampleRecord> m;
  for (const auto& r : list) m[r.id.index] = r;
  return m;
}

auto NoResponses = [](int) { return false; };

TEST(AttemptPlan, IndexIsGlobalWithinTheProblem) {
  EXPECT_EQ(SampleIndex(1, 1, 3), 1);
  EXPECT_EQ(SampleIndex(1, 3, 3), 3);
  EXPECT_EQ(SampleIndex(2, 1, 3), 4);
  EXPECT_EQ(SampleIndex(3, 2, 3), 8);
}

TEST(AttemptPlan, FreshProblemGeneratesTheFirstAttempt) {
  AttemptPlan p = PlanNextAttempt({}, NoResponses, kSamples, kAttempts);
  EXPECT_FALSE(p.finished);
  EXPECT_EQ(p.attempt, 1);
  EXPECT_EQ(p.to_generate, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(p.to_evaluate.empty());
}

TEST(AttemptPlan, FailedAttemptLeadsToTheNextOne) {
  auto records = Records({Rec(1, 1, "incorrect"), Rec(1, 2, "compile_error"), Rec(1, 3, "correct")});
  AttemptPlan p = PlanNextAttempt(records, NoResponses, kSamples, kAttempts);
  EXPECT_FALSE(p.finished);
  EXPECT_EQ(p.attempt, 2);
  EXPECT_EQ(p.to_generate.size(), 3u);
}

TEST(AttemptPlan, ResumeFinishesTheInterruptedAttemptWithoutNewCalls) {
  // Sample 1 done, sample 2 answered but not evaluated, sample 3 never answered.
  auto records = Records({Rec(1, 1, "incorrect")});
  std::set<int> responses = {1, 2};
  AttemptPlan p = PlanNextAttempt(
      records, [&](int i) { return responses.count(i) > 0; }, kSamples, kAttempts);
  EXPECT_EQ(p.attempt, 1);
  EXPECT_EQ(p.to_evaluate, (std::vector<int>{2}));
  EXPECT_EQ(p.to_generate, (std::vector<int>{3}));
}

TEST(AttemptPlan, SuccessFinishesTheProblemOnceItsAttemptIsComplete) {
  // A success in attempt 1 while samples of attempt 1 are unfinished: finish the attempt first,
  // as an uninterrupted batch would have.
  auto partial = Records({Rec(1, 1, "correct", true)});
  AttemptPlan p = PlanNextAttempt(partial, NoResponses, kSamples, kAttempts);
  EXPECT_FALSE(p.finished);
  EXPECT_EQ(p.attempt, 1);
  EXPECT_EQ(p.to_generate, (std::vector<int>{2, 3}));

  auto complete = Records({Rec(1, 1, "correct", true), Rec(1, 2, "incorrect"), Rec(1, 3, "no_code")});
  AttemptPlan done = PlanNextAttempt(complete, NoResponses, kSamples, kAttempts);
  EXPECT_TRUE(done.finished);
  EXPECT_TRUE(done.solved);
}

TEST(AttemptPlan, OutOfAttemptsIsUnsolved) {
  std::map<int, SampleRecord> records;
  for (int a = 1; a <= kAttempts; ++a) {
    for (int s = 1; s <= kSamples; ++s) {
      SampleRecord r = Rec(a, s, "correct");  // correct but too slow: not a success
      records[r.id.index] = r;
    }
  }
  AttemptPlan p = PlanNextAttempt(records, NoResponses, kSamples, kAttempts);
  EXPECT_TRUE(p.finished);
  EXPECT_FALSE(p.solved);
  // More attempts on a later run continue where it stopped.
  AttemptPlan more = PlanNextAttempt(records, NoResponses, kSamples, kAttempts + 1);
  EXPECT_FALSE(more.finished);
  EXPECT_EQ(more.attempt, kAttempts + 1);
}

TEST(AttemptPlan, FailedLlmCallsAreRetriedOnResume) {
  auto records = Records({Rec(1, 1, "incorrect"), Rec(1, 2, kStatusLlmError), Rec(1, 3, "incorrect")});
  // In the running batch the failed call counts as finished: the attempt is complete.
  EXPECT_EQ(PlanNextAttempt(records, NoResponses, kSamples, kAttempts).attempt, 2);
  DropRetryableRecords(records);
  AttemptPlan p = PlanNextAttempt(records, NoResponses, kSamples, kAttempts);
  EXPECT_EQ(p.attempt, 1);
  EXPECT_EQ(p.to_generate, (std::vector<int>{2}));
}

// batch --evaluator: a sample the service could not evaluate has no verdict; its saved answer
// is evaluated again on resume (without a new LLM call: its response is on disk).
TEST(AttemptPlan, SamplesTheEvaluatorCouldNotEvaluateAreEvaluatedAgainOnResume) {
  SampleRecord unavailable = Rec(1, 2, kStatusInternalError);
  unavailable.error_category = "evaluator_unavailable";
  SampleRecord rejected = Rec(1, 3, kStatusInternalError);
  rejected.error_category = "evaluator_rejected";  // final: a 4xx will not change
  auto records = Records({Rec(1, 1, "incorrect"), unavailable, rejected});
  DropRetryableRecords(records);
  EXPECT_EQ(records.size(), 2u);
  AttemptPlan p = PlanNextAttempt(
      records, [](int index) { return index == 2; }, kSamples, kAttempts);
  EXPECT_EQ(p.attempt, 1);
  EXPECT_TRUE(p.to_generate.empty());
  EXPECT_EQ(p.to_evaluate, (std::vector<int>{2}));
}

}  // namespace
}  // namespace kbrun::batch
