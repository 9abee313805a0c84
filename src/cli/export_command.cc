// kbrun export: a batch's results folder as CSV or in KernelBench's formats.
#include <cstdio>

#include <fmt/format.h>

#include "cli/commands.h"
#include "report/export.h"
#include "report/report.h"
#include "util/fs.h"

namespace kbrun::cli {

void RegisterExport(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("export", "Export a batch's results folder as CSV or in KernelBench's formats");
  auto dir = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>();
  auto level = std::make_shared<int>(0);
  cmd->add_option("results", *dir, "Results folder of kbrun batch")->required();
  cmd->add_option("--format", *format, "csv | kernelbench")->required()->check(CLI::IsMember({"csv", "kernelbench"}));
  cmd->add_option("--output,-o", *output,
                  "csv: the file to write (default: stdout); kernelbench: the folder to write "
                  "(default: RESULTS/kernelbench)");
  cmd->add_option("--level", *level, "kernelbench: the KernelBench level, when the problems' paths do not say")
      ->check(CLI::PositiveNumber);
  cmd->footer(
      "csv: one row per evaluated sample (every attempt): problem, problem_number, level, index, attempt,\n"
      "sample, status, category, correct, speedup, reference_median_ms, candidate_median_ms, timing_method,\n"
      "tolerance_rule, code_path (RFC 4180 quoting, CRLF line ends).\n"
      "kernelbench: eval_results.json (KernelBench's eval script's shape: per problem id, per sample),\n"
      "kernels/level_L_problem_ID_sample_S_kernel.py (its run layout; S = N - 1) and submission.json\n"
      "({\"metadata\", \"kernels\"}: the best correct kernel per problem). Fields: docs/RESULTS.md.\n\n"
      "Exit codes: 0 written; 64 usage error (bad flag, level unknown); 65 summary.json is damaged;\n"
      "66 no such folder, or it holds neither summary.json nor result files.");
  cmd->callback([dir, format, output, level, exit_code] {
    try {
      if (*format == "csv") {
        std::string text = report::CsvText(report::LoadExportRows(*dir));
        if (output->empty()) {
          fmt::print("{}", text);
          std::fflush(stdout);
        } else {
          WriteFileAtomic(*output, text);
          fmt::print(stderr, "kbrun export: wrote {}\n", *output);
        }
      } else {
        std::string out_dir = output->empty() ? (std::filesystem::path(*dir) / "kernelbench").string() : *output;
        auto written =
            report::WriteKernelBenchExport(*dir, out_dir, *level > 0 ? std::optional<int>(*level) : std::nullopt);
        fmt::print(stderr, "kbrun export: wrote {} files into {} (eval_results.json, submission.json, kernels/)\n",
                   written.size(), out_dir);
      }
    } catch (const report::FolderError& e) {
      throw CommandError{e.kind() == report::FolderError::Kind::kMissing ? kExitNoInput : kExitDataError, e.what()};
    } catch (const std::invalid_argument& e) {
      throw CommandError{kExitUsage, e.what()};
    } catch (const nlohmann::json::exception& e) {
      throw CommandError{kExitDataError, fmt::format("{}: a results file is not kbrun's: {}", *dir, e.what())};
    }
    *exit_code = 0;
  });
}

}  // namespace kbrun::cli
