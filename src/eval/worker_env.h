// The environment of a worker, checker or profiler process: an allow-list of the caller's
// variables (KBRUN_PASS_ENV adds names; anything that looks secret never passes), the private
// dir's HOME/TMPDIR/build folder, MAX_JOBS, the backend's variables and the one visible GPU.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "eval/evaluation.h"
#include "eval/python_env.h"

namespace kbrun::eval {

// A variable name that looks like it holds a secret (KEY, TOKEN, SECRET, PASSWORD, CREDENTIAL,
// AUTH; any case).
bool LooksSecret(const std::string& name);

// Values of kbrun's secret variables (API keys): scrubbed from whatever a child prints.
// Short values are left alone: "1" or "true" would be replaced all over the output.
std::vector<std::string> SecretValues(const std::map<std::string, std::string>& current);
std::vector<std::string> SecretValues();  // of the current environment

// The worker's environment, built from `current` (the caller's environment); `dir` is the
// private dir; `gpu_visible`: CUDA_VISIBLE_DEVICES/HIP_VISIBLE_DEVICES name o.gpu_index, else "".
std::map<std::string, std::string> WorkerEnvironment(const std::map<std::string, std::string>& current,
                                                     const EvalOptions& o, const PythonEnv& py, const fs::path& dir,
                                                     bool gpu_visible);
std::map<std::string, std::string> WorkerEnvironment(const EvalOptions& o, const PythonEnv& py, const fs::path& dir,
                                                     bool gpu_visible);

}  // namespace kbrun::eval
