#include "batch/batch_state.h"

#include <unistd.h>

#include <fmt/format.h>

#include "util/text.h"

namespace kbrun::batch {

using nlohmann::json;

std::string PhaseName(ProblemPhase p) {
  switch (p) {
    case ProblemPhase::kQueued:
      return "queued";
    case ProblemPhase::kRunning:
      return "running";
    case ProblemPhase::kSolved:
      return "solved";
    case ProblemPhase::kUnsolved:
      return "unsolved";
  }
  return "queued";
}

std::string StageName(Stage s) {
  switch (s) {
    case Stage::kLlmQueue:
      return "llm_queue";
    case Stage::kLlm:
      return "llm";
    case Stage::kCompileQueue:
      return "compile_queue";
    case Stage::kCompile:
      return "compile";
    case Stage::kGpuQueue:
      return "gpu_queue";
    case Stage::kGpu:
      return "gpu";
    case Stage::kRemote:
      return "remote";
  }
  return "llm_queue";
}

Counts Count(const BatchState& state) {
  Counts c;
  for (const auto& p : state.problems) {
    ++c.problems;
    switch (p.phase) {
      case ProblemPhase::kQueued:
        ++c.queued;
        break;
      case ProblemPhase::kRunning:
        ++c.running;
        break;
      case ProblemPhase::kSolved:
        ++c.solved;
        break;
      case ProblemPhase::kUnsolved:
        ++c.unsolved;
        break;
    }
    for (const auto& [index, r] : p.records) {
      ++c.samples;
      ++c.by_status[r.status];
      if (r.success) ++c.successes;
    }
    for (const auto& [index, s] : p.running) ++c.by_stage[StageName(s.stage)];
  }
  return c;
}

namespace {

json BestJson(const ProblemState& p) {
  if (!p.best) return nullptr;
  const SampleRecord& r = p.records.at(*p.best);
  return {{"index", r.id.index},
          {"attempt", r.id.attempt},
          {"sample", r.id.sample},
          {"status", r.status},
          {"correct", r.correct},
          {"success", r.success},
          {"speedup", r.speedup > 0 ? json(r.speedup) : json(nullptr)}};
}

json ProblemJson(const ProblemState& p) {
  json running = json::array();
  for (const auto& [index, s] : p.running) {
    running.push_back({{"index", index},
                       {"attempt", s.id.attempt},
                       {"sample", s.id.sample},
                       {"stage", StageName(s.stage)},
                       {"since", s.since}});
  }
  json kinds = json::object();
  for (const auto& [index, r] : p.records) {
    if (!r.failure_kind.empty()) kinds[r.failure_kind] = kinds.value(r.failure_kind, 0) + 1;
  }
  int attempts_used = 0;
  for (const auto& [index, r] : p.records) attempts_used = std::max(attempts_used, r.id.attempt);
  return {{"name", p.problem.name},
          {"number", p.problem.number},
          {"phase", PhaseName(p.phase)},
          {"attempt", p.attempt},
          {"attempts_used", attempts_used},
          {"samples_done", p.records.size()},
          {"best", BestJson(p)},
          {"failure_kinds", kinds},
          {"running", running},
          {"started_at", p.started_at > 0 ? json(p.started_at) : json(nullptr)},
          {"finished_at", p.finished_at > 0 ? json(p.finished_at) : json(nullptr)}};
}

}  // namespace

json SummaryJson(const BatchState& state) {
  Counts c = Count(state);
  json problems = json::array();
  for (const auto& p : state.problems) problems.push_back(ProblemJson(p));
  json errors = json::array();
  for (const auto& e : state.recent_errors) {
    errors.push_back({{"time", e.time},
                      {"problem", e.id.problem},
                      {"index", e.id.index},
                      {"attempt", e.id.attempt},
                      {"sample", e.id.sample},
                      {"status", e.status},
                      {"message", e.message}});
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return {{"kbrun_version", KBRUN_VERSION},
          {"state", state.state},
          {"failure", state.failure.empty() ? json(nullptr) : json(state.failure)},
          {"pid", static_cast<long long>(getpid())},
          {"host", host},
          {"started_at", state.started_at},
          {"updated_at", state.updated_at},
          {"finished_at", state.finished_at > 0 ? json(state.finished_at) : json(nullptr)},
          {"sessions", state.sessions},
          {"config", state.config},
          {"llm_outage", state.llm_outage},
          {"lanes", state.lanes},
          {"totals",
           {{"problems", c.problems},
            {"queued", c.queued},
            {"running", c.running},
            {"solved", c.solved},
            {"unsolved", c.unsolved},
            {"samples", c.samples},
            {"successes", c.successes},
            {"by_status", c.by_status},
            {"in_flight", c.by_stage},
            {"prompt_tokens", state.prompt_tokens},
            {"completion_tokens", state.completion_tokens}}},
          {"problems", problems},
          {"recent_errors", errors}};
}

std::string ProgressBar(int done, int total, int width) {
  int filled = total > 0 ? done * width / total : 0;
  return "[" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.') +
         "]";
}

std::string ProgressLine(const BatchState& state, double now) {
  Counts c = Count(state);
  std::string line = fmt::format("[{}/{} problems] {} samples", c.solved + c.unsolved, c.problems, c.samples);
  if (c.samples > 0) {
    line += ":";
    // Fixed order, so that the line does not jump around as counts appear.
    const char* order[] = {"correct",  "incorrect",   "compile_error", "runtime_error",     "timeout",
                           "rejected", kStatusNoCode, kStatusLlmError, kStatusInternalError};
    bool first = true;
    for (const char* status : order) {
      auto it = c.by_status.find(status);
      if (it == c.by_status.end()) continue;
      line += fmt::format("{} {} {}", first ? "" : ",", it->second, status);
      first = false;
    }
  }
  line += fmt::format(" | solved {}", c.solved);
  if (!c.by_stage.empty()) {
    line += " | in flight:";
    for (const auto& [stage, n] : c.by_stage) line += fmt::format(" {} {}", stage, n);
  }
  line += " | " + FormatDuration(now - state.started_at);
  return line;
}

}  // namespace kbrun::batch
