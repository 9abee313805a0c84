#include "util/line_diff.h"

#include <gtest/gtest.h>

namespace kbrun {
namespace {

TEST(LineDiff, KeepsTheLongestCommonSubsequence) {
  // a b c d / a c x d: b removed, x added, a c d kept.
  auto d = LineDiff("a\nb\nc\nd\n", "a\nc\nx\nd\n");
  EXPECT_EQ(DiffText(d), "  a\n- b\n  c\n+ x\n  d\n");
}

TEST(LineDiff, EmptySidesAreAllAddedOrAllRemoved) {
  EXPECT_EQ(DiffText(LineDiff("", "x\ny")), "+ x\n+ y\n");
  EXPECT_EQ(DiffText(LineDiff("x\ny\n", "")), "- x\n- y\n");
  EXPECT_TRUE(LineDiff("", "").empty());
  EXPECT_EQ(DiffText(LineDiff("same\n", "same")), "  same\n");  // a last newline changes no line
}

TEST(LineDiff, ChangedLineInTheMiddleIsRemovedThenAdded) {
  auto d = LineDiff("def f():\n    return 1\n# end\n", "def f():\n    return 2\n# end\n");
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[1].kind, DiffLine::Kind::kRemoved);
  EXPECT_EQ(d[1].text, "    return 1");
  EXPECT_EQ(d[2].kind, DiffLine::Kind::kAdded);
  EXPECT_EQ(d[2].text, "    return 2");
}

TEST(LineDiff, OverTheCellLimitTheMiddleIsReplacedWhole) {
  // Same head and tail; middle 3 x 3 = 9 cells > 4: no LCS, all removed then all added.
  auto d = LineDiff("h\n1\n2\n3\nt\n", "h\n2\n3\n4\nt\n", 4);
  EXPECT_EQ(DiffText(d), "  h\n- 1\n- 2\n- 3\n+ 2\n+ 3\n+ 4\n  t\n");
  EXPECT_EQ(DiffText(LineDiff("h\n1\n2\n3\nt\n", "h\n2\n3\n4\nt\n")), "  h\n- 1\n  2\n  3\n+ 4\n  t\n");
}

}  // namespace
}  // namespace kbrun
