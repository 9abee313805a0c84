// How outputs are judged (--tolerance, worker/kbrun_eval/judge.py), through the real binary: the
// rule is recorded, a candidate computing in bf16 is a precision downgrade, and extra draws
// that leave the problem's domain are skipped rather than failed.
#include <gtest/gtest.h>

#include "eval/eval_test_util.h"

namespace kbrun {
namespace {

using nlohmann::json;

// `kbrun eval` of tests/candidates/<candidate>.py against tests/problems/<problem>.py on the CPU.
EvalRun Eval(const std::string& candidate, const std::string& problem, std::vector<std::string> extra) {
  return RunEvalCall({.code = TestFixture("candidates", candidate),
                      .problem = problem,
                      .flags = kQuickEvalFlags,
                      .extra = std::move(extra)});
}

std::string Category(const json& result) {
  return result["error"].is_object() ? result["error"].value("category", "") : "";
}

TEST(Tolerance, EvidenceIsTheDefaultAndRecordsBothErrors) {
  auto r = Eval("correct_cpp", "1_ScaleAdd", {});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  const json& tol = r.result["tolerance"];
  EXPECT_EQ(tol["rule"], "evidence") << tol.dump();
  EXPECT_EQ(tol["fp64_reference"], true) << tol.dump();
  EXPECT_EQ(tol["k"], 128) << tol.dump();
  const json& corr = r.result["correctness"];
  ASSERT_TRUE(corr.contains("err_candidate")) << corr.dump();
  EXPECT_TRUE(corr["err_reference"].is_number()) << corr.dump();
}

TEST(Tolerance, KernelBenchRuleIsRecorded) {
  auto r = Eval("correct_cpp", "1_ScaleAdd", {"--tolerance", "kernelbench"});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  EXPECT_EQ(r.result["tolerance"]["rule"], "kernelbench");
  EXPECT_EQ(r.result["tolerance"]["atol"], 1e-2);
  EXPECT_EQ(r.result["tolerance"]["rtol"], 1e-2);
  EXPECT_EQ(r.result["correctness"]["checker"]["judge"]["rule"], "kernelbench");
}

TEST(Tolerance, AtolSelectsTheFixedRuleAndCannotBeCombinedWithTolerance) {
  auto r = Eval("correct_cpp", "1_ScaleAdd", {"--atol", "1e-3"});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["tolerance"]["rule"], "fixed");
  EXPECT_EQ(r.result["tolerance"]["atol"], 1e-3);
  auto bad = Eval("correct_cpp", "1_ScaleAdd", {"--atol", "1e-3", "--tolerance", "evidence"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(bad.result.is_null());
}

TEST(Tolerance, Bf16ArithmeticIsAPrecisionDowngrade) {
  auto r = Eval("bf16_scale_add", "1_ScaleAdd", {});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "incorrect") << r.result.dump(2).substr(0, 3000);
  EXPECT_EQ(Category(r.result), "precision_downgrade") << r.result["error"].dump();
  const json& corr = r.result["correctness"];
  ASSERT_TRUE(corr["err_candidate"].is_number()) << corr.dump();
  EXPECT_GT(corr["err_candidate"].get<double>(), 128 * corr["err_reference"].get<double>()) << corr.dump();
  // The fixed rule (what kbrun used before --tolerance) sees only a value mismatch.
  auto fixed = Eval("bf16_scale_add", "1_ScaleAdd", {"--tolerance", "fixed"});
  ASSERT_TRUE(fixed.result.is_object()) << fixed.output;
  EXPECT_EQ(Category(fixed.result), "value_mismatch") << fixed.result["error"].dump();
}

TEST(Tolerance, ExtraDrawOutsideTheDomainIsSkipped) {
  auto r = Eval("kl_div_in_domain", "3_KLDiv", {});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  const json& extra = r.result["correctness"]["checker"]["checks"]["extra"];
  EXPECT_EQ(extra["skipped"], 1) << extra.dump();  // x*0.1-0.5: negative probabilities
  EXPECT_EQ(extra["passed"], 1) << extra.dump();   // x*4+2 stays in the domain
  EXPECT_EQ(r.result["correctness"]["extra_trials_skipped"], 1);
  ASSERT_EQ(r.result["tolerance"]["skipped_extra_draws"].size(), 1u) << r.result["tolerance"].dump();
}

TEST(VariedShapes, CheckedAtHalfAndDoubleTheBatchSize) {
  auto r = Eval("kl_div_in_domain", "3_KLDiv", {"--shapes", "varied"});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  EXPECT_EQ(r.result["correctness"]["shapes"], "varied");
  const json& shape = r.result["correctness"]["checker"]["checks"]["shape"];
  EXPECT_EQ(shape["passed"], 2) << shape.dump();
  EXPECT_EQ(shape["skipped"], 0) << shape.dump();
}

TEST(VariedShapes, AKernelSpecialisedToTheBatchSizeFailsOnlyWhenVaried) {
  auto fixed = Eval("kl_div_fixed_batch", "3_KLDiv", {});
  ASSERT_TRUE(fixed.result.is_object()) << fixed.output;
  EXPECT_TRUE(fixed.result["correctness"]["checker"]["failure"].is_null())
      << fixed.result["correctness"]["checker"].dump();
  auto varied = Eval("kl_div_fixed_batch", "3_KLDiv", {"--shapes", "varied"});
  ASSERT_TRUE(varied.result.is_object()) << varied.output;
  EXPECT_EQ(varied.result["status"], "incorrect") << varied.result.dump(2).substr(0, 3000);
  EXPECT_EQ(Category(varied.result), "failed_varied_shapes") << varied.result["error"].dump();
}

TEST(VariedShapes, AProblemWithoutBatchSizeIsSkippedAndRecorded) {
  auto r = Eval("correct_cpp", "1_ScaleAdd", {"--shapes", "varied"});
  ASSERT_TRUE(r.result.is_object()) << r.output;
  EXPECT_EQ(r.result["status"], "correct") << r.result.dump(2).substr(0, 3000);
  EXPECT_EQ(r.result["correctness"]["checker"]["checks"]["shape"]["skipped"], 2);
  ASSERT_EQ(r.result["correctness"]["shape_skipped"].size(), 2u) << r.result["correctness"].dump();
  EXPECT_NE(r.result["correctness"]["shape_skipped"][0].get<std::string>().find("no module-level batch_size"),
            std::string::npos);
}

}  // namespace
}  // namespace kbrun
