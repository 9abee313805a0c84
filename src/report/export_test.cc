// kbrun export against the tree of budget_tree_test_util.h (12 samples of 4 problems).
//
// The KernelBench fields targeted, checked by reading KernelBench's code at commit 423217d
// (scripts/eval_from_generations.py add_to_eval_results_file, which writes the file;
// scripts/benchmark_eval_analysis.py, which reads sample_id 0 of each str(problem_id) and its
// compiled, correctness and runtime; src/kernelbench/score.py, which divides the baseline's
// mean ms by runtime), not by running it:
//   eval_results.json = {"<problem_id>": [entry, ...]}, problem_id the number in the problem's
//   file name (1 for 1_A), entry =
//     sample_id       int, 0-based sample of that problem (kbrun: N - 1, so attempt 1's first
//                     sample is sample 0, the one benchmark_eval_analysis.py reads)
//     compiled        bool, the candidate built and loaded
//     correctness     bool, every correctness trial passed
//     runtime         float, the candidate's mean time in ms; -1.0 when not measured
//     runtime_stats   {mean, std, min, max, num_trials} in ms ({} when not measured)
//     ref_runtime, ref_runtime_stats   the same for the reference (newer KernelBench versions)
//     metadata        {hardware, device, correctness_trials "(p / n)", and on failure one of
//                     compilation_error, runtime_error, correctness_issue, other_error}
//   kernels: level_<L>_problem_<id>_sample_<sample_id>_kernel.py (its runs/<run> layout).
//   submission.json = {"metadata": {...}, "kernels": [{level, problem_id, sample_id, code,
//                     runtime, ref_runtime, speedup, correctness, ...}]}: kbrun's reading of the
//                     leaderboard's {metadata, kernels} shape (not in KernelBench's repository,
//                     so not checked), the best correct kernel per problem.
#include "report/export.h"

#include <gtest/gtest.h>

#include "report/budget_tree_test_util.h"
#include "report/kbrun_stdout_test_util.h"
#include "report/report.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {
namespace {

using nlohmann::json;

// RFC 4180 reader: quoted fields may hold commas, CR/LF and doubled quotes; records end in CRLF.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      EXPECT_TRUE(field.empty()) << "quote inside an unquoted field at " << i;
      quoted = was_quoted = true;
    } else if (c == ',') {
      record.push_back(field);
      field.clear();
      was_quoted = false;
    } else if (c == '\r') {
      EXPECT_TRUE(i + 1 < text.size() && text[i + 1] == '\n') << "bare CR at " << i;
      record.push_back(field);
      records.push_back(record);
      record.clear();
      field.clear();
      was_quoted = false;
      ++i;
    } else {
      EXPECT_NE(c, '\n') << "bare LF at " << i;
      field += c;
    }
  }
  EXPECT_FALSE(quoted) << "unterminated quoted field";
  EXPECT_TRUE(field.empty() && record.empty() && !was_quoted) << "last record without CRLF";
  return records;
}

struct Tree {
  fs::path dir;
  // A folder name with a comma and a quote: the code paths in the CSV need quoting.
  Tree() : dir(MakeUniqueDir(fs::temp_directory_path(), "kbrun-export,\"q\"-")) { test_tree::WriteBudgetTree(dir); }
  ~Tree() { fs::remove_all(dir); }
};

TEST(Export, CsvFieldQuoting) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(CsvField(""), "");
}

TEST(Export, LevelFromPath) {
  EXPECT_EQ(LevelFromPath("/kb/KernelBench/level1/19_ReLU.py"), 1);
  EXPECT_EQ(LevelFromPath("/kb/KernelBench/level12"), 12);
  EXPECT_EQ(LevelFromPath("runs/x/level_2_problem_3_sample_0_kernel.py"), 2);
  EXPECT_EQ(LevelFromPath("/problems/19_ReLU.py"), std::nullopt);
  EXPECT_EQ(LevelFromPath("/home/levelheaded/x.py"), std::nullopt);
}

