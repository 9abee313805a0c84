// kbrun export --format csv: the baseline columns (export.h kCsvBaselines), on the tree of a run with
// --baseline compile --baseline cudagraph (budget_tree_test_util.h BaselineTreeSamples).
#include <algorithm>

#include <gtest/gtest.h>

#include "report/budget_tree_test_util.h"
#include "report/export.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

struct BaselineTree {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-export-baselines-");
  BaselineTree() { test_tree::WriteTree(dir, test_tree::BaselineTreeSamples()); }
  ~BaselineTree() { fs::remove_all(dir); }
};

TEST(ExportBaselines, HeaderHasFiveColumnsPerBaselineAfterTheOldOnes) {
  auto header = CsvHeader();
  ASSERT_EQ(header.size(), 15u + 3 * 5);
  EXPECT_EQ(header[14], "code_path");  // the columns before stay where they were
  EXPECT_EQ(std::vector<std::string>(header.begin() + 15, header.begin() + 20),
            (std::vector<std::string>{"eager_status", "eager_speedup", "eager_median_ms", "eager_speedup_over_eager",
                                      "eager_reason"}));
  EXPECT_EQ(header[20], "compile_status");
  EXPECT_EQ(header[25], "cudagraph_status");
  EXPECT_EQ(header.back(), "cudagraph_reason");
}

TEST(ExportBaselines, SpeedupsAndAvailabilityPerSample) {
  BaselineTree tree;
  auto rows = LoadExportRows(tree.dir);
  ASSERT_EQ(rows.size(), 5u);
  using V = std::vector<std::string>;
  // 1_A #1, correct 2.0x: eager, compile (0.8 ms: 0.8x; compile 2.5x over eager), cudagraph (1.6 ms).
  EXPECT_EQ(CsvBaselineFields(rows[0].doc), (V{"measured", "2", "2", "", "",         //
                                               "measured", "0.8", "0.8", "2.5", "",  //
                                               "measured", "1.6", "1.6", "1.25", ""}));
  // 1_A #2: no cudagraph recorded.
  EXPECT_EQ(CsvBaselineFields(rows[1].doc), (V{"measured", "1.5", "1.5", "", "",  //
                                               "measured", "1.2", "1.2", "1.25", "", "", "", "", "", ""}));
  // 2_B #1: compile unavailable: the first line of its reason.
  auto b = CsvBaselineFields(rows[2].doc);
  EXPECT_EQ(b[5], "unavailable");
  EXPECT_EQ(b[6], "");
  EXPECT_EQ(b[9], "compile failed: RuntimeError: <img src=x onerror=alert(1)>");
  EXPECT_EQ(b[10], "measured");
  EXPECT_EQ(b[11], "2.4");
  // 3_C #1, incorrect: every baseline skipped, no speedups.
  auto c = CsvBaselineFields(rows[3].doc);
  EXPECT_EQ(c[0], "skipped");
  EXPECT_EQ(c[4], "the reference was not timed (incorrect/value_mismatch)");
  EXPECT_EQ(c[5], "skipped");
  EXPECT_EQ(c[10], "skipped");
  EXPECT_EQ(c[1], "");
  // 4_D #1: an older kbrun recorded none: all empty.
  EXPECT_EQ(CsvBaselineFields(rows[4].doc), V(15, ""));

  // In the CSV text: the same fields, at the header's columns.
  std::string csv = CsvText(rows);
  EXPECT_TRUE(Contains(csv, ",measured,2,2,,,measured,0.8,0.8,2.5,,measured,1.6,1.6,1.25,\r\n")) << csv;
  EXPECT_TRUE(Contains(csv, ",,,,,,,,,,,,,,\r\n")) << csv;  // 4_D
}

// A speedup over a baseline is a correct sample's: a wrong sample's recorded figure is left out.
TEST(ExportBaselines, NoSpeedupForAWrongSample) {
  nlohmann::json doc = {
      {"correct", false},
      {"eval", {{"baselines", {{"compile", {{"status", "measured"}, {"median_ms", 3.0}, {"speedup", 1.5}}}}}}}};
  auto fields = CsvBaselineFields(doc);
  EXPECT_EQ(fields[5], "measured");
  EXPECT_EQ(fields[6], "");
  EXPECT_EQ(fields[7], "3");
}

}  // namespace
}  // namespace kbrun::report
