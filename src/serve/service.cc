// kbrun serve's evaluation service (serve/service.h). Over 400 lines for a reason: the queue,
// its state on disk (restart after kill -9), the lanes and the queue's limit are one object
// whose invariants span them; the HTTP layer is apart (serve/server.cc).
#include "serve/service.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include <fmt/format.h>

#include "batch/capacity.h"
#include "batch/clock.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::serve {

using batch::NowUnix;
using nlohmann::json;

namespace {

std::string NewId() {
  std::random_device rd;  // getrandom(2): unguessable, so ids need no further secrecy
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

bool ValidId(const std::string& id) {
  return id.size() == 16 &&
         std::all_of(id.begin(), id.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void SyncDir(const fs::path& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  fsync(fd);
  close(fd);
}

// One of `allowed`, or an error message.
std::string CheckMember(const std::string& key, const json& v, std::initializer_list<const char*> allowed,
                        std::string& out) {
  if (!v.is_string()) return fmt::format("options.{} must be a string", key);
  for (const char* a : allowed) {
    if (v.get<std::string>() == a) {
      out = a;
      return "";
    }
  }
  return fmt::format("options.{} must be one of {}", key, fmt::join(allowed, ", "));
}

std::string CheckInt(const std::string& key, const json& v, long lo, long hi, int& out) {
  if (!v.is_number_integer() || v.get<long long>() < lo || v.get<long long>() > hi) {
    return fmt::format("options.{} must be an integer from {} to {}", key, lo, hi);
  }
  out = static_cast<int>(v.get<long long>());
  return "";
}

}  // namespace

std::string ApplyOverrides(const json& overrides, eval::EvalOptions& o, double& target_speedup) {
  if (overrides.is_null()) return "";
  if (!overrides.is_object()) return "options must be a JSON object";
  std::string err;
  bool tolerance_given = false, fixed_given = false;
  for (const auto& [key, v] : overrides.items()) {
    if (key == "correct_trials") {
      err = CheckInt(key, v, 1, 1000, o.correctness_trials);
    } else if (key == "perf_trials") {
      err = CheckInt(key, v, 1, 100000, o.timing_trials);
    } else if (key == "warmup") {
      err = CheckInt(key, v, 0, 10000, o.warmup_runs);
    } else if (key == "precision") {
      err = CheckMember(key, v, {"fp32", "fp16", "bf16"}, o.precision);
    } else if (key == "shapes") {
      err = CheckMember(key, v, {"fixed", "varied"}, o.shapes);
    } else if (key == "tolerance") {
      err = CheckMember(key, v, {"evidence", "kernelbench", "fixed"}, o.tolerance);
      tolerance_given = true;
    } else if (key == "atol" || key == "rtol") {
      if (!v.is_number() || v.get<double>() < 0) {
        err = fmt::format("options.{} must be a number >= 0", key);
      } else {
        (key == "atol" ? o.atol : o.rtol) = v.get<double>();
        fixed_given = true;
      }
    } else if (key == "seed") {
      if (v.is_number_unsigned() || (v.is_number_integer() && v.get<long long>() >= 0)) {
        o.seed = v.get<uint64_t>();
      } else {
        err = "options.seed must be an integer >= 0";
      }
    } else if (key == "baselines") {
      // ["compile", "cudagraph"]: what is timed besides eager (which always is).
      std::vector<std::string> names;
      for (const auto& b : v.is_array() ? v : json::array()) {
        if (!b.is_string() || !eval::IsBaselineName(b.get<std::string>())) {
          names.clear();
          break;
        }
        names.push_back(b.get<std::string>());
      }
      if (!v.is_array() || names.size() != v.size()) {
        err = "options.baselines must be an array of eager, compile, cudagraph";
      } else {
        o.baselines = eval::NormalizeBaselines(names);
      }
    } else if (key == "target_speedup") {
      if (!v.is_number() || v.get<double>() < 0) {
        err = "options.target_speedup must be a number >= 0";
      } else {
        target_speedup = v.get<double>();
      }
    } else {
      err = fmt::format(
          "unknown option '{}' (allowed: correct_trials, perf_trials, warmup, precision, shapes, tolerance, atol, "
          "rtol, seed, baselines, target_speedup)",
          key);
    }
    if (!err.empty()) return err;
  }
  if (fixed_given) {
    if (tolerance_given && o.tolerance != "fixed") return "options.atol/rtol select the fixed tolerance rule";
    o.tolerance = "fixed";
  } else if (tolerance_given && o.tolerance != "fixed") {
    o.atol.reset();  // the service's --atol/--rtol belong to the fixed rule only
    o.rtol.reset();
  }
  return "";
}

struct EvalService::Job {
  std::string id;
  fs::path dir;
  eval::EvalRequest request;
  double target_speedup = 1.0;
  double accepted_unix = 0;  // this process's clock: when accepted or reloaded
  double start_unix = 0;     // compile start
  std::string state = "queued";
  eval::CompiledCandidate compiled;
};

EvalService::EvalService(ServiceOptions options) : o_(std::move(options)) {
  o_.compile_pool = batch::PoolSizeOrCores(o_.compile_pool);
  if (o_.lanes.empty()) o_.lanes = {0};
  lane_busy_s_.assign(o_.lanes.size(), 0.0);
  for (auto s : {eval::Status::kCorrect, eval::Status::kIncorrect, eval::Status::kCompileError,
                 eval::Status::kRuntimeError, eval::Status::kTimeout, eval::Status::kRejected}) {
    finished_by_status_[eval::StatusName(s)] = 0;
  }
}

EvalService::~EvalService() { Stop(); }

EvalService::JobPtr EvalService::LoadJob(const fs::path& dir, const std::string& id) {
  auto job = std::make_shared<Job>();
  job->id = id;
  job->dir = dir;
  job->request = {dir / "problem.py", dir / "code.py", o_.eval};
  job->target_speedup = o_.target_speedup;
  json req = json::parse(ReadFileOrThrow(dir / "request.json"));
  std::string err = ApplyOverrides(req.value("options", json()), job->request.options, job->target_speedup);
  if (!err.empty()) throw std::runtime_error(err);
  return job;
}

void EvalService::Start() {
  fs::create_directories(o_.state_dir);
  // Private build dirs of evaluations a killed service left behind (ours when --work-dir is not given).
  if (o_.eval.work_root.empty()) {
    o_.eval.work_root = fs::absolute(o_.state_dir) / ".work";  // the workers chdir there from elsewhere
    fs::remove_all(o_.eval.work_root);
  }
  std::vector<std::pair<double, JobPtr>> pending;
  size_t done = 0;
  for (const auto& entry : fs::directory_iterator(o_.state_dir)) {
    std::string name = entry.path().filename().string();
    if (StartsWith(name, ".tmp-")) {  // never acknowledged: the rename is what accepts
      fs::remove_all(entry.path());
      continue;
    }
    if (!ValidId(name) || !entry.is_directory()) continue;
    JobPtr job;
    try {
      job = LoadJob(entry.path(), name);
    } catch (const std::exception& e) {
      fmt::print(stderr, "kbrun serve: skipping {}: {}\n", entry.path().string(), e.what());
      continue;
    }
    job->accepted_unix = NowUnix();
    if (fs::exists(entry.path() / "result.json")) {
      job->state = "done";
      ++done;
    } else {
      json req = json::parse(ReadFileOrThrow(entry.path() / "request.json"));
      pending.emplace_back(req.value("submitted_unix", 0.0), job);
    }
    jobs_[name] = job;
  }
  std::sort(pending.begin(), pending.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first, a.second->id) < std::tie(b.first, b.second->id);
  });
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  for (const auto& [t, job] : pending) Enqueue(job);
  if (o_.log) {
    fmt::print(stderr, "kbrun serve: state dir {}: {} done, {} queued again\n", o_.state_dir.string(), done,
               pending.size());
  }
  for (int i = 0; i < o_.compile_pool; ++i) threads_.emplace_back([this] { CompileWorker(); });
  for (size_t i = 0; i < o_.lanes.size(); ++i) threads_.emplace_back([this, i] { Lane(i); });
  if (o_.build_warmup != batch::BuildWarmup::kOff) threads_.emplace_back([this] { WarmUpBuilds(); });
}

// Beside the compile pool; Stop() after RequestCancel() ends its compiles at once.
void EvalService::WarmUpBuilds() {
  if (o_.log) fmt::print(stderr, "kbrun serve: build warm-up: building the precompiled headers builds share\n");
  std::string line = batch::WarmUpBuilds(o_.build_warmup, o_.eval, o_.state_dir / "build_warmup.json");
  if (o_.log) fmt::print(stderr, "kbrun serve: {}\n", line);
}

void EvalService::Stop() {
  compile_q_.Close();  // what was waiting stays on disk: the next Start() queues it again
  for (const JobPtr& job : lane_q_.Close()) DropCompiled(job);
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void EvalService::Enqueue(const JobPtr& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job->state = "queued";
    ++queued_;
  }
  compile_q_.Push(job);
}

SubmitOutcome EvalService::Submit(const std::string& problem, const std::string& code, const json& overrides) {
  auto job = std::make_shared<Job>();
  job->request = {"", "", o_.eval};
  job->target_speedup = o_.target_speedup;
  if (std::string err = ApplyOverrides(overrides, job->request.options, job->target_speedup); !err.empty()) {
    return {400, "", err};
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_ + running_ + reserved_ >= o_.max_pending) {
      return {429, "",
              fmt::format("{} evaluations are pending (the limit, --max-queued); retry later",
                          queued_ + running_ + reserved_)};
    }
    ++reserved_;
    do {
      job->id = NewId();
    } while (jobs_.count(job->id));
    jobs_[job->id] = nullptr;  // reserved
  }
  job->dir = o_.state_dir / job->id;
  job->request.problem = job->dir / "problem.py";
  job->request.code = job->dir / "code.py";
  job->accepted_unix = NowUnix();
  fs::path tmp = o_.state_dir / (".tmp-" + job->id);
  try {
    fs::create_directories(tmp);
    WriteFileAtomic(tmp / "problem.py", problem);
    WriteFileAtomic(tmp / "code.py", code);
    json req = {{"id", job->id},
                {"submitted_unix", job->accepted_unix},
                {"options", overrides.is_null() ? json::object() : overrides},
                {"kbrun_version", KBRUN_VERSION}};
    WriteFileAtomic(tmp / "request.json", req.dump(2) + "\n");
    fs::rename(tmp, job->dir);
    SyncDir(o_.state_dir);
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.erase(job->id);
    --reserved_;
    return {500, "", fmt::format("could not write the evaluation to the state dir: {}", e.what())};
  }
  size_t pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_[job->id] = job;
    --reserved_;
    ++accepted_;
    ++queued_;
    pending = queued_ + running_;
  }
  compile_q_.Push(job);
  if (o_.log) fmt::print(stderr, "kbrun serve: accepted {} ({} pending)\n", job->id, pending);
  return {202, job->id, ""};
}

