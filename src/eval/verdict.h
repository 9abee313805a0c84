// Classifying how a worker ended when it gave no verdict of its own to trust: a death
// (timeout, signal, out of memory, lost exit status), a failure it reported, a checker whose
// counts do not cover every check the worker claims, a candidate that ran only library code.
// The supervisor's decisions; the worker's word is never a "correct".
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"
#include "eval/worker_run.h"

namespace kbrun::eval {

// A result with only a status, an error category and a message.
EvalResult Fail(Status status, const std::string& category, const std::string& message);

// A worker that died or was killed: classify from how it ended.
EvalResult FromDeadWorker(const WorkerRun& run, const EvalOptions& o);

// A failure the worker reported ({"status", "category", "message", "detail"}); a "correct"
// or unknown status is rejected. `output` is the worker's output (a cuda_error quotes it).
EvalResult FromWorkerFailure(const nlohmann::json& failure, const std::string& output);

// What happened to the candidate's own kernels when none of them ran ("fallback_reason",
// kbrun_library_share.py), as a clause for the verdict's message and the reflection prompt.
std::string FallbackExplanation(const nlohmann::json& fallback);

// The checker's counts must show every check the worker claims to have passed; anything
// less (no result, a failure, fewer checks) and the run is not correct.
std::optional<EvalResult> CheckerDisagrees(const WorkerRun& run, const EvalOptions& o, const nlohmann::json& worker);

}  // namespace kbrun::eval
