// kbrun report: the figures of a batch from its results folder.
#include <fmt/format.h>

#include "cli/commands.h"
#include "batch/results_store.h"
#include "report/report.h"

namespace kbrun::cli {

void RegisterReport(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "report",
      "Write detailed_report.txt and detailed_report.json (and with --html detailed_report.html) for a batch's "
      "results folder, and print it");
  auto dir = std::make_shared<std::string>("results");
  auto quiet = std::make_shared<bool>(false);
  auto as_json = std::make_shared<bool>(false);
  auto html = std::make_shared<std::string>();
  cmd->add_option("results", *dir, "Results folder of kbrun batch")->capture_default_str();
  cmd->add_flag("--quiet,-q", *quiet, "Write the files only");
  cmd->add_flag("--json", *as_json,
                "Print the JSON document (the content of detailed_report.json) instead of the text; nothing "
                "else goes to stdout");
  auto* html_opt = cmd->add_option(
      "--html", *html,
      "Also write the report as one self-contained HTML page (plots, every sample's code, prompt and diff; no "
      "network): to FILE, or detailed_report.html in the results folder (name the folder first: "
      "kbrun report RESULTS --html)");
  html_opt->expected(0, 1)->type_name("[FILE]");
  cmd->footer(
      "fast_p is KernelBench's: the fraction of problems whose best kernel is correct and faster than p\n"
      "times the reference. Budget figures: one-shot (attempt 1, sample 1 only), best of all samples and\n"
      "attempts, and pass@k / fast_1@k over attempt 1's samples (unbiased estimator); docs/RESULTS.md.\n\n"
      "Exit codes: 0 written; 65 summary.json is damaged (unreadable, not JSON, fields of the wrong type);\n"
      "66 no such folder, or it holds neither summary.json nor result files.");
  cmd->callback([dir, quiet, as_json, html, html_opt, exit_code] {
    report::Report r;
    nlohmann::json doc;
    report::WriteOptions options;
    if (html_opt->count() > 0) {
      options.html_path = html->empty() ? report::fs::path(*dir) / "detailed_report.html" : report::fs::path(*html);
    }
    try {
      r = report::WriteReport(*dir, &doc, options);
    } catch (const report::FolderError& e) {
      throw CommandError{e.kind() == report::FolderError::Kind::kMissing ? kExitNoInput : kExitDataError, e.what()};
    } catch (const nlohmann::json::exception& e) {
      throw CommandError{kExitDataError, fmt::format("{}: a results file is not kbrun's: {}", *dir, e.what())};
    }
    if (*as_json) {
      fmt::print("{}\n", batch::JsonText(doc));
    } else if (!*quiet) {
      fmt::print("{}", report::ReportText(r));
    }
    fmt::print(stderr, "kbrun report: wrote {0}/detailed_report.txt and {0}/detailed_report.json{1}\n", *dir,
               options.html_path ? " and " + options.html_path->string() : "");
    *exit_code = 0;
  });
}

}  // namespace kbrun::cli