TEST(Export, CsvParsesBackToOneRowPerSample) {
  Tree tree;
  auto rows = ParseCsv(CsvText(LoadExportRows(tree.dir)));
  ASSERT_EQ(rows.size(), 13u);  // header + 12 samples
  EXPECT_EQ(rows[0], CsvHeader());
  for (const auto& row : rows) ASSERT_EQ(row.size(), CsvHeader().size());
  auto col = [&](const std::string& name) {
    auto header = CsvHeader();
    return static_cast<size_t>(std::find(header.begin(), header.end(), name) - header.begin());
  };
  // 1_A #1: correct 2.0x, reference 2.0 ms, candidate 1.0 ms (medians).
  const auto& a1 = rows[1];
  EXPECT_EQ(a1[col("problem")], "1_A");
  EXPECT_EQ(a1[col("problem_number")], "1");
  EXPECT_EQ(a1[col("level")], "1");
  EXPECT_EQ(a1[col("index")], "1");
  EXPECT_EQ(a1[col("attempt")], "1");
  EXPECT_EQ(a1[col("sample")], "1");
  EXPECT_EQ(a1[col("status")], "correct");
  EXPECT_EQ(a1[col("category")], "");
  EXPECT_EQ(a1[col("correct")], "true");
  EXPECT_DOUBLE_EQ(std::stod(a1[col("speedup")]), 2.0);
  EXPECT_DOUBLE_EQ(std::stod(a1[col("reference_median_ms")]), 2.0);
  EXPECT_DOUBLE_EQ(std::stod(a1[col("candidate_median_ms")]), 1.0);
  EXPECT_EQ(a1[col("timing_method")], "cuda_events_launch_hidden_l2_flush");
  EXPECT_EQ(a1[col("tolerance_rule")], "evidence");
  EXPECT_EQ(a1[col("code_path")], (tree.dir / "1_A" / "code_1.py").string());  // had a comma and a quote
  EXPECT_EQ(*ReadFile(a1[col("code_path")]), "# 1_A sample 1\nclass ModelNew:\n    pass\n");
  // 2_B #1: compile error; no speedup, no times.
  const auto& b1 = rows[4];
  EXPECT_EQ(b1[col("problem")], "2_B");
  EXPECT_EQ(b1[col("status")], "compile_error");
  EXPECT_EQ(b1[col("category")], "build_failed");
  EXPECT_EQ(b1[col("correct")], "false");
  EXPECT_EQ(b1[col("speedup")], "");
  EXPECT_EQ(b1[col("reference_median_ms")], "");
  // 3_C #4: attempt 2, sample 1.
  const auto& c4 = rows[10];
  EXPECT_EQ(c4[col("index")], "4");
  EXPECT_EQ(c4[col("attempt")], "2");
  EXPECT_EQ(c4[col("sample")], "1");
  EXPECT_DOUBLE_EQ(std::stod(c4[col("speedup")]), 3.0);
  // 4_D #2: no code, never evaluated; the level comes from the batch's problems_dir.
  const auto& d2 = rows[12];
  EXPECT_EQ(d2[col("problem")], "4_D");
  EXPECT_EQ(d2[col("status")], "no_code");
  EXPECT_EQ(d2[col("code_path")], "");
  EXPECT_EQ(d2[col("level")], "1");
  EXPECT_EQ(d2[col("timing_method")], "");
}

TEST(Export, KernelBenchEvalResultsFields) {
  Tree tree;
  json results = KernelBenchEvalResults(LoadExportRows(tree.dir));
  ASSERT_EQ(results.size(), 4u);
  ASSERT_EQ(results["1"].size(), 3u);
  ASSERT_EQ(results["3"].size(), 4u);
  ASSERT_EQ(results["4"].size(), 2u);
  const json& a0 = results["1"][0];
  EXPECT_EQ(a0["sample_id"], 0);
  EXPECT_EQ(a0["compiled"], true);
  EXPECT_EQ(a0["correctness"], true);
  EXPECT_NEAR(a0["runtime"].get<double>(), 1.1, 1e-12);      // candidate mean
  EXPECT_NEAR(a0["ref_runtime"].get<double>(), 2.2, 1e-12);  // reference mean
  EXPECT_NEAR(a0["runtime_stats"]["mean"].get<double>(), 1.1, 1e-12);
  EXPECT_NEAR(a0["runtime_stats"]["max"].get<double>(), 1.5, 1e-12);
  EXPECT_EQ(a0["runtime_stats"]["num_trials"], 100);
  EXPECT_EQ(a0["metadata"]["hardware"], "NVIDIA H200");
  EXPECT_EQ(a0["metadata"]["device"], "cuda:0");
  EXPECT_EQ(a0["metadata"]["correctness_trials"], "(5 / 5)");
  EXPECT_DOUBLE_EQ(a0["metadata"]["kbrun"]["speedup"].get<double>(), 2.0);
  EXPECT_FALSE(a0["metadata"].contains("correctness_issue"));
  const json& a1 = results["1"][1];  // incorrect
  EXPECT_EQ(a1["sample_id"], 1);
  EXPECT_EQ(a1["compiled"], true);
  EXPECT_EQ(a1["correctness"], false);
  EXPECT_DOUBLE_EQ(a1["runtime"].get<double>(), -1.0);
  EXPECT_TRUE(a1["runtime_stats"].empty());
  EXPECT_TRUE(Contains(a1["metadata"]["correctness_issue"].get<std::string>(), "hand-written incorrect"));
  const json& b0 = results["2"][0];  // compile error
  EXPECT_EQ(b0["compiled"], false);
  EXPECT_TRUE(b0["metadata"].contains("compilation_error"));
  EXPECT_EQ(results["3"][3]["sample_id"], 3);  // attempt 2, sample 1 = N 4
  EXPECT_EQ(results["3"][3]["metadata"]["kbrun"]["attempt"], 2);
  const json& d1 = results["4"][1];  // no code
  EXPECT_EQ(d1["compiled"], false);
  EXPECT_EQ(d1["correctness"], false);
  EXPECT_TRUE(d1["metadata"].contains("other_error"));
  EXPECT_EQ(results["4"][0]["metadata"].value("runtime_error", ""), "hand-written runtime_error, with \"quotes\"");
}