std::optional<json> EvalService::Get(const std::string& id) {
  if (!ValidId(id)) return std::nullopt;
  JobPtr job;
  std::string state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !it->second) return std::nullopt;
    job = it->second;
    state = job->state;
  }
  json out = {{"id", id}, {"state", state}};
  if (state == "done") {
    json result = json::parse(ReadFileOrThrow(job->dir / "result.json"));
    out["meets_target"] = result.value("status", "") == "correct" && result["speedup"].is_number() &&
                          result["speedup"].get<double>() >= job->target_speedup;
    out["result"] = std::move(result);
  }
  return out;
}

void EvalService::CompileWorker() {
  while (auto next = compile_q_.Pop()) {
    JobPtr job = *next;
    if (CancelRequested()) return;  // stays on disk, rerun by the next start
    {
      std::lock_guard<std::mutex> lock(mu_);
      --queued_;
      ++running_;
      job->state = "running";
      job->start_unix = NowUnix();
    }
    try {
      eval::EvalRequest req = job->request;
      req.options.gpu_index = o_.lanes[0];  // the compile phase sees no GPU
      job->compiled = eval::Compile(req);
    } catch (const std::exception& e) {
      Finish(job, nullptr, e.what());
      continue;
    }
    if (!job->compiled.ok) {
      Finish(job, &job->compiled.failure, "");
      continue;
    }
    if (!lane_q_.Push(job)) return;
  }
}

