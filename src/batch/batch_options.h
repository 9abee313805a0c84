// Everything `kbrun batch` is told, in one struct (the CLI fills it from flags).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "batch/build_warmup.h"
#include "batch/lane_health.h"
#include "batch/remote_evaluator.h"
#include "eval/evaluation.h"

namespace kbrun::batch {

namespace fs = std::filesystem;

// pipelined: every problem is in flight at once, each stage's pool takes work from any of
// them. by-problem: the seed runner's order, for comparison (bench/makespan_bench.sh): a
// problem starts only when the one before it is finished; its samples still run in parallel.
enum class Schedule { kPipelined, kByProblem };

struct BatchOptions {
  fs::path problems_dir;
  fs::path results_dir = "results";
  int first = 1, last = 40;
  int attempts = 3;             // attempts per problem
  int samples = 3;              // samples per attempt, generated and evaluated in parallel
  double target_speedup = 1.0;  // a sample succeeds when correct and speedup >= this
  int llm_concurrency = 8;      // LLM calls in flight
  int compile_pool = 0;         // compiles in parallel; 0 = number of cores
  std::vector<int> gpu_lanes;   // one timing lane per GPU; empty = one lane (index 0)
  // A lane whose sample ended in a way that can mean a broken device (IsDeviceSuspect) probes
  // its device with this; a failed probe retires the lane and the sample is rerun on another
  // (docs/RESULTS.md "Lane failures"). Empty: DefaultLaneProbe(lane_probe_timeout_s).
  LaneProbe lane_probe;
  double lane_probe_timeout_s = kDefaultProbeTimeoutS;
  Schedule schedule = Schedule::kPipelined;
  // While a lane runs a sample, the next sample in its queue starts its run worker and checker
  // (CUDA initialisation only; they wait for the lane: eval::StartRunAhead), so that the lane
  // does not wait for a fresh process's CUDA start. Off: one sample's processes at a time.
  // `--run-ahead auto` (cli/eval_flags.h) turns it on for GPU lanes.
  bool run_ahead = false;
  // At the start, beside the first LLM calls, the precompiled headers that candidates' builds share
  // are built (build_warmup.h), not by the first candidates that need them, on their critical path.
  // `--build-warmup auto` turns it on for GPU lanes (CUDA builds on a CUDA backend).
  BuildWarmup build_warmup = BuildWarmup::kOff;
  eval::EvalOptions eval;  // passed to eval::Compile / eval::Run (gpu_index set per lane)
  // --evaluator: each sample's compile and run go to this service (remote_evaluator.h) instead
  // of the compile pool and lanes; compile_pool is then the evaluations in flight, and there
  // are no lanes. Null: evaluate here.
  std::shared_ptr<const RemoteEvaluator> remote;
  std::string provider_name, model;  // for summary.json, logs and the settings check
  // Settings of the LLM call and prompts, recorded so that a resume can tell they changed.
  fs::path prompts_dir;
  double temperature = 0;
  int max_tokens = 0;
  std::string reasoning_effort;
  // A resume whose plan settings (batch_settings.h) differ from the folder's is refused
  // unless this is set; then the new settings are recorded and the run goes on.
  bool reconfigure = false;
  // LLM outage: after this many LLM calls in a row failed to connect, LLM calls pause and
  // are retried with backoff; still no connection after outage_timeout_s: the batch stops.
  int llm_outage_after = 5;
  double llm_outage_timeout_s = 600;
  bool progress_bar = false;  // stderr is a TTY: redraw one line in place
  bool quiet = false;         // no progress on stderr
};

}  // namespace kbrun::batch
