// The batch pipeline (batch/scheduler.h). Over 400 lines for a reason: it is one class,
// BatchRun, whose stages (generate, compile, run on a lane, lane retirement, resume) share one
// mutex and the state it guards; what can stand alone is beside it (attempt_plan, best_of,
// lane_health, results_store, work_queue, capacity).
#include "batch/scheduler.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <fmt/format.h>

#include "batch/attempt_plan.h"
#include "batch/batch_settings.h"
#include "batch/batch_state.h"
#include "batch/best_of.h"
#include "batch/capacity.h"
#include "batch/clock.h"
#include "batch/lane_cost.h"
#include "batch/lane_health.h"
#include "batch/results_store.h"
#include "batch/work_queue.h"
#include "prompts/extract.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::batch {
namespace {

using nlohmann::json;

// One sample on its way through the pipeline.
struct SampleTask {
  size_t problem = 0;  // index into BatchState::problems
  SampleId id;
  std::string prompt;
  bool resumed = false;  // its response was already on disk: no LLM call
  json llm = nullptr;
  StageSpan llm_stage, compile_stage, gpu_stage;
  bool has_code = false;
  eval::CompiledCandidate compiled;
  int lane = -1;
  json reruns = json::array();  // runs discarded because their lane was retired (lane_health.h)
  double discarded_lane_s = 0;  // ... and the lane seconds they held
  // --evaluator: the evaluation at the service (remote_evaluator.h).
  StageSpan remote_stage;
  json remote = nullptr;
  std::string error_category;  // of a sample that failed before a verdict, when not its status
};
using TaskPtr = std::shared_ptr<SampleTask>;

std::string FirstLine(const std::string& text) {
  auto lines = SplitLines(Trim(text));
  return lines.empty() ? "" : lines[0];
}

std::string Label(const SampleId& id) {
  return fmt::format("{} #{} (attempt {} sample {})", id.problem, id.index, id.attempt, id.sample);
}

class BatchRun {
 public:
  BatchRun(const BatchOptions& options, const std::vector<Problem>& problems, llm::Provider& provider,
           const PromptBuilder& prompts)
      : o_(options), store_(options.results_dir), provider_(provider), prompts_(prompts) {
    for (const auto& p : problems) state_.problems.push_back(ProblemState{p});
    // Test hook: "<problem>#<N>" makes sample N's evaluation throw, as a kbrun bug would.
    if (auto fault = GetEnvOption("KBRUN_TEST_THROW_IN_EVAL")) throw_in_eval_ = *fault;
    for (int gpu : o_.gpu_lanes) {
      state_.lanes.push_back({{"gpu", gpu},
                              {"state", "active"},
                              {"samples", 0},
                              {"probes", 0},
                              {"retired_at", nullptr},
                              {"reason", nullptr},
                              {"probe", nullptr}});
    }
    active_lanes_ = static_cast<int>(o_.gpu_lanes.size());
  }

  BatchOutcome Run();

 private:
  void LoadPreviousState(const json& previous_summary);
  json ConfigJson() const;
  void SetAsideDamagedSummary(const std::string& problem);
  int HighestIndexOnDisk() const;
  bool WaitForLlm();
  void LlmReachable();
  void LlmConnectionFailed(const TaskPtr& t, const std::string& what);
  void LlmWorker();
  void CompileWorker();
  void WarmUpBuilds();
  void GpuLane(size_t lane);
  void GenerateOne(const TaskPtr& t);
  void CompileOne(const TaskPtr& t);
  // `ahead`: the sample's run, started while the lane's previous sample ran (run_ahead); `next`:
  // the lane's next sample's, started now (eval::Run).
  bool RunOne(const TaskPtr& t, size_t lane, std::shared_ptr<eval::RunAhead> ahead,
              const std::shared_ptr<const eval::RunAhead>& next);
  bool Stopping();  // stopping_ or Ctrl-C
  void RemoteOne(const TaskPtr& t, const std::string& code);
  bool LaneSurvives(const TaskPtr& t, size_t lane, const eval::EvalResult& result);
  void Guarded(const std::function<void()>& body);
  void SampleGuarded(const TaskPtr& t, const char* stage, const std::function<void()>& body);

  void AdvanceLocked(size_t p);
  void AdmitLocked();
  std::string PromptForLocked(size_t p, int attempt);
  void SetStage(const SampleTask& t, Stage stage);
  void SetStageLocked(const SampleTask& t, Stage stage);
  void Finish(const TaskPtr& t, const eval::EvalResult* result, const std::string& status, const std::string& message);
  void Abandon(const TaskPtr& t);
  void Fatal(const std::string& message, bool config);
  void Event(const std::string& message) { store_.Log(message); }
  void Timeline(const SampleTask& t, const char* stage, const StageSpan& span, bool discarded = false);
  void Changed() {
    state_.updated_at = NowUnix();
    dirty_ = true;
    cv_.notify_all();
  }
  bool AllDoneLocked() const {
    for (size_t i = 0; i < state_.problems.size(); ++i) {
      const ProblemState& p = state_.problems[i];
      if (!p.done() && !(held_.count(i) && p.running.empty())) return false;
    }
    return true;
  }
  void PrintProgressLocked(bool final_line);
  eval::EvalRequest RequestFor(const SampleTask& t, int gpu) const {
    eval::EvalRequest r{state_.problems[t.problem].problem.path, store_.CodePath(t.id.problem, t.id.index), o_.eval};
    r.options.gpu_index = gpu;
    return r;
  }

  const BatchOptions& o_;
  ResultsStore store_;
  llm::Provider& provider_;
  const PromptBuilder& prompts_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  BatchState state_;
  bool dirty_ = true;
  bool stopping_ = false;
  bool config_failure_ = false;
  int llm_calls_ = 0;
  std::string throw_in_eval_;
  int index_offset_ = 0;  // added to N for samples planned under this run's settings
  // LLM outage (docs/RESULTS.md): connection failures in a row, and the pause they caused.
  struct LlmOutage {
    int consecutive_failures = 0;
    bool paused = false;
    bool probe_in_flight = false;  // while paused, one call at a time tries the endpoint
    double since = 0, next_probe_at = 0, backoff_s = 1;
    std::string last_error;
  } outage_;
  bool llm_unavailable_ = false;
  // GPU lanes (lane_health.h): state_.lanes[i] is o_.gpu_lanes[i]'s entry in summary.json.
  int active_lanes_ = 0;
  bool no_gpu_lanes_ = false;  // every lane was retired: the batch stopped
  // --evaluator: problems with a sample the service could not evaluate (evaluator_unavailable)
  // take no next attempt in this run (a reflection on a non-verdict teaches nothing): they
  // wait for the resume, which evaluates that sample again.
  std::set<size_t> held_;
  int evaluator_unavailable_ = 0;  // such samples in this run
  bool evaluator_auth_failed_ = false;

