// kbrun merge: the shards of a Slurm run (kbrun batch --slurm) joined into one results tree.
#include <fmt/format.h>

#include "cli/commands.h"
#include "report/merge.h"
#include "report/report.h"

namespace kbrun::cli {

// The merge and its messages, shared with batch --slurm-wait; throws CommandError.
report::MergeOutcome MergeAndSay(const report::fs::path& results, const report::MergeOptions& options) {
  report::MergeOutcome out;
  try {
    out = report::MergeShards(results, options);
  } catch (const report::FolderError& e) {
    throw CommandError{e.kind() == report::FolderError::Kind::kMissing ? kExitNoInput : kExitDataError, e.what()};
  } catch (const report::fs::filesystem_error& e) {
    throw CommandError{kExitIoError, fmt::format("cannot write the merged tree in {}: {}", results.string(), e.what())};
  }
  for (const auto& w : out.warnings) fmt::print(stderr, "kbrun merge: warning: {}\n", w);
  int finished = 0;
  for (const auto& s : out.shards) finished += s.finished() ? 1 : 0;
  fmt::print(stderr, "kbrun merge: {} problems from {} shards ({} finished) into {}: {}\n", out.problems,
             out.shards.size(), finished, results.string(), out.state);
  return out;
}

void RegisterMerge(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "merge", "Join the shards of a Slurm run (kbrun batch --slurm) into one results tree, for kbrun report");
  auto dir = std::make_shared<std::string>("results");
  cmd->add_option("results", *dir, "Results folder of kbrun batch --slurm (it holds slurm/ and shards/)")
      ->capture_default_str();
  cmd->footer(
      "Copies each shard's problem folders (RESULTS/shards/N/*) into RESULTS and writes RESULTS/summary.json,\n"
      "timeline.jsonl and batch_run.log joined from the shards', so that kbrun report, monitor, export and\n"
      "compare read RESULTS as a single-host run's folder. The shards are left as they are (each stays a\n"
      "resumable batch); merging again after a resubmission replaces what the last merge wrote. The\n"
      "summary's state is finished when every shard finished, else running or incomplete (docs/SCALING.md).\n\n"
      "Exit codes: 0 merged (finished or not: see the state printed); 65 the manifest or a shard's\n"
      "summary.json is damaged; 66 no Slurm run in the folder; 74 the merged files could not be written.");
  cmd->callback([dir, exit_code] {
    MergeAndSay(*dir, {});
    fmt::print(stderr, "kbrun merge: now kbrun report {}\n", *dir);
    *exit_code = 0;
  });
}

}  // namespace kbrun::cli