TEST(Export, KernelBenchRunLayoutAndSubmission) {
  Tree tree;
  fs::path out = tree.dir / "kb-out";
  auto written = WriteKernelBenchExport(tree.dir, out, std::nullopt);
  EXPECT_EQ(written.size(), 11u + 2u);  // 11 samples with code, eval_results.json, submission.json
  EXPECT_TRUE(fs::exists(out / "kernels" / "level_1_problem_1_sample_0_kernel.py"));
  EXPECT_EQ(*ReadFile(out / "kernels" / "level_1_problem_3_sample_3_kernel.py"),
            "# 3_C sample 4\nclass ModelNew:\n    pass\n");
  EXPECT_FALSE(fs::exists(out / "kernels" / "level_1_problem_4_sample_1_kernel.py"));  // no code
  auto eval_results = json::parse(*ReadFile(out / "eval_results.json"));
  EXPECT_EQ(eval_results, KernelBenchEvalResults(LoadExportRows(tree.dir)));

  auto sub = json::parse(*ReadFile(out / "submission.json"));
  ASSERT_TRUE(sub.contains("metadata"));
  ASSERT_TRUE(sub.contains("kernels"));
  EXPECT_EQ(sub["metadata"]["level"], 1);
  EXPECT_EQ(sub["metadata"]["model"], "test-model");
  EXPECT_EQ(sub["metadata"]["hardware"], "NVIDIA H200");
  EXPECT_EQ(sub["metadata"]["num_problems"], 4);
  const json& kernels = sub["kernels"];
  ASSERT_EQ(kernels.size(), 3u);  // 4_D has no correct kernel
  EXPECT_EQ(kernels[0]["problem_id"], 1);
  EXPECT_EQ(kernels[0]["sample_id"], 0);  // 2.0x beats #3's 0.5x
  EXPECT_DOUBLE_EQ(kernels[0]["speedup"].get<double>(), 2.0);
  EXPECT_EQ(kernels[0]["code"], "# 1_A sample 1\nclass ModelNew:\n    pass\n");
  EXPECT_EQ(kernels[1]["problem_id"], 2);
  EXPECT_EQ(kernels[1]["sample_id"], 1);
  EXPECT_NEAR(kernels[1]["runtime"].get<double>(), 1.1, 1e-12);
  EXPECT_NEAR(kernels[1]["ref_runtime"].get<double>(), 1.65, 1e-12);
  EXPECT_EQ(kernels[2]["problem_id"], 3);
  EXPECT_EQ(kernels[2]["attempt"], 2);
  EXPECT_EQ(kernels[2]["sample_id"], 3);
  EXPECT_EQ(kernels[2]["correctness"], true);
  EXPECT_EQ(kernels[2]["kernel_file"], "kernels/level_1_problem_3_sample_3_kernel.py");
}

TEST(Export, KernelBenchNeedsALevel) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-export-nolevel-");
  fs::copy(fs::path(KBRUN_TEST_DATA_DIR) / "batch/report_tree", dir, fs::copy_options::recursive);
  EXPECT_THROW(WriteKernelBenchExport(dir, dir / "out", std::nullopt), std::invalid_argument);
  WriteKernelBenchExport(dir, dir / "out", 2);
  auto sub = json::parse(*ReadFile(dir / "out" / "submission.json"));
  EXPECT_EQ(sub["metadata"]["level"], 2);
  fs::remove_all(dir);
}