  // This run's GPU-lane time (lane_cost.h): per sample whose run was kept, its lane seconds
  // (its discarded runs' included); runs discarded after a lane failure.
  std::vector<double> lane_seconds_;
  int discarded_runs_ = 0;
  double discarded_lane_s_ = 0;

  WorkQueue<TaskPtr> llm_q_, compile_q_, gpu_q_;
};

void BatchRun::LoadPreviousState(const json& previous) {
  // Sessions of earlier runs of the same batch: the report sums their wall time.
  if (previous.is_object() && previous.contains("sessions") && previous["sessions"].is_array()) {
    for (auto session : previous["sessions"]) {
      if (!session.is_object()) continue;
      // A session that was killed never wrote its end: its last update is the best we know.
      if (session.value("ended_at", json(nullptr)).is_null() && session["started_at"].is_number() &&
          previous["updated_at"].is_number()) {
        session["ended_at"] = previous["updated_at"];
      }
      state_.sessions.push_back(session);
    }
  }
  for (auto& ps : state_.problems) {
    store_.RemoveStaleTempFiles(ps.problem.name);
    ps.records = store_.LoadRecords(ps.problem.name);
    DropRetryableRecords(ps.records);
    for (const auto& [index, r] : ps.records) {
      if (r.doc.contains("llm") && r.doc["llm"].is_object()) {
        state_.prompt_tokens += r.doc["llm"].value("prompt_tokens", 0);
        state_.completion_tokens += r.doc["llm"].value("completion_tokens", 0);
      }
    }
    ps.best = PickBest(ps.records);
    if (ps.best) {
      // A crash between a result and its best_* copy leaves the copy behind: redo it.
      auto on_disk = ReadFile(store_.ProblemDir(ps.problem.name) / "best_result.json");
      auto doc = on_disk ? json::parse(*on_disk, nullptr, false) : json(nullptr);
      if (!doc.is_object() || doc.value("index", 0) != *ps.best) store_.WriteBest(ps.records.at(*ps.best));
    }
  }
}

json BatchRun::ConfigJson() const {
  auto optional_number = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return {{"problems_dir", fs::absolute(o_.problems_dir).string()},
          {"first", o_.first},
          {"last", o_.last},
          {"attempts", o_.attempts},
          {"samples", o_.samples},
          {"target_speedup", o_.target_speedup},
          {"llm_concurrency", o_.llm_concurrency},
          {"compile_pool", o_.compile_pool},
          {"gpu_lanes", o_.gpu_lanes},
          {"schedule", o_.schedule == Schedule::kByProblem ? "by-problem" : "pipelined"},
          {"provider", o_.provider_name},
          {"model", o_.model},
          {"prompts_dir", o_.prompts_dir.empty() ? json(nullptr) : json(fs::absolute(o_.prompts_dir).string())},
          {"temperature", o_.temperature},
          {"max_tokens", o_.max_tokens},
          {"reasoning_effort", o_.reasoning_effort},
          {"device", o_.eval.device},
          {"precision", o_.eval.precision},
          {"backend", o_.eval.backend},
          {"correctness_trials", o_.eval.correctness_trials},
          {"timing_trials", o_.eval.timing_trials},
          {"warmup_runs", o_.eval.warmup_runs},
          {"tolerance", o_.eval.tolerance},
          {"atol", optional_number(o_.eval.atol)},
          {"rtol", optional_number(o_.eval.rtol)},
          {"shapes", o_.eval.shapes},
          {"allow_library_kernels", o_.eval.allow_library_kernels},
          {"baselines", o_.eval.baselines},
          {"llm_outage_after", o_.llm_outage_after},
          {"llm_outage_timeout_s", o_.llm_outage_timeout_s},
          // --evaluator: the service that evaluated (its URL without credentials); null: here.
          {"evaluator", o_.remote ? json(o_.remote->display_url()) : json(nullptr)}};
}

// A summary.json that does not parse (truncated, edited) is kept for a post-mortem, and the
// state is rebuilt from the result files. What only it knew (earlier sessions' times, recent
// errors) is lost: the sessions list says so, and the report shows those figures as unknown.
void BatchRun::SetAsideDamagedSummary(const std::string& problem) {
  std::string stamp;
  for (char c : IsoTime(NowUnix()).substr(0, 19)) {
    if (c != '-' && c != ':') stamp += c;
  }
  fs::path aside = store_.root() / ("summary.json.damaged-" + stamp + "Z");
  std::error_code ec;
  fs::rename(store_.SummaryPath(), aside, ec);
  std::string message = fmt::format(
      "summary.json {}; {}; the batch state is rebuilt from the result files (earlier sessions' times are unknown)",
      problem, ec ? "it could not be moved aside: " + ec.message() : "kept as " + aside.filename().string());
  fmt::print(stderr, "kbrun: warning: {}\n", message);
  Event("WARNING " + message);
  state_.sessions.push_back({{"started_at", nullptr}, {"ended_at", nullptr}, {"pid", nullptr}, {"lost", true}});
}

// The highest N of any prompt/response/code/result file in the folder: samples planned
// after a change of --samples are numbered above it, so no file is claimed twice.
int BatchRun::HighestIndexOnDisk() const {
  static const std::regex sample_file(R"(^(prompt|response|code|result)_(\d+)\..*)");
  int highest = 0;
  std::error_code ec;
  for (const auto& problem_dir : fs::directory_iterator(store_.root(), ec)) {
    if (!problem_dir.is_directory(ec)) continue;
    for (const auto& f : fs::directory_iterator(problem_dir.path(), ec)) {
      std::smatch m;
      std::string name = f.path().filename().string();
      if (std::regex_match(name, m, sample_file)) highest = std::max(highest, std::stoi(m[2].str()));
    }
  }
  return highest;
}

// Plans what problem `p` needs next and enqueues it; marks it finished when nothing is left.
void BatchRun::AdvanceLocked(size_t p) {
  ProblemState& ps = state_.problems[p];
  const std::string& name = ps.problem.name;
  AttemptPlan plan = PlanNextAttempt(
      ps.records, [&](int index) { return fs::exists(store_.ResponsePath(name, index)); }, o_.samples, o_.attempts,
      index_offset_);
  double now = NowUnix();
  if (plan.finished) {
    bool was_done = ps.done();
    ps.phase = plan.solved ? ProblemPhase::kSolved : ProblemPhase::kUnsolved;
    if (!was_done) {
      ps.finished_at = now;
      std::string best = "no sample";
      if (ps.best) {
        const SampleRecord& b = ps.records.at(*ps.best);
        best = b.correct ? fmt::format("best #{} speedup {:.3f}x", b.id.index, b.speedup)
                         : fmt::format("best #{} {}", b.id.index, b.status);
      }
      int attempts = 0;
      for (const auto& [i, r] : ps.records) attempts = std::max(attempts, r.id.attempt);
      Event(fmt::format("{}: {} after {} attempt{} ({})", name, plan.solved ? "SOLVED" : "unsolved", attempts,
                        attempts == 1 ? "" : "s", best));
    }
    Changed();
    return;
  }
  if (ps.phase == ProblemPhase::kQueued) {
    ps.phase = ProblemPhase::kRunning;
    ps.started_at = now;
  }
  ps.attempt = plan.attempt;
  std::string prompt;
  if (!plan.to_generate.empty()) prompt = PromptForLocked(p, plan.attempt);
  std::string from_disk =
      plan.to_evaluate.empty() ? "" : fmt::format(", {} saved response(s) to evaluate", plan.to_evaluate.size());
  Event(fmt::format("{}: attempt {}: {} sample{} to generate{}", name, plan.attempt, plan.to_generate.size(),
                    plan.to_generate.size() == 1 ? "" : "s", from_disk));
  auto make = [&](int sample) {
    auto t = std::make_shared<SampleTask>();
    t->problem = p;
    t->id = MakeSampleId(name, plan.attempt, sample, o_.samples);
    t->id.index += index_offset_;
    return t;
  };
  for (int sample : plan.to_evaluate) {
    TaskPtr t = make(sample);
    t->resumed = true;
    // The call was made by an earlier run: its figures come from the saved metadata.
    t->llm = store_.ReadResponseMeta(name, t->id.index);
    t->llm["resumed_from_disk"] = true;
    state_.prompt_tokens += t->llm.value("prompt_tokens", 0);
    state_.completion_tokens += t->llm.value("completion_tokens", 0);
    if (t->llm.contains("stage") && t->llm["stage"].is_object()) {
      t->llm_stage = {t->llm["stage"].value("start", 0.0), t->llm["stage"].value("end", 0.0)};
    }
    t->llm.erase("stage");
    ps.running[t->id.index] = {t->id, Stage::kCompileQueue, now};
    compile_q_.Push(t);
  }
  for (int sample : plan.to_generate) {
    TaskPtr t = make(sample);
    // A prompt saved before a crash is the one this attempt's other samples got: keep it.
    if (auto saved = store_.ReadPrompt(name, t->id.index)) {
      t->prompt = *saved;
    } else {
      t->prompt = prompt;
      store_.WritePrompt(name, t->id.index, prompt);
    }
    ps.running[t->id.index] = {t->id, Stage::kLlmQueue, now};
    // Later attempts first: they finish problems, which frees the pipeline sooner.
    llm_q_.Push(t, -plan.attempt);
  }
  Changed();
}

// Starts queued problems: all of them (pipelined), or, by problem, the first one not yet
// finished, and only when no other problem is in flight.
void BatchRun::AdmitLocked() {
  bool one_at_a_time = o_.schedule == Schedule::kByProblem;
  for (size_t p = 0; p < state_.problems.size(); ++p) {
    const ProblemState& ps = state_.problems[p];
    if (one_at_a_time && ps.phase == ProblemPhase::kRunning && !held_.count(p)) return;
    if (ps.phase != ProblemPhase::kQueued) continue;
    AdvanceLocked(p);  // a problem finished in an earlier run is marked done here, without work
    if (one_at_a_time && ps.phase == ProblemPhase::kRunning) return;
  }
}

std::string BatchRun::PromptForLocked(size_t p, int attempt) {
  ProblemState& ps = state_.problems[p];
  if (attempt > 1) {
    std::map<int, SampleRecord> earlier;
    for (const auto& [index, r] : ps.records) {
      // Failures that are not the model's (its call, kbrun itself) teach it nothing.
      if (r.id.attempt < attempt && r.status != kStatusLlmError && r.status != kStatusInternalError) {
        earlier[index] = r;
      }
    }
    // The freshest of the best: the model learns most from its latest try.
    if (auto best = PickBest(earlier, Ties::kPreferLater)) {
      const SampleRecord& prev = earlier.at(*best);
      std::string code = prev.has_code ? store_.ReadCode(ps.problem.name, prev.id.index).value_or("") : "";
      return prompts_.Reflection(ps.problem, prev, code);
    }
  }
  return prompts_.Initial(ps.problem);
}

void BatchRun::SetStageLocked(const SampleTask& t, Stage stage) {
  auto& running = state_.problems[t.problem].running;
  if (auto it = running.find(t.id.index); it != running.end()) {
    it->second.stage = stage;
    it->second.since = NowUnix();
  }
  Changed();
}

void BatchRun::SetStage(const SampleTask& t, Stage stage) {
  std::lock_guard<std::mutex> lock(mu_);
  SetStageLocked(t, stage);
}

void BatchRun::Timeline(const SampleTask& t, const char* stage, const StageSpan& span, bool discarded) {
  json event = {{"problem", t.id.problem}, {"index", t.id.index},      {"attempt", t.id.attempt},
                {"sample", t.id.sample},   {"stage", stage},           {"start", span.start},
                {"end", span.end},         {"seconds", span.seconds()}};
  if (std::string(stage) == "gpu") event["lane"] = t.lane;
  if (discarded) event["discarded"] = "lane_failure";  // its result was not kept: rerun on another lane
  // A compile that failed before the worker started (backend not configured) reports 0.
  if (std::string(stage) == "compile") event["cpu_s"] = t.compiled.compile_cpu_s;
  store_.AppendTimeline(event);
}

void BatchRun::Finish(const TaskPtr& t, const eval::EvalResult* result, const std::string& status,
                      const std::string& message) {
  // Work cut short by Ctrl-C is not a result: the resumed batch redoes it.
  bool cut =
      result ? (result->error_category == "cancelled" || (CancelRequested() && !result->correct)) : CancelRequested();
  if (cut) {
    Abandon(t);
    return;
  }
  SampleExtras extras;
  extras.llm = t->llm;
  extras.llm_stage = t->llm_stage;
  extras.compile_stage = t->compile_stage;
  extras.gpu_stage = t->gpu_stage;
  extras.target_speedup = o_.target_speedup;
  extras.has_code = t->has_code;
  extras.gpu_lane = t->lane;
  if (!t->reruns.empty()) extras.reruns_after_lane_failure = t->reruns;
  extras.remote_stage = t->remote_stage;
  extras.remote = t->remote;
  extras.error_category = t->error_category;
  SampleRecord record = MakeRecord(t->id, result, status, message, extras);
  store_.WriteResult(record);  // first: from here on the sample is done, whatever happens

  std::lock_guard<std::mutex> lock(mu_);
  ProblemState& ps = state_.problems[t->problem];
  ps.running.erase(t->id.index);
  ps.records[t->id.index] = record;
  if (!ps.best || IsBetter(record, ps.records.at(*ps.best))) {
    ps.best = t->id.index;
    store_.WriteBest(record);
  }
  std::string outcome = record.correct ? fmt::format("correct, speedup {:.3f}x{}", record.speedup,
                                                     record.success ? "" : " (below target)")
                                       : fmt::format("{}: {}", record.status, FirstLine(record.error_message));
  Event(fmt::format("{}: {}", Label(t->id), outcome));
  if (!record.success && !record.correct) {
    state_.recent_errors.push_back({NowUnix(), t->id, record.status, FirstLine(record.error_message)});
    if (state_.recent_errors.size() > kMaxRecentErrors) state_.recent_errors.pop_front();
  }
  if (!o_.progress_bar && !o_.quiet) PrintProgressLocked(false);
  if (record.error_category == kCategoryEvaluatorUnavailable) {
    ++evaluator_unavailable_;
    if (held_.insert(t->problem).second) {
      Event(fmt::format("{}: held until a resume: the evaluation service could not evaluate {}", ps.problem.name,
                        Label(t->id)));
    }
  }
  bool held = held_.count(t->problem) > 0;
  try {
    if (ps.running.empty() && !stopping_ && !held) AdvanceLocked(t->problem);
    if ((ps.done() || (held && ps.running.empty())) && !stopping_ && o_.schedule == Schedule::kByProblem) {
      AdmitLocked();
    }
  } catch (const std::exception& e) {
    // A prompt that cannot be built (template gone, placeholder typo) stops the batch.
    stopping_ = true;
    config_failure_ = true;
    state_.failure = fmt::format("{}: cannot build the next prompt: {}", ps.problem.name, e.what());
    Event("FATAL " + state_.failure);
  }
  Changed();
}

void BatchRun::Abandon(const TaskPtr& t) {
  if (!t->compiled.work_dir.empty() && !o_.eval.keep_work_dir) {
    std::error_code ec;
    fs::remove_all(t->compiled.work_dir, ec);
  }
  std::lock_guard<std::mutex> lock(mu_);
  state_.problems[t->problem].running.erase(t->id.index);
  Changed();
}

void BatchRun::Fatal(const std::string& message, bool config) {
  std::lock_guard<std::mutex> lock(mu_);
  if (state_.failure.empty()) {
    state_.failure = message;
    config_failure_ = config;
    Event("FATAL " + message);
  }
  stopping_ = true;
  Changed();
}

// Runs a worker loop; an exception there is kbrun's own failure and stops the batch.
void BatchRun::Guarded(const std::function<void()>& body) {
  try {
    body();
  } catch (const std::exception& e) {
    Fatal(std::string("internal error: ") + e.what(), false);
  }
}

// An exception while handling one sample (kbrun's own bug, a stray byte, a full disk in
// the evaluator's private dir) is that sample's internal_error: the batch goes on. Only
// when the sample cannot even be recorded does the exception reach Guarded and stop it.
void BatchRun::SampleGuarded(const TaskPtr& t, const char* stage, const std::function<void()>& body) {
  std::string message;
  try {
    body();
    return;
  } catch (const std::exception& e) {
    message = fmt::format("internal error in the {} stage: {}", stage, e.what());
  }
  Event(fmt::format("{}: {}", Label(t->id), message));
  if (!t->compiled.work_dir.empty() && !o_.eval.keep_work_dir) {
    std::error_code ec;
    fs::remove_all(t->compiled.work_dir, ec);
  }
  Finish(t, nullptr, kStatusInternalError, message);
}

void BatchRun::LlmWorker() {
  while (auto next = llm_q_.Pop()) SampleGuarded(*next, "llm", [&] { GenerateOne(*next); });
}

void BatchRun::CompileWorker() {
  while (auto next = compile_q_.Pop()) SampleGuarded(*next, "compile", [&] { CompileOne(*next); });
}

// A lane takes samples until the queue closes or its device fails a probe (RunOne: false).
// With run_ahead, as a sample starts on the lane, the next waiting one starts its processes
// beside it (eval::StartRunAhead) and is the lane's next sample; a sample taken so and not run
// (the lane retired, the batch stopping) goes back to the queue or is abandoned like the queue's.
void BatchRun::GpuLane(size_t lane) {
  std::optional<TaskPtr> current = gpu_q_.Pop();
  std::shared_ptr<eval::RunAhead> current_ahead;
  // Through a gate even on its own turn, so that its timing waits for the next sample's CUDA start.
  auto start_ahead = [&](const TaskPtr& t) -> std::shared_ptr<eval::RunAhead> {
    try {
      return eval::StartRunAhead(RequestFor(*t, o_.gpu_lanes[lane]), t->compiled);
    } catch (const std::exception& e) {  // it runs as usual when its turn comes
      Event(fmt::format("{}: could not start its run ahead: {}", Label(t->id), e.what()));
      return nullptr;
    }
  };
  while (current) {
    if (o_.run_ahead && !current_ahead && !Stopping()) current_ahead = start_ahead(*current);
    std::optional<TaskPtr> following = o_.run_ahead ? gpu_q_.TryPop() : std::nullopt;
    std::shared_ptr<eval::RunAhead> following_ahead = following ? start_ahead(*following) : nullptr;
    bool keep_going = true;
    SampleGuarded(*current, "gpu",
                  [&] { keep_going = RunOne(*current, lane, std::move(current_ahead), following_ahead); });
    if (following && (!keep_going || Stopping())) {
      following_ahead.reset();  // its processes end without running anything
      // The lane retired: first in the queue for another lane. Stopping: abandoned as the queue's are.
      if (keep_going || !gpu_q_.Push(*following, -1)) Abandon(*following);
      following.reset();
    }
    if (!keep_going) return;
    current = following ? std::move(following) : gpu_q_.Pop();
    current_ahead = std::move(following_ahead);
  }
}

bool BatchRun::Stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_ || CancelRequested();
}

