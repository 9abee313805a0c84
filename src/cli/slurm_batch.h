// kbrun batch --slurm: the batch as a Slurm job array of shards (batch/shards.h), submitted,
// watched and resubmitted with Slurm's own commands (batch/slurm.h); docs/SCALING.md.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "batch/problem_set.h"
#include "report/merge.h"

namespace kbrun::cli {

namespace fs = std::filesystem;

struct SlurmSubmitOptions {
  fs::path results;       // --results, as given
  fs::path problems_dir;  // resolved
  int first = 0, last = 0;
  std::string opts;               // --slurm-opts
  int tasks = 0;                  // --slurm-tasks; 0: the manifest's, else the default
  bool wait = false;              // --slurm-wait
  double poll_s = 15;             // --slurm-poll
  std::string compile_cache;      // --compile-cache, as given
  bool no_compile_cache = false;  // --no-compile-cache
  bool quiet = false;
};

inline constexpr int kDefaultSlurmTasks = 8;

// Submits the shards that are neither finished nor queued, and with `wait` follows the job
// until no task of it is left, then merges and writes the report. Returns the exit code;
// throws CommandError.
int SubmitSlurmBatch(const SlurmSubmitOptions& options, const std::vector<batch::Problem>& problems);

// The flags of this kbrun batch command for its tasks: the process's argv without the
// submitting flags (--slurm, --slurm-opts, --slurm-tasks, --slurm-wait, --slurm-poll).
std::vector<std::string> TaskArguments(const std::vector<std::string>& argv);

// kbrun merge's work and messages (merge_command.cc); throws CommandError.
report::MergeOutcome MergeAndSay(const fs::path& results, const report::MergeOptions& options);

}  // namespace kbrun::cli
