// A batch split into shards, one per task of a Slurm job array (docs/SCALING.md): which
// problems each shard runs, where its results go, and the manifest that ties them together.
//
//   results/slurm/shards.json     the manifest: problems, shards, submissions (job ids)
//   results/slurm/job.sh          the job script of the last submission
//   results/slurm/logs/J_T.out    each task's stdout and stderr (job J, task T)
//   results/shards/<T>/           task T's results tree: an ordinary `kbrun batch` folder
//
// `kbrun merge` (report/merge.h) joins the shards into results/ itself.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/problem_set.h"

namespace kbrun::batch {

namespace fs = std::filesystem;

struct Shard {
  int index = 0;                      // the Slurm array task id
  int first = 0, last = 0;            // problem numbers: the shard is `kbrun batch first last`
  std::vector<std::string> problems;  // their names, in order
};

// Up to `tasks` shards of consecutive problems (sorted by number, as ListProblems returns
// them) whose sizes differ by at most one, the larger ones first. Problems sharing a number
// stay in one shard (a shard is a number range). Fewer shards when there are fewer problems.
std::vector<Shard> PlanShards(const std::vector<Problem>& problems, int tasks);

fs::path SlurmDir(const fs::path& results);                    // results/slurm
fs::path ManifestPath(const fs::path& results);                // results/slurm/shards.json
fs::path ShardResultsDir(const fs::path& results, int index);  // results/shards/<index>

struct Submission {
  std::string job_id;
  std::vector<int> tasks;  // the shards it ran (array task ids)
  double submitted_at = 0;
};

struct ShardManifest {
  fs::path problems_dir;  // absolute
  int first = 0, last = 0;
  std::vector<Shard> shards;
  std::vector<Submission> submissions;  // oldest first
  fs::path compile_cache;               // what the tasks use; empty: --no-compile-cache

  const Shard* Find(int index) const;
  std::vector<std::string> JobIds() const;
};

nlohmann::json ManifestJson(const ShardManifest& manifest);
// Throws std::runtime_error saying what is wrong with the document.
ShardManifest ParseManifest(const nlohmann::json& doc);
// nullopt when results/slurm/shards.json does not exist; throws std::runtime_error when it
// cannot be read or parsed.
std::optional<ShardManifest> LoadManifest(const fs::path& results);
void SaveManifest(const fs::path& results, const ShardManifest& manifest);  // atomic

// What a shard's results tree says about it.
struct ShardStatus {
  int index = 0;
  // summary.json's state (running, finished, interrupted, failed, llm_unavailable,
  // no_gpu_lanes), or "not_started" (no summary.json) or "damaged" (it does not parse).
  std::string state;
  int problems = 0, problems_done = 0;  // from the summary's totals
  std::string host;
  bool finished() const { return state == "finished"; }
};
ShardStatus ReadShardStatus(const fs::path& results, const Shard& shard);

}  // namespace kbrun::batch