// While the LLM stage is paused by an outage, callers wait here; one at a time is let
// through, when its backoff has passed, to try the endpoint. False: the batch is stopping.
bool BatchRun::WaitForLlm() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (stopping_ || CancelRequested()) return false;
    if (!outage_.paused) return true;
    if (!outage_.probe_in_flight && NowUnix() >= outage_.next_probe_at) {
      outage_.probe_in_flight = true;
      return true;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

void BatchRun::LlmReachable() {
  std::lock_guard<std::mutex> lock(mu_);
  if (outage_.paused) {
    Event(fmt::format("LLM reachable again after {}: LLM calls resume", FormatDuration(NowUnix() - outage_.since)));
  }
  outage_ = LlmOutage{};
  Changed();
}

// A call that could not connect is no answer: the sample goes back to the queue with its
// attempt untouched. A run of them pauses the LLM stage; a pause that outlasts
// --llm-outage-timeout stops the batch as llm_unavailable.
void BatchRun::LlmConnectionFailed(const TaskPtr& t, const std::string& what) {
  std::unique_lock<std::mutex> lock(mu_);
  double now = NowUnix();
  ++outage_.consecutive_failures;
  outage_.last_error = what;
  outage_.probe_in_flight = false;
  if (!outage_.paused && outage_.consecutive_failures >= o_.llm_outage_after) {
    outage_.paused = true;
    outage_.since = now;
    outage_.backoff_s = 1;
    outage_.next_probe_at = now + outage_.backoff_s;
    std::string message = fmt::format(
        "LLM unreachable: {} calls in a row could not connect ({}); LLM calls paused, retried with backoff for up "
        "to {}",
        outage_.consecutive_failures, what, FormatDuration(o_.llm_outage_timeout_s));
    Event(message);
    if (!o_.quiet) fmt::print(stderr, "{}kbrun: {}\n", o_.progress_bar ? "\n" : "", message);
  } else if (outage_.paused) {
    double deadline = outage_.since + o_.llm_outage_timeout_s;
    if (now >= deadline) {
      if (state_.failure.empty()) {
        state_.failure = fmt::format(
            "the LLM endpoint was unreachable for {} ({} calls in a row could not connect; "
            "last: {}); problems not finished stay unattempted: run the same command to "
            "resume when it is back",
            FormatDuration(now - outage_.since), outage_.consecutive_failures, what);
        Event("FATAL " + state_.failure);
      }
      llm_unavailable_ = true;
      stopping_ = true;
    } else {
      outage_.backoff_s = std::min(outage_.backoff_s * 2, 60.0);
      outage_.next_probe_at = std::min(now + outage_.backoff_s, deadline);
    }
  }
  SetStageLocked(*t, Stage::kLlmQueue);
  lock.unlock();
  if (!llm_q_.Push(t, -t->id.attempt)) Abandon(t);
}

void BatchRun::GenerateOne(const TaskPtr& t) {
  if (CancelRequested() || !WaitForLlm()) {
    Abandon(t);
    return;
  }
  SetStage(*t, Stage::kLlm);
  Event(fmt::format("{}: llm start", Label(t->id)));
  llm::CompletionRequest request;
  request.prompt = t->prompt;
  request.replay_key = fmt::format("{}/attempt{}_sample{}", t->id.problem, t->id.attempt, t->id.sample);
  request.raw_response_path = store_.RawResponsePath(t->id.problem, t->id.index);
  t->llm_stage.start = NowUnix();
  llm::Completion c;
  try {
    c = provider_.Complete(request);
  } catch (const llm::LlmError& e) {
    t->llm_stage.end = NowUnix();
    if (CancelRequested()) {
      Abandon(t);
      return;
    }
    std::string what = fmt::format("{} ({})", e.what(), llm::LlmErrorKindName(e.kind()));
    if (e.kind() == llm::LlmErrorKind::kConnection) {
      LlmConnectionFailed(t, what);
      return;
    }
    LlmReachable();  // it answered, if only with an error
    if (e.kind() == llm::LlmErrorKind::kAuth || e.kind() == llm::LlmErrorKind::kNoKey) {
      Abandon(t);
      Fatal("the LLM API refused the key: " + what, true);
      return;
    }
    t->llm = {{"error", what}, {"latency_s", t->llm_stage.seconds()}};
    Timeline(*t, "llm", t->llm_stage);
    Finish(t, nullptr, kStatusLlmError, what);
    return;
  }
  t->llm_stage.end = NowUnix();
  LlmReachable();
  t->llm = {{"model", c.model},
            {"prompt_tokens", c.prompt_tokens},
            {"completion_tokens", c.completion_tokens},
            {"latency_s", c.latency_s},
            {"http_requests", c.attempts},
            {"finish_reason", c.finish_reason.empty() ? json(nullptr) : json(c.finish_reason)}};
  json meta = t->llm;
  meta["stage"] = {{"start", t->llm_stage.start}, {"end", t->llm_stage.end}};
  // The answer is saved before anything reads it: a crash from here on costs no LLM call.
  store_.WriteResponseMeta(t->id.problem, t->id.index, meta);
  store_.WriteResponse(t->id.problem, t->id.index, c.text);
  Timeline(*t, "llm", t->llm_stage);
  Event(fmt::format("{}: llm done in {}, {}+{} tokens", Label(t->id), FormatDuration(c.latency_s), c.prompt_tokens,
                    c.completion_tokens));
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.prompt_tokens += c.prompt_tokens;
    state_.completion_tokens += c.completion_tokens;
    ++llm_calls_;
    SetStageLocked(*t, Stage::kCompileQueue);
  }
  if (!compile_q_.Push(t)) Abandon(t);  // stopping: the saved response is evaluated on resume
}

