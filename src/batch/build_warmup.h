// The precompiled headers that candidates' builds share, built at a batch's start, while the first
// LLM calls run (or when `kbrun serve` starts), instead of by the first candidates that need them, on
// their compile's critical path (docs/PERFORMANCE.md "Build warm-up").
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"

namespace kbrun::batch {

namespace fs = std::filesystem;

// Which warm-up builds a batch makes: none; C++-only extensions (the binding file's headers); or also
// CUDA extensions in the layouts models write (the split host files' headers, with and without -O3).
enum class BuildWarmup { kOff, kCpp, kCuda };

// Whether kbrun's build step can use what a warm-up builds: fast builds, a shared cache, PCH on.
bool BuildWarmupApplies(const eval::EvalOptions& options);

// The warm-up candidates (name, code): each a module-level load_inline of one kind of build, and a
// ModelNew that takes any arguments. Built concurrently, so that their headers are built at once.
std::vector<std::pair<std::string, std::string>> BuildWarmupCandidates(BuildWarmup kind);

struct BuildWarmupOutcome {
  double seconds = 0;     // wall time, all warm-up compiles together
  int failed = 0;         // compile phases that failed (their headers may be missing)
  int headers_built = 0;  // precompiled headers built by the warm-up
  int headers_ready = 0;  // found already built, or built by another build while waited for
  int builds_cached = 0;  // warm-up builds found whole in the cache (an earlier warm-up built them)
  // Per candidate compiled: name, ok, compile_s, error (null when ok), builds (kbrun_eval/build.py's records).
  nlohmann::json records = nlohmann::json::array();
};

// Compiles every warm-up candidate of `kind` at once (against a small problem of its own: their
// ModelNew ignores it), through the same compile phase and options as the candidates that follow, so
// that the headers' flags are theirs. `scratch`: a folder for the files (created, then removed).
BuildWarmupOutcome WarmUpBuilds(BuildWarmup kind, const eval::EvalOptions& options, const fs::path& scratch);

// One line for the batch log (or serve's stderr), and build_warmup.json beside the results.
std::string BuildWarmupText(const BuildWarmupOutcome& outcome);
nlohmann::json BuildWarmupJson(const BuildWarmupOutcome& outcome);

}  // namespace kbrun::batch