// As the batch's lanes (BatchRun::GpuLane): with run_ahead, the next waiting evaluation starts its
// processes while this one runs, and is this lane's next.
void EvalService::Lane(size_t lane) {
  auto request = [&](const JobPtr& job) {
    eval::EvalRequest req = job->request;
    req.options.gpu_index = o_.lanes[lane];
    return req;
  };
  auto start_ahead = [&](const JobPtr& job) -> std::shared_ptr<eval::RunAhead> {
    try {
      return eval::StartRunAhead(request(job), job->compiled);
    } catch (const std::exception&) {  // it runs as usual when its turn comes
      return nullptr;
    }
  };
  std::optional<JobPtr> current = lane_q_.Pop();
  std::shared_ptr<eval::RunAhead> current_ahead;
  while (current) {
    JobPtr job = *current;
    if (CancelRequested()) return;  // on disk: the next start runs it (and what this lane took next)
    if (o_.run_ahead && !current_ahead) current_ahead = start_ahead(job);
    std::optional<JobPtr> following = o_.run_ahead ? lane_q_.TryPop() : std::nullopt;
    std::shared_ptr<eval::RunAhead> following_ahead = following ? start_ahead(*following) : nullptr;
    double t0 = NowUnix();
    try {
      eval::EvalResult result = eval::Run(request(job), job->compiled, std::move(current_ahead), following_ahead);
      LaneHeld(lane, NowUnix() - t0);
      Finish(job, &result, "");
    } catch (const std::exception& e) {
      LaneHeld(lane, NowUnix() - t0);
      Finish(job, nullptr, e.what());
    }
    if (following && lane_q_.Closed()) {  // stopping: as Stop() does with what the queue held
      following_ahead.reset();
      DropCompiled(*following);
      following.reset();
    }
    current = following ? std::move(following) : lane_q_.Pop();
    current_ahead = std::move(following_ahead);
  }
}