void BatchRun::CompileOne(const TaskPtr& t) {
  if (CancelRequested()) {
    Abandon(t);
    return;
  }
  auto response = store_.ReadResponse(t->id.problem, t->id.index);
  prompts::ExtractedCode code = prompts::ExtractCode(response.value_or(""));
  if (!code.ok) {
    Finish(t, nullptr, kStatusNoCode, fmt::format("{}: {}", code.failure, code.reason));
    return;
  }
  store_.WriteCode(t->id.problem, t->id.index, code.code);
  t->has_code = true;
  if (o_.remote) {
    RemoteOne(t, code.code);
    return;
  }
  SetStage(*t, Stage::kCompile);
  Event(fmt::format("{}: compile start{}", Label(t->id), t->resumed ? " (response saved by an earlier run)" : ""));
  t->compile_stage.start = NowUnix();
  if (!throw_in_eval_.empty() && throw_in_eval_ == fmt::format("{}#{}", t->id.problem, t->id.index)) {
    throw std::runtime_error("injected fault (KBRUN_TEST_THROW_IN_EVAL) before evaluating " + Label(t->id));
  }
  t->compiled = eval::Compile(RequestFor(*t, 0));
  t->compile_stage.end = NowUnix();
  Timeline(*t, "compile", t->compile_stage);
  if (!t->compiled.ok) {
    Finish(t, &t->compiled.failure, "", "");
    return;
  }
  Event(fmt::format("{}: compiled in {}", Label(t->id), FormatDuration(t->compile_stage.seconds())));
  SetStage(*t, Stage::kGpuQueue);
  if (!gpu_q_.Push(t)) Abandon(t);
}

