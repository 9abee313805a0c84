// The batch scheduler: a pipeline of samples through three stages, each with its
// own pool, so that no stage waits for another problem's slow stage:
//
//   generate (LLM calls, --llm-concurrency in flight)
//     -> compile (eval::Compile, a pool of --compile-jobs, CPU only)
//       -> run (eval::Run, one sample at a time per GPU lane; a lane whose device fails
//              a probe after a device-suspect result is retired, lane_health.h)
//
// A problem's next attempt is planned (attempt_plan.h) and enqueued when every
// sample of its current attempt has finished; all problems are in flight at once
// (Schedule::kByProblem, for comparison: one problem at a time).
// Every finished sample is written to the results tree before anything else
// happens to it, so a crash loses at most the work in flight.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "batch/batch_options.h"
#include "batch/lane_cost.h"
#include "batch/problem_set.h"
#include "batch/prompt_builder.h"
#include "llm/provider.h"

namespace kbrun::batch {

struct BatchOutcome {
  int problems = 0, solved = 0, unsolved = 0;
  int samples = 0;                // finished samples, resumed ones included
  int llm_calls = 0;              // LLM calls answered in this run
  bool interrupted = false;       // Ctrl-C: state saved, resume by running the same command
  std::string failure;            // a fatal error stopped the batch (bad API key, disk full...)
  bool config_failure = false;    // ... and it is a configuration problem (exit 78)
  bool refused = false;           // ... before touching the folder (busy, settings changed): no report
  bool settings_changed = false;  // refused: the plan settings differ from the folder's (exit 64)
  bool llm_unavailable = false;   // stopped: no connection to the LLM for the outage timeout (exit 69)
  bool no_gpu_lanes = false;      // stopped: every GPU lane was retired after a failed device probe (exit 71)
  // --evaluator: samples the service could not evaluate wait for a resume (exit 69)...
  bool evaluator_unavailable = false;
  bool evaluator_auth = false;  // ... or it refused the token: the batch stopped (exit 77)
  double wall_s = 0;
  // This run's GPU-lane time per evaluation (lane_cost.h; its discarded runs included, where
  // an evaluation's run was kept); nullopt with --evaluator (the service's lanes).
  std::optional<LaneCost> lane_cost;
};

// Runs (or resumes) the batch. Thread-safe use of `provider` is required.
BatchOutcome RunBatch(const BatchOptions& options, const std::vector<Problem>& problems, llm::Provider& provider,
                      const PromptBuilder& prompts);

}  // namespace kbrun::batch
