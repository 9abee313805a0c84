// The profile step of `kbrun eval --profile` (docs/EVALUATION.md, "Profiling").
//
// It runs after the verdict and the timing are decided and never changes them, nor the
// exit code: each of its processes (worker/kbrun_profile.py for the roofline, the profiler
// running kbrun_profile.py on the candidate, the profiler's CSV export, and the digest
// script worker/kbrun_profile_digest.py) is started like the run worker (clean environment,
// private dir, no network, process group killed at the deadline) under one deadline of its
// own, --profile-timeout. The outcome goes into result.json as "profile" (with a status:
// ok, unavailable, failed, timeout, skipped) and "roofline" (docs/RESULT_SCHEMA.md).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"
#include "eval/python_env.h"
#include "util/subprocess.h"

namespace kbrun::eval {

struct ProfileInputs {
  const EvalRequest* request = nullptr;
  const PythonEnv* python = nullptr;
  std::string device;                      // cuda | cpu
  uint64_t seed = 0;                       // the run's seed: same weights and inputs
  fs::path work_dir;                       // the candidate's private dir (problem.py, candidate.py, build)
  std::map<std::string, std::string> env;  // the run worker's environment (one GPU visible)
  nlohmann::json build;                    // the run worker's "build" request: same cache, flags, mode
  // Seals the profiled process, which runs candidate code (the run worker's sandbox); unset:
  // unsealed (tests of the profiler alone).
  std::function<void(ProcessSpec&)> seal;
};

// Runs the profile step and sets result.json's "profile" and "roofline". Kernels are profiled
// only for correct candidates; the roofline whenever the run phase was reached.
void AddProfile(EvalResult& result, const ProfileInputs& in);

// The profiler step alone (ncu, or rocprofv3 when torch is a ROCm build): the digest with
// "status": "ok", or {"status": "unavailable" | "failed" | "timeout", "note": ...}.
nlohmann::json ProfileKernels(const ProfileInputs& in, double timeout_s);

// Where measured GPU peaks are cached: "peaks" beside the compile cache folder
// (~/.cache/kbrun/peaks by default), one JSON file per GPU (name and UUID).
fs::path DefaultPeaksDir();

// The profile helper scripts beside the worker (kbrun_profile.py, kbrun_profile_digest.py).
std::string ProfileScriptPath(const std::string& file_name);

// Runs the digest script on a profiler's output: "--ncu-csv FILE" or "--rocprof-dir DIR".
// Returns the digest, or {"error": ...}.
nlohmann::json RunDigest(const std::string& python, const std::string& flag, const fs::path& input,
                         const fs::path& out_json, double timeout_s);

// A profiler's refusal in words ("no permission to the GPU performance counters ..."), or
// nullopt when its output shows none that kbrun knows.
std::optional<std::string> ProfilerRefusal(const std::string& output);

// result.json's "roofline" from the roofline process's figures, the precision and the
// candidate's median (0 when not timed): roofline_ms = max(bytes / bandwidth, flops / rate).
nlohmann::json RooflineFigures(const nlohmann::json& figures, const std::string& precision, double candidate_ms);

// The few lines a reflection prompt carries: kernel counts and times, the slowest candidate
// kernels with what bounds them, the reference's slowest kernel, and the roofline.
std::string ProfileSummaryText(const nlohmann::json& profile, const nlohmann::json& roofline);

}  // namespace kbrun::eval