// Runs beside the pools from the batch's start.
void BatchRun::WarmUpBuilds() {
  Event("build warm-up: building the precompiled headers candidates' builds share, beside the first LLM calls");
  Event(batch::WarmUpBuilds(o_.build_warmup, o_.eval, o_.results_dir / "build_warmup.json"));
}

// --evaluator: the service compiles and runs the sample. Its id is saved beside the sample
// (<problem>/remote_N.json) before the first poll, so that a resumed batch polls it again
// rather than submitting it twice; its result document becomes result_N.json's "eval".
void BatchRun::RemoteOne(const TaskPtr& t, const std::string& code) {
  const RemoteEvaluator& remote = *o_.remote;
  const fs::path id_path = store_.ProblemDir(t->id.problem) / fmt::format("remote_{}.json", t->id.index);
  const json options = RemoteRequestOptions(o_.eval, o_.target_speedup);
  std::string saved_id;
  if (auto text = ReadFile(id_path)) {
    json saved = json::parse(*text, nullptr, false);
    // Another service, or other options (--reconfigure), is a new evaluation.
    if (saved.is_object() && saved.value("evaluator", "") == remote.display_url() &&
        saved.value("options", json()) == options && saved.value("code", json()) == code && saved["id"].is_string()) {
      saved_id = saved["id"].get<std::string>();
    }
  }
  SetStage(*t, Stage::kRemote);
  Event(saved_id.empty() ? fmt::format("{}: remote evaluation: submit to {}{}", Label(t->id), remote.display_url(),
                                       t->resumed ? " (response saved by an earlier run)" : "")
                         : fmt::format("{}: remote evaluation {}: poll again (submitted by an earlier run)",
                                       Label(t->id), saved_id));
  std::string problem = ReadFileOrThrow(state_.problems[t->problem].problem.path);
  t->remote_stage.start = NowUnix();
  RemoteOutcome r = remote.Evaluate(problem, code, options, saved_id, [&](const std::string& id) {
    WriteFileAtomic(id_path, JsonText({{"id", id},
                                       {"evaluator", remote.display_url()},
                                       {"submitted_at", NowUnix()},
                                       {"options", options},
                                       {"code", code}}));
    Event(fmt::format("{}: remote evaluation: submitted as {}", Label(t->id), id));
  });
  t->remote_stage.end = NowUnix();
  if (r.failure == RemoteFailure::kCancelled) {
    Abandon(t);  // the saved id (if any) is polled again by the resume
    return;
  }
  if (r.failure == RemoteFailure::kAuth) {
    Abandon(t);
    {
      std::lock_guard<std::mutex> lock(mu_);
      evaluator_auth_failed_ = true;
    }
    Fatal(r.message, true);
    return;
  }
  t->remote = {{"evaluator", remote.display_url()},
               {"id", r.id.empty() ? json(nullptr) : json(r.id)},
               {"http_requests", r.http_requests},
               {"resubmitted", r.resubmitted}};
  Timeline(*t, "remote", t->remote_stage);
  if (r.failure != RemoteFailure::kNone) {
    t->error_category =
        r.failure == RemoteFailure::kUnavailable ? kCategoryEvaluatorUnavailable : kCategoryEvaluatorRejected;
    Finish(t, nullptr, kStatusInternalError, r.message);
    return;
  }
  eval::EvalResult result = EvalResultFromDocument(r.result);
  Finish(t, &result, "", "");
}

