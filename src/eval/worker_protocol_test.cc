// The fd 3 protocol: one nonce'd result line is believed, anything else that claims to be a
// result marks the run forged; baseline lines only for names asked for, once each.
#include "eval/worker_protocol.h"

#include <gtest/gtest.h>

namespace kbrun::eval {
namespace {

using nlohmann::json;

TEST(WorkerProtocol, NoncesAreFreshHex) {
  std::string a = MakeNonce(), b = MakeNonce();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(WorkerProtocol, OneResultLineWithTheNonceIsBelieved) {
  int lines = 0;
  bool forged = false;
  std::optional<json> out;
  EXPECT_FALSE(ReadResultLine("stage compile", "n1", lines, forged, out));
  EXPECT_TRUE(ReadResultLine(R"(result n1 {"ok": 1})", "n1", lines, forged, out));
  EXPECT_FALSE(forged);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["ok"], 1);
  // A second one, even with the nonce, is a forgery; the first stays.
  EXPECT_TRUE(ReadResultLine(R"(result n1 {"ok": 2})", "n1", lines, forged, out));
  EXPECT_TRUE(forged);
  EXPECT_EQ((*out)["ok"], 1);
  EXPECT_EQ(lines, 2);
}

TEST(WorkerProtocol, AResultLineWithoutTheNonceIsForged) {
  int lines = 0;
  bool forged = false;
  std::optional<json> out;
  EXPECT_TRUE(ReadResultLine(R"(result guess {"status": "correct"})", "n1", lines, forged, out));
  EXPECT_TRUE(forged);
  EXPECT_FALSE(out);
  // Not a JSON object: counted, not believed.
  lines = 0;
  forged = false;
  EXPECT_TRUE(ReadResultLine("result n1 [1]", "n1", lines, forged, out));
  EXPECT_FALSE(forged);
  EXPECT_FALSE(out);
}

TEST(WorkerProtocol, BaselineLinesForWantedNamesOnce) {
  json out = json::object();
  const std::vector<std::string> wanted = {"eager", "compile"};
  EXPECT_FALSE(ReadBaselineLine(R"(baseline other compile {"median_ms": 1})", "n1", wanted, out));
  EXPECT_TRUE(ReadBaselineLine(R"(baseline n1 compile {"median_ms": 1})", "n1", wanted, out));
  EXPECT_TRUE(ReadBaselineLine(R"(baseline n1 compile {"median_ms": 9})", "n1", wanted, out));
  EXPECT_TRUE(ReadBaselineLine(R"(baseline n1 cudagraph {"median_ms": 2})", "n1", wanted, out));
  EXPECT_TRUE(ReadBaselineLine("baseline n1 nospace", "n1", wanted, out));
  EXPECT_EQ(out, json({{"compile", {{"median_ms", 1}}}}));
}

}  // namespace
}  // namespace kbrun::eval
