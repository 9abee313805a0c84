// The evaluation service behind `kbrun serve` (docs/SERVE.md): accepted evaluations are
// written to the state dir first, then go through a queue, a compile pool running
// eval::Compile and one lane per GPU (or one CPU lane) running eval::Run, like `kbrun batch`'s
// pipeline without the LLM stage. This file knows nothing of HTTP (serve/server.h does).
#pragma once

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/build_warmup.h"
#include "batch/lane_cost.h"
#include "batch/work_queue.h"
#include "eval/evaluation.h"

namespace kbrun::serve {

namespace fs = std::filesystem;

struct ServiceOptions {
  fs::path state_dir;
  eval::EvalOptions eval;        // every evaluation's options before its own overrides
  double target_speedup = 1.0;   // default of the `target_speedup` override
  int compile_pool = 0;          // compile threads; 0: number of cores
  std::vector<int> lanes = {0};  // GPU index of each lane (one lane on the CPU)
  bool run_ahead = false;        // the lane's next evaluation starts its processes early (batch_options.h)
  // Start() builds the precompiled headers that candidates' builds share beside the first requests
  // (batch/build_warmup.h; <state-dir>/build_warmup.json says what it built).
  batch::BuildWarmup build_warmup = batch::BuildWarmup::kOff;
  size_t max_pending = 64;  // evaluations accepted and not done; beyond: Submit refuses (429)
  bool log = true;          // one stderr line per accepted and per finished evaluation
};

// The per-evaluation `options` a request may carry (docs/SERVE.md), applied over `options`.
// Returns an error message for an unknown key or a bad value; empty when all applied.
std::string ApplyOverrides(const nlohmann::json& overrides, eval::EvalOptions& options, double& target_speedup);

struct SubmitOutcome {
  int http_status = 202;  // 202 accepted; 400 bad options; 429 too many pending; 500 not written
  std::string id;         // when accepted
  std::string error;      // otherwise
};

class EvalService {
 public:
  explicit EvalService(ServiceOptions options);
  ~EvalService();
  EvalService(const EvalService&) = delete;
  EvalService& operator=(const EvalService&) = delete;

  // Reloads the state dir (done ones keep their result; the others are queued again, in
  // submission order) and starts the compile pool and the lanes. Throws when the state dir
  // cannot be created or read.
  void Start();
  // Closes the queues and waits for the evaluations in progress (cancel them first with
  // RequestCancel() to stop quickly; a cancelled evaluation writes no result and is rerun by
  // the next Start()).
  void Stop();

  // Writes the evaluation to <state-dir>/<id>/ (problem.py, code.py, request.json; atomically:
  // a folder renamed into place) and queues it. 202 means it is on disk.
  SubmitOutcome Submit(const std::string& problem, const std::string& code, const nlohmann::json& overrides);
  // {"id", "state": queued | running | done, "result" (done)}; nullopt for an unknown id.
  std::optional<nlohmann::json> Get(const std::string& id);
  // Prometheus text format (docs/SERVE.md "Metrics").
  std::string Metrics();

 private:
  struct Job;
  using JobPtr = std::shared_ptr<Job>;
  void Enqueue(const JobPtr& job);
  void CompileWorker();
  void WarmUpBuilds();
  void Lane(size_t lane);
  void LaneHeld(size_t lane, double seconds);  // an evaluation held `lane` for `seconds`
  // Stopping: a compiled evaluation that will not run now loses its private build dir (it stays
  // on disk as accepted, and the next start compiles it again).
  void DropCompiled(const JobPtr& job);
  void Finish(const JobPtr& job, const eval::EvalResult* result, const std::string& internal_error);
  JobPtr LoadJob(const fs::path& dir, const std::string& id);

  ServiceOptions o_;
  batch::WorkQueue<JobPtr> compile_q_, lane_q_;
  std::vector<std::thread> threads_;

  std::mutex mu_;                                   // guards everything below
  std::map<std::string, JobPtr> jobs_;              // every known id, done ones too
  size_t queued_ = 0, running_ = 0, reserved_ = 0;  // reserved: being written by Submit
  unsigned long long accepted_ = 0;
  std::map<std::string, unsigned long long> finished_by_status_;
  std::vector<double> lane_busy_s_;
  batch::LaneSecondsHistogram lane_seconds_;  // per evaluation that held a lane (lane_cost.h)
  bool started_ = false;
};

}  // namespace kbrun::serve