void EvalService::DropCompiled(const JobPtr& job) {
  std::error_code ec;
  if (!job->compiled.work_dir.empty() && !o_.eval.keep_work_dir) fs::remove_all(job->compiled.work_dir, ec);
}

void EvalService::LaneHeld(size_t lane, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  lane_busy_s_[lane] += seconds;
  lane_seconds_.Add(seconds);
}

void EvalService::Finish(const JobPtr& job, const eval::EvalResult* result, const std::string& internal_error) {
  json doc;
  if (result) {
    doc = result->json;
  } else {
    doc = {{"kbrun_version", KBRUN_VERSION},
           {"status", "runtime_error"},
           {"compiled", false},
           {"correct", false},
           {"speedup", nullptr},
           {"error", {{"category", "internal_error"}, {"message", internal_error}}}};
  }
  bool cancelled = CancelRequested() || (doc["error"].is_object() && doc["error"].value("category", "") == "cancelled");
  std::string status = doc.value("status", "runtime_error");
  if (!cancelled) {
    try {
      WriteFileAtomic(job->dir / "result.json", doc.dump(2) + "\n");
    } catch (const std::exception& e) {
      fmt::print(stderr, "kbrun serve: {}: could not write result.json: {}\n", job->id, e.what());
      cancelled = true;  // not done: the next start evaluates it again
    }
  }
  double now = NowUnix();
  {
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
    if (!cancelled) {
      job->state = "done";
      ++finished_by_status_[status];
    }
  }
  if (o_.log) {
    if (cancelled) {
      fmt::print(stderr, "kbrun serve: stopped {} (evaluated again on the next start)\n", job->id);
    } else {
      fmt::print(stderr, "kbrun serve: done {} {} in {:.1f} s (queued {:.1f} s)\n", job->id, status,
                 now - job->start_unix, job->start_unix - job->accepted_unix);
    }
  }
}

std::string EvalService::Metrics() {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  out += "# HELP kbrun_serve_queue_length Evaluations accepted and waiting for the compile pool.\n";
  out += "# TYPE kbrun_serve_queue_length gauge\n";
  out += fmt::format("kbrun_serve_queue_length {}\n", queued_);
  out += "# HELP kbrun_serve_running Evaluations compiling, waiting for a lane or on a lane.\n";
  out += "# TYPE kbrun_serve_running gauge\n";
  out += fmt::format("kbrun_serve_running {}\n", running_);
  out += "# HELP kbrun_serve_accepted_total Evaluations accepted by this process (202 answers).\n";
  out += "# TYPE kbrun_serve_accepted_total counter\n";
  out += fmt::format("kbrun_serve_accepted_total {}\n", accepted_);
  out += "# HELP kbrun_serve_evaluations_total Evaluations finished by this process, by result status.\n";
  out += "# TYPE kbrun_serve_evaluations_total counter\n";
  for (const auto& [status, n] : finished_by_status_) {
    out += fmt::format("kbrun_serve_evaluations_total{{status=\"{}\"}} {}\n", status, n);
  }
  out += "# HELP kbrun_serve_lane_busy_seconds_total Seconds each lane spent running evaluations.\n";
  out += "# TYPE kbrun_serve_lane_busy_seconds_total counter\n";
  for (size_t i = 0; i < o_.lanes.size(); ++i) {
    out += fmt::format("kbrun_serve_lane_busy_seconds_total{{lane=\"{}\",gpu=\"{}\"}} {:.3f}\n", i, o_.lanes[i],
                       lane_busy_s_[i]);
  }
  out += lane_seconds_.PrometheusText(
      "kbrun_serve_lane_seconds",
      "Seconds each evaluation held a lane (its run phase), over the evaluations this process ran on a lane.");
  // NaN (Prometheus text format) until an evaluation has held a lane.
  std::optional<double> per_hour =
      batch::EvaluationsPerGpuHour(static_cast<double>(lane_seconds_.count()), lane_seconds_.sum());
  out +=
      "# HELP kbrun_serve_evaluations_per_gpu_hour Evaluations that held a lane per lane-hour they used "
      "(3600 / the mean of kbrun_serve_lane_seconds).\n";
  out += "# TYPE kbrun_serve_evaluations_per_gpu_hour gauge\n";
  out += fmt::format("kbrun_serve_evaluations_per_gpu_hour {}\n", per_hour ? fmt::format("{:.1f}", *per_hour) : "NaN");
  return out;
}

}  // namespace kbrun::serve
