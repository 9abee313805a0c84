// kbrun compare: two batches' results folders side by side (docs/RESULTS.md "kbrun compare").
#include <cstdio>

#include <fmt/format.h>

#include "batch/results_store.h"
#include "cli/commands.h"
#include "report/compare.h"
#include "report/compare_html.h"
#include "report/report.h"
#include "util/fs.h"

namespace kbrun::cli {

namespace {

report::Report Load(const std::string& dir, const char* which) {
  try {
    return report::BuildReport(dir);
  } catch (const report::FolderError& e) {
    throw CommandError{e.kind() == report::FolderError::Kind::kMissing ? kExitNoInput : kExitDataError,
                       fmt::format("run {}: {}", which, e.what())};
  } catch (const nlohmann::json::exception& e) {
    throw CommandError{kExitDataError,
                       fmt::format("run {}: {}: a results file is not kbrun's: {}", which, dir, e.what())};
  }
}

}  // namespace

void RegisterCompare(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("compare", "Compare two batches' results folders problem by problem (A/B)");
  auto a = std::make_shared<std::string>();
  auto b = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto output = std::make_shared<std::string>();
  cmd->add_option("A", *a, "Results folder of the first batch (the baseline)")->required();
  cmd->add_option("B", *b, "Results folder of the second batch")->required();
  cmd->add_flag("--json", *as_json, "Print one JSON document instead of the text");
  cmd->add_option("--output,-o", *output, "Write the text (or the JSON) to this file instead of stdout");
  auto html = std::make_shared<std::string>();
  cmd->add_option("--html", *html,
                  "Also write the comparison as one self-contained HTML page to this file (no script, nothing "
                  "fetched)");
  cmd->footer(
      "Per problem: each run's best verdict and best speedup (the report's pick) and B/A of the best\n"
      "speedups where both are correct. Summary: problems in both / only in A / only in B; correct in both,\n"
      "fixed (wrong in A, correct in B), broken (correct in A, wrong in B); among problems correct in both,\n"
      "B faster / slower / same (same: B/A within 5%) and the geometric mean of B/A with its 95% interval\n"
      "(a bootstrap over the problems and their timing stats, fixed seed); fast_1 of each run over\n"
      "the problems of either. A warning names each difference in the tolerance rule, timing method, GPU or\n"
      "precision the runs recorded: then the comparison is not like for like. Fields: docs/RESULTS.md.\n\n"
      "Exit codes: 0 compared; 64 usage error; 65 a summary.json is damaged; 66 no such folder, or it holds\n"
      "neither summary.json nor result files.");
  cmd->callback([a, b, as_json, output, html, exit_code] {
    report::Comparison c = report::Compare(Load(*a, "A"), Load(*b, "B"));
    if (!html->empty()) {
      WriteFileAtomic(*html, report::CompareHtml(c));
      fmt::print(stderr, "kbrun compare: wrote {}\n", *html);
    }
    std::string text = *as_json ? batch::JsonText(report::ComparisonJson(c)) + "\n" : report::ComparisonText(c);
    if (output->empty()) {
      fmt::print("{}", text);
      std::fflush(stdout);
    } else {
      WriteFileAtomic(*output, text);
      fmt::print(stderr, "kbrun compare: wrote {}\n", *output);
    }
    *exit_code = 0;
  });
}

}  // namespace kbrun::cli
