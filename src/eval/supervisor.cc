// The supervisor: runs the Python worker for one candidate in a controlled child
// process and turns what it measured (or how it died) into a verdict: Compile, Run and
// Evaluate of eval/evaluation.h. Its parts: worker_env (the environment), worker_sandbox (the
// seal), worker_request (the request files), worker_run (the processes), worker_protocol (what
// they may say on fd 3), verdict (how a failed run is classified), result_document (result.json).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "eval/backend.h"
#include "eval/evaluation.h"
#include "eval/profile.h"
#include "eval/python_env.h"
#include "eval/result_document.h"
#include "eval/run_gate.h"
#include "eval/verdict.h"
#include "eval/worker_env.h"
#include "eval/worker_request.h"
#include "eval/worker_run.h"
#include "eval/worker_sandbox.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::eval {
namespace {

using nlohmann::json;

fs::path DefaultWorkRoot() {
  if (auto w = GetEnvOption("KBRUN_WORK_DIR")) return *w;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "kbrun/work";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache/kbrun/work";
  return fs::temp_directory_path() / fmt::format("kbrun-{}", getuid());
}

std::string ResolveDevice(const EvalOptions& o, const PythonEnv& py) {
  if (o.device == "auto") return py.gpu_available ? "cuda" : "cpu";
  return o.device;
}

// The library-share check's answer (result "fallback", library_share.py): nullopt where it could
// not measure (its "error"; null in the document).
std::optional<bool> UsesLibraryOnly(const json& fallback) {
  if (!fallback.is_object() || !fallback.contains("uses_library_only") || !fallback["uses_library_only"].is_boolean())
    return std::nullopt;
  return fallback["uses_library_only"].get<bool>();
}

uint64_t ChooseSeed(const EvalOptions& o) {
  if (o.seed) return *o.seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 16 ^ rd()) % 1000000007ULL;
}

}  // namespace

CompiledCandidate Compile(const EvalRequest& req) {
  CompiledCandidate c;
  const EvalOptions& o = req.options;
  const PythonEnv& py = DiscoverPython(o.python);
  std::string device = ResolveDevice(o, py);
  fs::path root = o.work_root.empty() ? DefaultWorkRoot() : o.work_root;
  c.work_dir = MakeUniqueDir(root, "eval-");
  for (const char* sub : {"home", "tmp", "build"}) fs::create_directories(c.work_dir / sub);
  fs::copy_file(req.problem, c.work_dir / "problem.py");
  fs::copy_file(req.code, c.work_dir / "candidate.py");

  // A backend whose library is not configured fails here, before a compiler starts.
  BackendFacts facts = DiscoverBackendFacts(o, py, CurrentEnvironment());
  if (auto why = NotConfiguredError(MakeBackendFlags(facts), facts, ReadFile(req.code).value_or(""))) {
    c.failure = Fail(Status::kCompileError, "backend_not_configured", *why);
    FillDocument(c.failure, req, py, device, 0, json::object(), c, nullptr);
    if (!o.keep_work_dir) fs::remove_all(c.work_dir);
    return c;
  }
  WorkerRun run = RunWorker("compile", req, py, device, 0, c.work_dir);
  if (!run.result && run.last_stage == "prebuild" && !run.process.cancelled) {
    // The import and its builds are done; only the optional construction died or hung: the
    // run phase, where the GPU is visible, judges the candidate.
    c.ok = true;
    std::string how = run.process.timed_out     ? fmt::format("stopped after {:.0f} s", kPrebuildTimeoutS)
                      : run.process.term_signal ? "killed by " + SignalName(run.process.term_signal)
                                                : fmt::format("exit code {}", run.process.exit_code);
    c.prebuild = {
        {"constructed", false},
        {"note", "the compile worker ended while constructing ModelNew (" + how + "); judged in the run phase"}};
  } else if (!run.result) {
    c.failure = FromDeadWorker(run, o);
  } else if (run.result->contains("failure")) {
    c.failure = FromWorkerFailure((*run.result)["failure"], run.process.output);
  } else {
    c.ok = true;
  }
  json stages = run.result ? run.result->value("stage_times", json::object()) : json::object();
  c.compile_s = stages.value("compile_s", run.process.wall_s);
  c.worker_start_s = stages.value("import_torch_s", 0.0);
  c.compile_cpu_s = run.process.cpu_s;
  c.compile_worker_s = run.process.wall_s;
  c.warm_start = run.process.started_by_starter;
  c.warm_worker_setup_s = run.process.starter_setup_s;
  if (run.result && run.result->contains("builds")) c.builds = (*run.result)["builds"];
  if (run.result && run.result->contains("prebuild")) c.prebuild = (*run.result)["prebuild"];
  if (!c.ok) {
    c.failure.compiled = false;
    FillDocument(c.failure, req, py, device, 0, run.result.value_or(json::object()), c, &run);
    if (!o.keep_work_dir) fs::remove_all(c.work_dir);
  }
  return c;
}