TEST(Export, CommandLine) {
  Tree tree;
  std::string dir = "'" + tree.dir.string() + "'";  // the name holds a comma and a double quote
  Ran csv = KbrunStdout("export " + dir + " --format csv");
  EXPECT_EQ(csv.exit_code, 0);
  EXPECT_EQ(csv.out, CsvText(LoadExportRows(tree.dir)));
  EXPECT_EQ(ParseCsv(csv.out).size(), 13u);

  Ran to_file = KbrunStdout("export " + dir + " --format csv --output " + dir + "/rows.csv");
  EXPECT_EQ(to_file.exit_code, 0);
  EXPECT_EQ(to_file.out, "");
  EXPECT_EQ(*ReadFile(tree.dir / "rows.csv"), csv.out);

  Ran kb = KbrunStdout("export " + dir + " --format kernelbench");
  EXPECT_EQ(kb.exit_code, 0);
  EXPECT_TRUE(fs::exists(tree.dir / "kernelbench" / "eval_results.json"));
  EXPECT_TRUE(fs::exists(tree.dir / "kernelbench" / "submission.json"));

  EXPECT_EQ(KbrunStdout("export " + dir + " --format xml").exit_code, 64);
  EXPECT_EQ(KbrunStdout("export " + dir).exit_code, 64);  // --format is required
  EXPECT_EQ(KbrunStdout("export /nonexistent/results --format csv").exit_code, 66);
  fs::path no_level = tree.dir / "no-level";
  fs::copy(fs::path(KBRUN_TEST_DATA_DIR) / "batch/report_tree", no_level, fs::copy_options::recursive);
  EXPECT_EQ(KbrunStdout("export '" + no_level.string() + "' --format kernelbench").exit_code, 64);

  Ran help = KbrunStdout("export --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(Contains(help.out, "--format")) << help.out;
  EXPECT_TRUE(Contains(help.out, "kernelbench")) << help.out;
}

// `kbrun report --json`: stdout is the JSON document of detailed_report.json and nothing else.
TEST(Report, JsonFlagPrintsTheDocumentOnStdout) {
  fs::path dir = MakeUniqueDir(fs::temp_directory_path(), "kbrun-report-json-");
  test_tree::WriteBudgetTree(dir);
  Ran ran = KbrunStdout("report --json '" + dir.string() + "'");
  EXPECT_EQ(ran.exit_code, 0) << ran.out;
  auto printed = nlohmann::json::parse(ran.out);  // throws (fails) on anything but one JSON document
  auto written = nlohmann::json::parse(*ReadFile(dir / "detailed_report.json"));
  EXPECT_EQ(printed, written);
  EXPECT_EQ(printed["overall"]["budget"]["pass_at_k"]["by_k"].size(), 3u);
  fs::remove_all(dir);
}

// `kbrun compare A B` (the comparison itself: compare_test.cc): the budget tree against the same
// samples judged by another tolerance rule.
TEST(CompareCommand, EndToEnd) {
  fs::path root = MakeUniqueDir(fs::temp_directory_path(), "kbrun-compare-cli-");
  test_tree::WriteBudgetTree(root / "a");
  test_tree::TreeSettings kernelbench;
  kernelbench.tolerance_rule = "kernelbench";
  test_tree::WriteTree(root / "b", test_tree::BudgetTreeSamples(), kernelbench);
  std::string a = "'" + (root / "a").string() + "'", b = "'" + (root / "b").string() + "'";

  Ran text = KbrunStdout("compare " + a + " " + b);
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_TRUE(Contains(text.out, "Problems       4: 4 in both, 0 only in A, 0 only in B")) << text.out;
  EXPECT_TRUE(Contains(text.out, "Geomean B/A    1.000x over 3 problems correct in both")) << text.out;
  EXPECT_TRUE(Contains(text.out, "tolerance rule: A evidence, B kernelbench")) << text.out;

  Ran as_json = KbrunStdout("compare --json " + a + " " + b);
  EXPECT_EQ(as_json.exit_code, 0);
  json doc = json::parse(as_json.out);  // one JSON document and nothing else
  EXPECT_EQ(doc["summary"]["correct_both"], 3);
  EXPECT_EQ(doc["like_for_like"], false);

  Ran to_file = KbrunStdout("compare --json " + a + " " + b + " --output '" + (root / "cmp.json").string() + "'");
  EXPECT_EQ(to_file.exit_code, 0);
  EXPECT_EQ(to_file.out, "");
  EXPECT_EQ(json::parse(*ReadFile(root / "cmp.json"))["summary"], doc["summary"]);
  EXPECT_FALSE(fs::exists(root / "a" / "detailed_report.json"));  // compare reads, never writes the runs

  EXPECT_EQ(KbrunStdout("compare " + a + " /nonexistent/results").exit_code, 66);
  EXPECT_EQ(KbrunStdout("compare /nonexistent/results " + b).exit_code, 66);
  EXPECT_EQ(KbrunStdout("compare " + a + " " + b + " --bogus").exit_code, 64);
  EXPECT_EQ(KbrunStdout("compare " + a).exit_code, 64);  // B is required
  Ran version = KbrunStdout("compare --version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, std::string("kbrun ") + KBRUN_VERSION + "\n");
  Ran help = KbrunStdout("compare --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(Contains(help.out, "within 5%")) << help.out;
  fs::remove_all(root);
}

}  // namespace
}  // namespace kbrun::report
