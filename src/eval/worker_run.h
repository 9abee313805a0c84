// One phase of an evaluation as processes: RunWorker writes the worker's request, starts the
// worker (a fork of the warm worker, else a fresh interpreter) sealed in the candidate's
// private dir and, in the run phase, the checker beside it on a socket, and collects what each
// said on fd 3 (worker_protocol.h) and how each ended. Judging that is verdict.h's job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"
#include "eval/python_env.h"
#include "util/subprocess.h"

namespace kbrun::eval {

// How long the compile phase may spend constructing ModelNew to catch lazy builds.
constexpr double kPrebuildTimeoutS = 120;

struct WorkerRun {
  ProcessResult process;
  std::string last_stage;
  std::optional<nlohmann::json> result;
  // From the worker's result line to the moment RunProcess stopped waiting for it (in the run
  // phase, at once: ProcessResult::ended_early; else its process's end). Negative when no result
  // line came.
  double seconds_after_result = -1;
  // The whole of RunWorker: the worker, the checker and their sandbox's teardown (in the run
  // phase, the time it holds a GPU lane; started ahead, from the gate's opening).
  double wall_s = 0;
  int result_lines = 0;  // lines that claimed to be the result
  bool forged = false;   // a result line without the right nonce, or more than one
  // The run phase's checker (kbrun_checker.py): its own process, result and nonce.
  bool checked = false;
  bool started_ahead = false;         // with a gate: started before its turn on the lane
  bool gpu_visible = false;           // its processes saw a GPU
  bool shared_pid_namespace = false;  // the worker and the checker joined one of their own
  ProcessResult checker_process;
  std::optional<nlohmann::json> checker;
  // --baseline compile|cudagraph (worker/kbrun_baselines.py): one line each from the checker,
  // after its result; the stage it last said it was in ("baselines", "baseline compile").
  nlohmann::json baselines = nlohmann::json::object();
  std::string checker_stage;
};

class RunGate;

// Runs one phase ("compile" or "run") of the candidate in `dir` (problem.py, candidate.py).
// A forged result (worker_protocol.h) comes back as a "rejected"/"forged_result" failure.
// With a gate (run phase, run_gate.h), the worker and the checker wait on it after their CUDA
// initialisation; their clocks, and wall_s, start when it opens.
WorkerRun RunWorker(const std::string& phase, const EvalRequest& req, const PythonEnv& py, const std::string& device,
                    uint64_t seed, const fs::path& dir, RunGate* gate = nullptr);

}  // namespace kbrun::eval