class RunAhead {
 public:
  RunAhead(const EvalRequest& req, const fs::path& dir)
      : req_(req),
        py_(DiscoverPython(req.options.python)),
        device_(ResolveDevice(req.options, py_)),
        seed_(ChooseSeed(req.options)),
        dir_(dir),
        gate_(dir) {
    thread_ = std::thread([this] {
      try {
        run_ = RunWorker("run", req_, py_, device_, seed_, dir_, &gate_);
      } catch (const std::exception& e) {
        error_ = e.what();
      }
      gate_.MarkEnded();
    });
  }
  // Unused: the processes read EOF on the gate and end.
  ~RunAhead() {
    gate_.Abandon();
    if (thread_.joinable()) thread_.join();
  }
  // Lets the processes go; their timing stage waits until `next` (the lane's next sample, started
  // ahead now) is ready or has ended, at most kQuietWaitS. Returns their run.
  WorkerRun Go(const std::shared_ptr<const RunAhead>& next) {
    gate_.Open();
    std::atomic<bool> done{false};
    std::thread quiet([this, &next, &done] {
      const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(kQuietWaitS);
      while (next && !next->Ready() && !done && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      gate_.LetTimingStart();
    });
    thread_.join();
    done = true;
    quiet.join();
    if (!error_.empty()) throw std::runtime_error(error_);
    return std::move(run_);
  }
  bool Ready() const { return gate_.Ready(); }
  const fs::path& dir() const { return dir_; }
  uint64_t seed() const { return seed_; }

 private:
  EvalRequest req_;
  const PythonEnv& py_;
  std::string device_;
  uint64_t seed_;
  fs::path dir_;
  RunGate gate_;
  std::thread thread_;
  WorkerRun run_;
  std::string error_;  // RunWorker's exception, thrown again by Go()
  // A next sample whose CUDA start takes longer than this (a broken device) does not hold up the timing.
  static constexpr double kQuietWaitS = 20;
};

std::shared_ptr<RunAhead> StartRunAhead(const EvalRequest& req, const CompiledCandidate& compiled) {
  if (!compiled.ok) return nullptr;
  return std::make_shared<RunAhead>(req, compiled.work_dir);
}

EvalResult Run(const EvalRequest& req, CompiledCandidate& compiled, std::shared_ptr<RunAhead> ahead,
               const std::shared_ptr<const RunAhead>& next) {
  if (!compiled.ok) return compiled.failure;
  const EvalOptions& o = req.options;
  const PythonEnv& py = DiscoverPython(o.python);
  std::string device = ResolveDevice(o, py);
  if (ahead && ahead->dir() != compiled.work_dir) ahead.reset();  // another candidate's: let it end
  uint64_t seed = ahead ? ahead->seed() : ChooseSeed(o);
  WorkerRun run = ahead ? ahead->Go(next) : RunWorker("run", req, py, device, seed, compiled.work_dir);
  ahead.reset();
  EvalResult r;
  json worker = run.result.value_or(json::object());
  if (worker.contains("timing")) worker["timing"] = MergedTiming(worker["timing"], run.checker);
  if (!run.result) {
    r = FromDeadWorker(run, o);
    r.compiled = true;
  } else if (worker.contains("failure")) {
    r = FromWorkerFailure(worker["failure"], run.process.output);
    r.compiled = worker.value("compiled", false);
  } else {
    // The verdict is ours: every requested trial ran and passed, and both were timed.
    const json corr = worker.value("correctness", json::object());
    const json timing = worker.value("timing", json::object());
    int run_n = corr.value("trials_run", 0), passed = corr.value("trials_passed", 0);
    double ref_ms = timing.contains("reference") ? timing["reference"].value("median_ms", 0.0) : 0.0;
    double new_ms = timing.contains("candidate") ? timing["candidate"].value("median_ms", 0.0) : 0.0;
    r.compiled = true;
    if (run_n != o.correctness_trials || passed != run_n) {
      r = Fail(Status::kIncorrect, "incomplete_checks",
               fmt::format("{} of {} correctness trials passed", passed, o.correctness_trials));
      r.compiled = true;
    } else if (!(ref_ms > 0) || !(new_ms > 0) || !std::isfinite(ref_ms) || !std::isfinite(new_ms)) {
      r = Fail(Status::kRuntimeError, "timing_failed", "no valid timing measurements");
      r.compiled = true;
    } else if (auto disagreement = CheckerDisagrees(run, o, worker)) {
      r = *disagreement;
      r.compiled = true;
    } else if (!o.allow_library_kernels && worker.contains("fallback") &&
               UsesLibraryOnly(worker["fallback"]) == std::nullopt) {
      // The check could not measure (the profiler failed): a candidate that breaks it must not pass.
      r = Fail(Status::kRejected, "library_share_unmeasured",
               fmt::format("kbrun could not measure whose kernels did the forward's work ({}); without "
                           "--allow-library-kernels an unmeasured share is not accepted",
                           worker["fallback"].value("error", std::string("no figure"))));
      r.compiled = true;
    } else if (!o.allow_library_kernels && worker.contains("fallback") && UsesLibraryOnly(worker["fallback"]) == true) {
      r = Fail(Status::kRejected, "uses_library_only",
               fmt::format("{:.0f}% of the forward's time is in torch/library kernels, not the candidate's own "
                           "(allowed only with --allow-library-kernels, e.g. for cuBLAS prompts){}",
                           100 * worker["fallback"].value("library_time_fraction", 1.0),
                           FallbackExplanation(worker["fallback"])));
      r.compiled = true;
    } else {
      r.status = Status::kCorrect;
      r.correct = true;
      r.speedup = ref_ms / new_ms;
    }
  }
  FillDocument(r, req, py, device, seed, worker, compiled, &run);
  // The checker's figures are the authoritative ones (the worker's may be missing: it
  // stops at the checker's first failing verdict).
  if (run.checker) AddCheckerFigures(r, *run.checker, o);
  // After the verdict, in the same private dir and build: never changes status, timing or exit code.
  if (o.profile && !run.process.cancelled) {
    // The profiled run executes the candidate: sealed as the run worker is.
    SharedMemoryDir shm(compiled.work_dir / "profile");
    std::vector<std::string> writable = CandidateWritablePaths(o, compiled.work_dir);
    auto seal = [&](ProcessSpec& spec) { Seal(spec, o, writable, shm.path(), "", false); };
    AddProfile(r, {&req, &py, device, seed, compiled.work_dir,
                   WorkerEnvironment(o, py, compiled.work_dir, device == "cuda"), BuildRequest(o, py), seal});
  }
  if (!o.keep_work_dir) fs::remove_all(compiled.work_dir);
  return r;
}

EvalResult Evaluate(const EvalRequest& req) {
  CompiledCandidate compiled = Compile(req);
  return Run(req, compiled);
}

}  // namespace kbrun::eval
