// The batch's live state, and the two views of it that leave the process:
// summary.json (read by `kbrun monitor`, possibly from another machine) and the
// compact progress line on stderr.
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/problem_set.h"
#include "batch/sample_record.h"

namespace kbrun::batch {

enum class ProblemPhase { kQueued, kRunning, kSolved, kUnsolved };
std::string PhaseName(ProblemPhase p);  // "queued", "running", "solved", "unsolved"

// Where a sample in flight is: waiting for or in one of the three stages.
enum class Stage { kLlmQueue, kLlm, kCompileQueue, kCompile, kGpuQueue, kGpu, kRemote };
// "llm_queue", "llm", "compile_queue", "compile", "gpu_queue", "gpu", "remote" (--evaluator: at the service)
std::string StageName(Stage s);

struct RunningSample {
  SampleId id;
  Stage stage = Stage::kLlmQueue;
  double since = 0;  // when it entered the stage
};

struct ProblemState {
  Problem problem;
  ProblemPhase phase = ProblemPhase::kQueued;
  int attempt = 0;                       // attempt in progress or last one run
  std::map<int, SampleRecord> records;   // finished samples by index
  std::map<int, RunningSample> running;  // samples in flight by index
  std::optional<int> best;               // index of the best record
  double started_at = 0, finished_at = 0;
  bool done() const { return phase == ProblemPhase::kSolved || phase == ProblemPhase::kUnsolved; }
};

struct RecentError {
  double time = 0;
  SampleId id;
  std::string status, message;  // message: its first line
};

struct BatchState {
  // running | finished | interrupted | failed | llm_unavailable | no_gpu_lanes | evaluator_unavailable
  std::string state = "running";
  std::string failure;  // why, when failed
  std::vector<ProblemState> problems;
  std::deque<RecentError> recent_errors;              // newest last, at most kMaxRecentErrors
  nlohmann::json config;                              // the options that shaped the batch
  nlohmann::json llm_outage;                          // null, or the LLM stage's pause (docs/RESULTS.md)
  nlohmann::json lanes = nlohmann::json::array();     // this session's GPU lanes: {gpu, state, ...} each
  nlohmann::json sessions = nlohmann::json::array();  // {started_at, ended_at, pid} per run, resumes included
  double started_at = 0, updated_at = 0, finished_at = 0;
  long long prompt_tokens = 0, completion_tokens = 0;
  int samples_generated = 0;  // LLM calls answered in this session
};
inline constexpr size_t kMaxRecentErrors = 10;

struct Counts {
  int problems = 0, queued = 0, running = 0, solved = 0, unsolved = 0;
  int samples = 0, successes = 0;
  std::map<std::string, int> by_status;  // finished samples per status
  std::map<std::string, int> by_stage;   // samples in flight per stage
};
Counts Count(const BatchState& state);

// summary.json (docs/RESULTS.md).
nlohmann::json SummaryJson(const BatchState& state);

// "[12/40 problems] 30 samples: 8 correct, 5 compile_error, ... | llm 4, compile 2, gpu 1 | 3 min 12 s"
std::string ProgressLine(const BatchState& state, double now);
// A text bar for TTYs: "[#######.............]".
std::string ProgressBar(int done, int total, int width);

}  // namespace kbrun::batch
