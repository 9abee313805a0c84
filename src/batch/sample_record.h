// One finished sample as the batch keeps it: what result_N.json says, parsed.
//
// A sample is one LLM answer to one prompt, evaluated. Its status is the eval
// status ("correct", "incorrect", "compile_error", ...) or one of three statuses
// the evaluator does not give: "no_code" (the response held no usable code),
// "llm_error" (the LLM call itself failed after its retries) and "internal_error"
// (kbrun's own failure while handling that one sample: an exception, not a verdict).
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/evaluation.h"

namespace kbrun::batch {

inline constexpr const char* kStatusNoCode = "no_code";
inline constexpr const char* kStatusLlmError = "llm_error";
inline constexpr const char* kStatusInternalError = "internal_error";

// Failure kinds: the keys of prompts/config.json's reflection_hints.
inline constexpr const char* kKindCompile = "Compile error";
inline constexpr const char* kKindRuntime = "Runtime error";
inline constexpr const char* kKindIncorrect = "Incorrect";
inline constexpr const char* kKindTimeout = "Timeout";
inline constexpr const char* kKindTooSlow = "PERFORMANCE TOO SLOW";
inline constexpr const char* kKindRejected = "Rejected";
inline constexpr const char* kKindNoCode = "No code";
inline constexpr const char* kKindLlmError = "LLM error";
inline constexpr const char* kKindInternal = "Internal error";

// Where a sample sits in its problem. `index` is N in prompt_N.txt, result_N.json:
// (attempt - 1) * samples_per_attempt + sample, all 1-based.
struct SampleId {
  std::string problem;
  int index = 0;
  int attempt = 0;
  int sample = 0;
};
int SampleIndex(int attempt, int sample, int samples_per_attempt);
SampleId MakeSampleId(const std::string& problem, int attempt, int sample, int samples_per_attempt);

struct StageSpan {
  double start = 0, end = 0;  // Unix seconds; 0 when the stage did not run
  bool ran() const { return end > 0; }
  double seconds() const { return ran() ? end - start : 0; }
};

struct SampleRecord {
  SampleId id;
  std::string status;
  bool correct = false;
  bool success = false;      // correct and speedup >= the target
  double speedup = 0;        // 0 when not timed
  std::string failure_kind;  // empty on success
  std::string error_category, error_message;
  std::string feedback;  // what a reflection prompt says about this sample
  bool has_code = false;
  nlohmann::json doc;  // the whole result_N.json
};

// Failure kind for a status (see above). `correct` samples below the target are too slow.
std::string FailureKindFor(const std::string& status, bool success);

// Reads result_N.json back. Missing fields get their defaults, so older files still load.
SampleRecord RecordFromJson(const nlohmann::json& doc);

// What the scheduler knows about a sample besides its eval result.
struct SampleExtras {
  nlohmann::json llm;  // model, tokens, latency...; null when the response was resumed from disk
  StageSpan llm_stage, compile_stage, gpu_stage;
  double target_speedup = 1.0;
  bool has_code = false;
  int gpu_lane = -1;
  // Runs discarded because their lane's device failed its probe (the lane was retired and the
  // sample rerun elsewhere): null when none, else [{gpu_lane, status, error, probe, at,
  // gpu_stage: {start, end, seconds} of the discarded run}].
  nlohmann::json reruns_after_lane_failure;
  // --evaluator: the evaluation at the service ({evaluator, id, http_requests, resubmitted}) and
  // its span; null / not run for a local evaluation (then the document has neither).
  StageSpan remote_stage;
  nlohmann::json remote;
  // The error category of a sample that failed before a verdict, when not its status
  // (evaluator_unavailable, evaluator_rejected).
  std::string error_category;
};

// Builds the record (and its result_N.json document) for an evaluated sample,
// or for a sample that failed before evaluation when `eval_result` is null:
// then `status` and `message` say why ("no_code", "llm_error", "internal_error").
SampleRecord MakeRecord(const SampleId& id, const eval::EvalResult* eval_result, const std::string& status,
                        const std::string& message, const SampleExtras& extras);

}  // namespace kbrun::batch
