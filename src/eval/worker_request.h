// The request files the supervisor writes for its processes (request.json of the worker,
// checker_request.json of the checker) and the "build" block that the worker, the profiled run
// and result.json share: one builder each, so that the three cannot drift apart.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"
#include "eval/python_env.h"

namespace kbrun::eval {

// The shared compile cache folder (absolute) in fast mode with the cache on, else "".
std::string CompileCacheDir(const EvalOptions& o);

// How load_inline builds run (worker/kbrun_build.py): mode, cache_dir (null without a cache),
// pch and kbrun's flags for the backend, added to every build.
nlohmann::json BuildRequest(const EvalOptions& o, const PythonEnv& py);

// request.json of a worker (phase "compile" or "run") for the candidate in `dir`, with its nonce.
nlohmann::json WorkerRequest(const std::string& phase, const EvalOptions& o, const PythonEnv& py,
                             const std::string& device, uint64_t seed, const fs::path& dir, const std::string& nonce);

// checker_request.json: the reference side of a run (problem, seed, tolerance, baselines), with
// the checker's own nonce; `worker_request` is the run worker's (the same problem and atol/rtol).
nlohmann::json CheckerRequest(const nlohmann::json& worker_request, const EvalOptions& o, const std::string& device,
                              uint64_t seed, const std::string& nonce);

}  // namespace kbrun::eval