// False: the lane was retired while running `t` (the sample went back to the queue).
bool BatchRun::RunOne(const TaskPtr& t, size_t lane, std::shared_ptr<eval::RunAhead> ahead,
                      const std::shared_ptr<const eval::RunAhead>& next) {
  int gpu = o_.gpu_lanes[lane];
  if (CancelRequested()) {
    Abandon(t);
    return true;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    SetStageLocked(*t, Stage::kGpu);
    state_.lanes[lane]["samples"] = state_.lanes[lane]["samples"].get<int>() + 1;
  }
  Event(fmt::format("{}: run start on lane {}", Label(t->id), gpu));
  t->lane = gpu;
  t->gpu_stage.start = NowUnix();
  eval::EvalResult result = eval::Run(RequestFor(*t, gpu), t->compiled, std::move(ahead), next);
  t->gpu_stage.end = NowUnix();
  t->compiled.work_dir.clear();  // Run() removed it
  if (!CancelRequested() && IsDeviceSuspect(result) && !LaneSurvives(t, lane, result)) return false;
  Timeline(*t, "gpu", t->gpu_stage);
  {
    std::lock_guard<std::mutex> lock(mu_);
    lane_seconds_.push_back(t->gpu_stage.seconds() + t->discarded_lane_s);
  }
  Finish(t, &result, "", "");
  return true;
}

