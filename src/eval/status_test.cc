// Status names, the baselines' names and kbrun eval's exit codes (eval/status.cc).
#include <gtest/gtest.h>

#include "eval/evaluation.h"

namespace kbrun::eval {
namespace {

TEST(Status, NamesRoundTrip) {
  for (Status s : {Status::kCorrect, Status::kIncorrect, Status::kCompileError, Status::kRuntimeError, Status::kTimeout,
                   Status::kRejected}) {
    EXPECT_EQ(ParseStatus(StatusName(s)), s);
  }
  EXPECT_EQ(StatusName(Status::kCompileError), "compile_error");
  EXPECT_EQ(ParseStatus("internal_error"), std::nullopt);
}

TEST(Status, ExitCodes) {
  EvalResult r;
  r.status = Status::kCorrect;
  r.speedup = 1.5;
  EXPECT_EQ(ExitCodeFor(r), 0);
  EXPECT_EQ(ExitCodeFor(r, 2.0), 1);
  r.status = Status::kIncorrect;
  EXPECT_EQ(ExitCodeFor(r), 2);
  r.status = Status::kTimeout;
  EXPECT_EQ(ExitCodeFor(r), 2);
}

TEST(Status, BaselinesAreNormalizedWithEagerFirst) {
  EXPECT_EQ(BaselineNames(), (std::vector<std::string>{"eager", "compile", "cudagraph"}));
  EXPECT_TRUE(IsBaselineName("cudagraph"));
  EXPECT_FALSE(IsBaselineName("inductor"));
  EXPECT_EQ(NormalizeBaselines({"cudagraph", "compile", "cudagraph"}),
            (std::vector<std::string>{"eager", "compile", "cudagraph"}));
  EXPECT_EQ(NormalizeBaselines({}), std::vector<std::string>{"eager"});
}

}  // namespace
}  // namespace kbrun::eval
