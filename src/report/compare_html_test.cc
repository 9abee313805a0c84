// kbrun compare --html (compare_html.h): the page from two small trees, its numbers against the
// comparison's JSON, the hostile problem name escaped. In a browser: tests/report/compare_browser_test.py.
#include "report/compare_html.h"

#include <gtest/gtest.h>

#include "report/budget_tree_test_util.h"
#include "report/html_parts.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

using nlohmann::json;

const char* kHostile = "3_<img src=x onerror=alert(1)>";

struct Pair {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-compare-html-");
  Pair() {
    test_tree::WriteTree(root / "a", {{"1_Up", 1, 1, 1, "correct", "", 1.0},
                                      {"2_Fixed", 1, 1, 1, "incorrect", "value_mismatch"},
                                      {kHostile, 1, 1, 1, "correct", "", 2.0}});
    test_tree::WriteTree(root / "b", {{"1_Up", 1, 1, 1, "correct", "", 3.0},
                                      {"2_Fixed", 1, 1, 1, "correct", "", 1.1},
                                      {kHostile, 1, 1, 1, "compile_error", "build_failed"}});
  }
  ~Pair() { fs::remove_all(root); }
};

TEST(CompareHtml, NumbersMatchTheJsonAndStringsAreEscaped) {
  Pair pair;
  Comparison c = Compare(BuildReport(pair.root / "a"), BuildReport(pair.root / "b"));
  json doc = ComparisonJson(c);
  std::string page = CompareHtml(c);
  EXPECT_TRUE(page.starts_with("<!DOCTYPE html>"));
  EXPECT_TRUE(Contains(page, "default-src 'none'")) << "the policy that forbids scripts and fetches";
  EXPECT_FALSE(Contains(page, "<img")) << "the hostile name made an element";
  EXPECT_FALSE(Contains(page, "<script"));
  EXPECT_TRUE(Contains(page, "3_&lt;img src=x onerror=alert(1)&gt;"));

  const json& s = doc["summary"];
  ASSERT_TRUE(s["geomean_ratio"].is_number());
  EXPECT_DOUBLE_EQ(s["geomean_ratio"].get<double>(), 3.0);  // exp(log 3): 3.0000000000000004
  const json& ci = s["geomean_ratio_interval"];
  EXPECT_TRUE(Contains(page, "<span id=\"geomean-ratio\" data-ratio=\"" + html::Num(s["geomean_ratio"].get<double>()) +
                                 "\" data-over=\"1\" data-low=\"" + html::Num(ci["low"].get<double>()) +
                                 "\" data-high=\"" + html::Num(ci["high"].get<double>()) + "\""))
      << page;
  // 1_Up: B/A 3.0 with its timing interval; 2_Fixed in the verdict changes; the hostile one broken.
  const json& up = doc["problems"][0];
  EXPECT_TRUE(Contains(page,
                       "data-problem=\"1_Up\" data-change=\"correct_both\" data-a-speedup=\"1\" "
                       "data-b-speedup=\"3\" data-ratio=\"3\" data-ratio-low=\"" +
                           html::Num(up["ratio_interval"]["low"].get<double>()) + "\""))
      << page;
  auto verdicts = page.substr(page.find("id=\"verdict-changes\""));
  verdicts = verdicts.substr(0, verdicts.find("</table>"));
  EXPECT_TRUE(Contains(verdicts, "data-problem=\"2_Fixed\" data-change=\"fixed\""));
  EXPECT_TRUE(Contains(verdicts, "data-change=\"broken\""));
  EXPECT_FALSE(Contains(verdicts, "1_Up"));
  EXPECT_TRUE(Contains(page, "<circle class=\"ratio-point\""));
  EXPECT_FALSE(Contains(page, "not-like-for-like"));
}

TEST(CompareHtml, WarnsWhenNotLikeForLike) {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-compare-html-warn-");
  test_tree::WriteTree(root / "a", {{"1_Up", 1, 1, 1, "correct", "", 1.0}});
  test_tree::TreeSettings other;
  other.gpu = "NVIDIA H100";
  test_tree::WriteTree(root / "b", {{"1_Up", 1, 1, 1, "incorrect", "value_mismatch"}}, other);
  std::string page = CompareHtml(Compare(BuildReport(root / "a"), BuildReport(root / "b")));
  EXPECT_TRUE(Contains(page, "id=\"not-like-for-like\""));
  EXPECT_TRUE(Contains(page, "<tr data-setting=\"devices\" class=\"differs\" data-differs=\"true\">"));
  EXPECT_TRUE(Contains(page, "No problem is correct in both runs."));
  fs::remove_all(root);
}

}  // namespace
}  // namespace kbrun::report