// After a device-suspect result (lane_health.h), probes the lane's device in a fresh process.
// Healthy: the verdict stands (true). Not: the lane is retired, the run is discarded and the
// sample goes back to the compile queue, ahead of new work, to run on another lane; when no
// lane is left the batch stops as no_gpu_lanes and the sample stays unfinished for a resume.
bool BatchRun::LaneSurvives(const TaskPtr& t, size_t lane, const eval::EvalResult& result) {
  int gpu = o_.gpu_lanes[lane];
  std::string why = fmt::format("{}: {}", result.error_category, FirstLine(result.error_message));
  Event(fmt::format("{}: {} on lane {}: probing GPU {}", Label(t->id), why, gpu, gpu));
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.lanes[lane]["state"] = "probing";
    state_.lanes[lane]["probes"] = state_.lanes[lane]["probes"].get<int>() + 1;
    Changed();
  }
  ProbeResult probe;
  try {
    probe = o_.lane_probe(RequestFor(*t, gpu).options);
  } catch (const std::exception& e) {
    probe.healthy = false;
    probe.detail = std::string("the probe could not run: ") + e.what();
  }
  if (CancelRequested()) {  // Ctrl-C killed the probe too: no verdict on the device, nor on the sample
    {
      std::lock_guard<std::mutex> lock(mu_);
      state_.lanes[lane]["state"] = "active";
    }
    Abandon(t);  // the resumed batch runs it again
    return false;
  }
  std::unique_lock<std::mutex> lock(mu_);
  if (probe.healthy) {
    state_.lanes[lane]["state"] = "active";
    Changed();
    lock.unlock();
    Event(fmt::format("lane {}: probe passed ({}): the verdict of {} stands", gpu, probe.detail, Label(t->id)));
    return true;
  }
  double now = NowUnix();
  ++discarded_runs_;
  discarded_lane_s_ += t->gpu_stage.seconds();
  t->discarded_lane_s += t->gpu_stage.seconds();
  json& entry = state_.lanes[lane];
  entry["state"] = "retired";
  entry["retired_at"] = now;
  entry["reason"] = fmt::format("{}: {}", Label(t->id), why);
  entry["probe"] = probe.detail;
  --active_lanes_;
  Event(fmt::format("lane {} retired: GPU {} failed its probe ({}) after {} gave {}; the lane takes no more work", gpu,
                    gpu, probe.detail, Label(t->id), why));
  Timeline(*t, "gpu", t->gpu_stage, true);
  if (active_lanes_ == 0) {
    no_gpu_lanes_ = true;
    stopping_ = true;
    if (state_.failure.empty()) {
      state_.failure = fmt::format(
          "every GPU lane was retired (the last: GPU {}, probe: {}); samples not finished "
          "stay unfinished: run the same command to resume once the GPUs work",
          gpu, probe.detail);
      Event("FATAL " + state_.failure);
    }
    Changed();
    lock.unlock();
    Abandon(t);  // not charged: its saved answer is evaluated again on resume
    return false;
  }
  t->reruns.push_back({{"gpu_lane", gpu},
                       {"status", eval::StatusName(result.status)},
                       {"error", {{"category", result.error_category}, {"message", FirstLine(result.error_message)}}},
                       {"probe", probe.detail},
                       {"at", now},
                       // the lane time the discarded run held (the report counts it: lane_cost.h)
                       {"gpu_stage",
                        {{"start", t->gpu_stage.start},
                         {"end", t->gpu_stage.end},
                         {"seconds", t->gpu_stage.end - t->gpu_stage.start}}}});
  t->lane = -1;
  t->compile_stage = {};
  t->gpu_stage = {};
  SetStageLocked(*t, Stage::kCompileQueue);
  lock.unlock();
  Event(fmt::format("{}: not charged to the candidate; rerun on another lane", Label(t->id)));
  // Run() removed the build: the rerun compiles again (a cache hit, usually), before new work.
  constexpr long kRerunPriority = -1000000;
  if (!compile_q_.Push(t, kRerunPriority)) Abandon(t);
  return false;
}

