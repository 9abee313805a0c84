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

// Compiles every warm-up candidate of `kind` at once (against a small problem of its own: their
// ModelNew ignores it), through the same compile phase and options as the candidates that follow, so
// that the headers' flags are theirs; writes what it built to `record` (build_warmup.json,
// docs/RESULTS.md) and returns one line for the log. Never throws: a failure, said in that line,
// costs the candidates their own header builds, never the batch or the service.
std::string WarmUpBuilds(BuildWarmup kind, const eval::EvalOptions& options, const fs::path& record);

}  // namespace kbrun::batch
