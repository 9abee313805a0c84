// result.json (docs/RESULT_SCHEMA.md): the document the supervisor writes for every
// evaluation, from the verdict, the options, the Python probe and what the worker and the
// checker reported. Assembling it never changes the verdict.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"
#include "eval/python_env.h"
#include "eval/worker_run.h"

namespace kbrun::eval {

// Assembles the result document into r.json. `run` is the last worker (its output goes in
// output_tail; after a failed compile it is the compile worker, and there was no run phase),
// or null when no worker ran.
void FillDocument(EvalResult& r, const EvalRequest& req, const PythonEnv& py, const std::string& device, uint64_t seed,
                  const nlohmann::json& worker, const CompiledCandidate& compiled, const WorkerRun* run);

// The checker's figures in result.json's correctness block (the authoritative ones: the
// worker's may be missing, it stops at the checker's first failing verdict).
void AddCheckerFigures(EvalResult& r, const nlohmann::json& checker, const EvalOptions& o);

// The timing block of result.json: the candidate's figures from the worker, the reference's
// from the checker, which never loads candidate code (the worker's word on the reference
// would be the candidate's).
nlohmann::json MergedTiming(const nlohmann::json& worker_timing, const std::optional<nlohmann::json>& checker);

// The tolerance block: the rule asked for and, where the checker judged the run (`run`), its
// own account of the rule.
nlohmann::json ToleranceDoc(const EvalOptions& o, const WorkerRun* run);

// The baselines block: for each --baseline, its figures and the candidate's speedup over it,
// or why it was not measured. `run` is the run phase, null when there was none.
nlohmann::json BaselinesDoc(const EvalOptions& o, const EvalResult& r, const nlohmann::json& timing,
                            const WorkerRun* run);

}  // namespace kbrun::eval