void BatchRun::PrintProgressLocked(bool final_line) {
  if (o_.quiet) return;
  std::string line = ProgressLine(state_, NowUnix());
  if (o_.progress_bar) {
    Counts c = Count(state_);
    fmt::print(stderr, "\r\033[K{} {}{}", ProgressBar(c.solved + c.unsolved, c.problems, 20), line,
               final_line ? "\n" : "");
  } else {
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
}

BatchOutcome BatchRun::Run() {
  double t0 = NowUnix();
  // A refused batch leaves the folder exactly as it found it: no log line, no report.
  BatchOutcome refused;
  refused.refused = true;
  refused.config_failure = true;
  try {
    store_.Lock();
  } catch (const std::exception& e) {
    refused.failure = e.what();
    return refused;
  }
  state_.config = ConfigJson();
  ResultsStore::SummaryFile previous = store_.LoadSummary();
  std::string reconfigured;
  if (previous.state == ResultsStore::SummaryFile::State::kOk) {
    json before = previous.doc.contains("config") ? previous.doc["config"] : json(nullptr);
    if (before.is_object() && before["index_offset"].is_number_integer()) {
      index_offset_ = before["index_offset"].get<int>();
    }
    auto changes = PlanSettingChanges(before, state_.config);
    if (!changes.empty() && !o_.reconfigure) {
      refused.failure = fmt::format(
          "{} holds a batch run with other settings: {}. Resume it with its own settings, pass --reconfigure to "
          "go on with the new ones (recorded in summary.json; earlier samples are kept), or use another --results "
          "folder",
          o_.results_dir.string(), DescribeChanges(changes));
      refused.config_failure = false;
      refused.settings_changed = true;
      return refused;
    }
    if (!changes.empty()) {
      reconfigured = DescribeChanges(changes);
      bool renumbered = std::any_of(changes.begin(), changes.end(), [](const auto& c) { return c.key == "samples"; });
      if (renumbered) index_offset_ = HighestIndexOnDisk();
    }
  }
  state_.config["index_offset"] = index_offset_;
  store_.WriteLockHolder();
  if (previous.state == ResultsStore::SummaryFile::State::kDamaged) SetAsideDamagedSummary(previous.problem);
  LoadPreviousState(previous.doc);
  state_.started_at = t0;
  state_.updated_at = t0;
  state_.sessions.push_back({{"started_at", t0}, {"ended_at", nullptr}, {"pid", static_cast<long long>(getpid())}});
  if (!reconfigured.empty()) {
    Event(fmt::format("reconfigured (--reconfigure): {}{}", reconfigured,
                      index_offset_ > 0 ? fmt::format("; new samples are numbered from {}", index_offset_ + 1) : ""));
  }
  int resumed = 0;
  for (const auto& p : state_.problems) resumed += static_cast<int>(p.records.size());
  std::string where = o_.remote ? fmt::format("llm {} / {} remote evaluations at {}", o_.llm_concurrency,
                                              o_.compile_pool, o_.remote->display_url())
                                : fmt::format("llm {} / compile {} / {} gpu lane(s)", o_.llm_concurrency,
                                              o_.compile_pool, o_.gpu_lanes.size());
  Event(fmt::format("batch start: {} problems, {} attempts x {} samples, {}{}", state_.problems.size(), o_.attempts,
                    o_.samples, where, resumed ? fmt::format(", resuming with {} finished samples", resumed) : ""));

  bool admitted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      AdmitLocked();
      admitted = !stopping_ && !AllDoneLocked();  // a finished batch run again has nothing to warm up for
    } catch (const std::exception& e) {
      stopping_ = true;
      config_failure_ = true;
      state_.failure = e.what();
      Event("FATAL " + state_.failure);
    }
  }

  std::vector<std::thread> threads;
  for (int i = 0; i < o_.llm_concurrency; ++i) threads.emplace_back([this] { Guarded([this] { LlmWorker(); }); });
  for (int i = 0; i < o_.compile_pool; ++i) threads.emplace_back([this] { Guarded([this] { CompileWorker(); }); });
  for (size_t lane = 0; lane < o_.gpu_lanes.size(); ++lane) {
    threads.emplace_back([this, lane] { Guarded([this, lane] { GpuLane(lane); }); });
  }
  if (o_.build_warmup != BuildWarmup::kOff && !o_.remote && admitted) {
    threads.emplace_back([this] { WarmUpBuilds(); });
  }

  // The main thread keeps summary.json and the progress line fresh until the batch ends.
  auto last_write = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto flush = [&](std::unique_lock<std::mutex>& lock) {
    state_.llm_outage = nullptr;
    if (outage_.paused) {
      state_.llm_outage = {{"since", outage_.since},
                           {"consecutive_failures", outage_.consecutive_failures},
                           {"next_try_at", llm_unavailable_ ? json(nullptr) : json(outage_.next_probe_at)},
                           {"gives_up_at", outage_.since + o_.llm_outage_timeout_s},
                           {"last_error", outage_.last_error}};
    }
    json summary = SummaryJson(state_);
    dirty_ = false;
    lock.unlock();
    store_.WriteSummary(summary);
    lock.lock();
    last_write = std::chrono::steady_clock::now();
  };
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_ && !CancelRequested() && !AllDoneLocked()) {
      cv_.wait_for(lock, std::chrono::milliseconds(250));
      // Coalesce bursts of changes: at most a few rewrites a second.
      if (dirty_ && std::chrono::steady_clock::now() - last_write > std::chrono::milliseconds(200)) flush(lock);
      if (o_.progress_bar) PrintProgressLocked(false);
    }
    stopping_ = true;
  }

  // Stop taking work, let what is in flight end (Ctrl-C kills it), then save.
  llm_q_.Close();
  compile_q_.Close();
  for (const TaskPtr& t : gpu_q_.Close()) Abandon(t);
  for (auto& th : threads) th.join();

  std::unique_lock<std::mutex> lock(mu_);
  double end = NowUnix();
  if (CancelRequested()) {
    state_.state = "interrupted";
    Event("batch interrupted: state saved; run the same command again to resume");
  } else if (llm_unavailable_) {
    state_.state = "llm_unavailable";
  } else if (no_gpu_lanes_) {
    state_.state = "no_gpu_lanes";
  } else if (!state_.failure.empty()) {
    state_.state = "failed";
  } else if (!held_.empty()) {
    state_.state = "evaluator_unavailable";
    state_.failure = fmt::format(
        "the evaluation service at {} could not evaluate {} sample{} (evaluator_unavailable); "
        "their problems ({}) wait: run the same command to evaluate them again (their "
        "responses and the ids of their submissions are kept)",
        o_.remote ? o_.remote->display_url() : "?", evaluator_unavailable_, evaluator_unavailable_ == 1 ? "" : "s",
        held_.size());
    Event("FATAL " + state_.failure);
  } else {
    state_.state = "finished";
    state_.finished_at = end;
  }
  state_.sessions.back()["ended_at"] = end;
  state_.updated_at = end;
  // Interrupted problems go back to queued: nothing of theirs is in flight any more.
  for (auto& p : state_.problems) {
    p.running.clear();
    if (p.phase == ProblemPhase::kRunning && state_.state != "finished") p.phase = ProblemPhase::kQueued;
  }
  flush(lock);
  PrintProgressLocked(true);
  Counts c = Count(state_);
  LaneCost lanes = SummarizeLaneSeconds(lane_seconds_);  // mu_ is held
  lanes.discarded_runs = discarded_runs_;
  lanes.discarded_s = discarded_lane_s_;
  Event(fmt::format("batch {}: {} of {} problems solved, {} samples, {} LLM calls this run, wall {}", state_.state,
                    c.solved, c.problems, c.samples, llm_calls_, FormatDuration(end - t0)));
  if (!o_.remote) Event("GPU lanes in this run: " + LaneCostText(lanes));

  BatchOutcome out;
  out.problems = c.problems;
  out.solved = c.solved;
  out.unsolved = c.unsolved;
  out.samples = c.samples;
  out.llm_calls = llm_calls_;
  out.interrupted = state_.state == "interrupted";
  out.failure = state_.failure;
  out.config_failure = config_failure_;
  out.llm_unavailable = llm_unavailable_;
  out.no_gpu_lanes = no_gpu_lanes_;
  out.evaluator_unavailable = state_.state == "evaluator_unavailable";
  out.evaluator_auth = evaluator_auth_failed_;
  out.wall_s = end - t0;
  if (!o_.remote) out.lane_cost = lanes;
  return out;
}

}  // namespace

BatchOutcome RunBatch(const BatchOptions& options, const std::vector<Problem>& problems, llm::Provider& provider,
                      const PromptBuilder& prompts) {
  BatchOptions o = options;
  o.compile_pool = PoolSizeOrCores(o.compile_pool);
  if (o.remote) o.gpu_lanes.clear();  // the service's lanes time the samples
  if (o.gpu_lanes.empty() && !o.remote) o.gpu_lanes = {0};
  if (!o.lane_probe) o.lane_probe = DefaultLaneProbe(o.lane_probe_timeout_s);
  o.llm_concurrency = std::max(1, o.llm_concurrency);
  o.samples = std::max(1, o.samples);
  BatchRun run(o, problems, provider, prompts);
  return run.Run();
}

}  // namespace kbrun::batch
