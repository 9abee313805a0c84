// `kbrun merge`: the shards of a Slurm run (batch/shards.h) joined into one results tree in
// the run's folder itself, laid out as a single-host batch's (docs/RESULTS.md), so that
// `kbrun report`, `monitor`, `export` and `compare` read it unchanged:
//
//   results/<problem>/           a copy of the shard's folder (the shards stay as they were:
//                                each is still an ordinary, resumable batch folder)
//   results/summary.json         the shards' summaries joined: problems in order, totals
//                                summed, sessions as the union of their time spans, config of
//                                the shards with the whole problem range and every shard's
//                                GPU lanes, plus "slurm": the job ids and each shard's state
//   results/timeline.jsonl       every shard's events ("shard" added, lanes renumbered)
//   results/batch_run.log        every shard's lines by time, each marked "[shard N]"
//
// Merging again (after a resubmission) replaces what an earlier merge wrote.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "batch/shards.h"

namespace kbrun::report {

namespace fs = std::filesystem;

struct MergeOptions {
  // The array tasks Slurm still has pending or running, when the caller asked squeue. A shard
  // whose summary says "running" but whose task is not among them was killed (kill -9, node
  // failure): it counts as interrupted. nullopt: the shards' summaries are taken as they are.
  std::optional<std::set<int>> active_tasks;
};

struct MergeOutcome {
  std::vector<batch::ShardStatus> shards;
  // The merged summary's state: finished (every shard finished), running (a shard is still
  // running) or incomplete (the others: resubmit to finish them).
  std::string state;
  int problems = 0;
  std::vector<std::string> warnings;  // shards not started, run with other settings...
};

// Throws FolderError (report.h): kMissing when `results` holds no shard manifest, kDamaged
// when the manifest or a shard's summary.json cannot be read.
MergeOutcome MergeShards(const fs::path& results, const MergeOptions& options = {});

}  // namespace kbrun::report
