// `kbrun export`: a batch's results tree in other tools' formats (docs/RESULTS.md "kbrun export").
//   csv:         one row per evaluated sample (every attempt), RFC 4180 quoting.
//   kernelbench: KernelBench's eval_results.json (per problem id, per sample), its run layout of
//                kernel files, and a leaderboard-style submission {"metadata", "kernels"} with the
//                best correct kernel of each problem.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kbrun::report {

namespace fs = std::filesystem;

// One result_N.json, flattened. Times in ms; nullopt where not measured.
struct ExportRow {
  std::string problem;
  int problem_number = 0;
  std::optional<int> level;  // from the problem's path (".../level1/...") or the batch's problems_dir
  int index = 0, attempt = 0, sample = 0;
  std::string status, category;  // category: error.category; empty when none
  bool compiled = false, correct = false;
  std::optional<double> speedup;
  std::optional<double> reference_median_ms, candidate_median_ms;
  std::string timing_method, tolerance_rule;
  std::string code_path;  // results_dir/<problem>/code_N.py as given; empty when the sample has no code
  nlohmann::json doc;     // the whole result_N.json
};

// Every result file of the batch, in problem order (as the report lists them), then by N.
// Throws FolderError (report.h) like BuildReport.
std::vector<ExportRow> LoadExportRows(const fs::path& results_dir);

// "level1" anywhere in a path -> 1.
std::optional<int> LevelFromPath(const std::string& path);

// RFC 4180: a field with a comma, quote, CR or LF is quoted, quotes doubled; lines end in CRLF.
std::string CsvField(const std::string& value);
// The baselines (--baseline) the CSV has columns for, each: <name>_status (measured, unavailable,
// skipped; empty: not recorded), <name>_speedup (the candidate's speedup over it, correct samples),
// <name>_median_ms, <name>_speedup_over_eager (the baseline's own gain) and <name>_reason (the first
// line of why it is not measured).
inline const std::vector<std::string> kCsvBaselines = {"eager", "compile", "cudagraph"};
std::vector<std::string> CsvHeader();
// The baseline columns of one result_N.json, in CsvHeader's order.
std::vector<std::string> CsvBaselineFields(const nlohmann::json& doc);
std::string CsvText(const std::vector<ExportRow>& rows);

// KernelBench's eval_results.json: {"<problem_id>": [{"sample_id", "compiled", "correctness",
// "runtime", "runtime_stats", "ref_runtime", "ref_runtime_stats", "metadata"}, ...]}.
nlohmann::json KernelBenchEvalResults(const std::vector<ExportRow>& rows);
// {"metadata": {...}, "kernels": [...]}: the best correct kernel per problem, code inline.
nlohmann::json KernelBenchSubmission(const fs::path& results_dir, const std::vector<ExportRow>& rows, int level);
// KernelBench's kernel file name for a sample: level_<L>_problem_<id>_sample_<N-1>_kernel.py.
std::string KernelBenchKernelName(int level, const ExportRow& row);

// Writes eval_results.json, submission.json and kernels/level_*_kernel.py into `out_dir`.
// `level` overrides the one found in the paths; throws std::invalid_argument when neither
// says which level it is. Returns the files written.
std::vector<fs::path> WriteKernelBenchExport(const fs::path& results_dir, const fs::path& out_dir,
                                             std::optional<int> level);

}  // namespace kbrun::report
