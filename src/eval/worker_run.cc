#include "eval/worker_run.h"

#include <sys/socket.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "eval/run_gate.h"
#include "eval/warm_worker.h"
#include "eval/worker_env.h"
#include "eval/worker_protocol.h"
#include "eval/worker_request.h"
#include "eval/worker_sandbox.h"
#include "util/fs.h"
#include "util/pid_namespace.h"
#include "util/text.h"

namespace kbrun::eval {

using nlohmann::json;

WorkerRun RunWorker(const std::string& phase, const EvalRequest& req, const PythonEnv& py, const std::string& device,
                    uint64_t seed, const fs::path& dir, RunGate* gate) {
  const auto started = std::chrono::steady_clock::now();
  const EvalOptions& o = req.options;
  // The worker answers with one line "result <nonce> <json>" on fd 3 and deletes the
  // request before the candidate loads, so the candidate cannot forge the answer.
  const std::string nonce = MakeNonce();
  json request = WorkerRequest(phase, o, py, device, seed, dir, nonce);
  if (gate) request["go_fifo"] = gate->path();
  WriteFileAtomic(dir / "request.json", request.dump(2));

  WorkerRun run;
  run.started_ahead = gate != nullptr;
  run.gpu_visible = phase != "compile" && device == "cuda";
  ProcessSpec spec;
  spec.argv = {py.interpreter, WorkerScriptPath(), "--request", (dir / "request.json").string()};
  spec.env = WorkerEnvironment(o, py, dir, phase != "compile" && device == "cuda");
  spec.cwd = dir.string();
  spec.timeout_s = o.compile_timeout_s;
  spec.hard_timeout_s = o.compile_timeout_s + (phase == "compile" ? 30 : o.run_timeout_s + 30);
  double run_timeout = o.run_timeout_s;
  SharedMemoryDir shm(dir);
  // The run phase's worker and checker in one PID namespace; every process left in it dies
  // when the last holder lets go: here, or RunProcess's background wait for a process that
  // ended early, so that the namespace's init reaps what the processes leave.
  std::shared_ptr<SharedPidNamespace> pid_namespace = phase == "run" ? SharedPidNamespace::Start() : nullptr;
  spec.keep_until_ended = pid_namespace;
  const std::string shared_pid_namespace = pid_namespace ? pid_namespace->path() : "";
  run.shared_pid_namespace = pid_namespace != nullptr;
  Seal(spec, o, CandidateWritablePaths(o, dir), shm.path(), shared_pid_namespace, run.gpu_visible);
  // A fork of the warm worker when one can start it, else a fresh interpreter.
  ChildStarter starter =
      o.warm_worker == "off" ? nullptr : WarmWorkerStarter(py.interpreter, dir.parent_path(), o.warm_worker == "all");
  spec.starter = starter;
  if (gate) spec.clocks_paused = [gate] { return gate->waiting(); };
  std::optional<std::chrono::steady_clock::time_point> result_at;
  spec.on_progress = [&run, run_timeout, &nonce, &result_at, gate](const std::string& line) -> std::optional<double> {
    if (ReadResultLine(line, nonce, run.result_lines, run.forged, run.result)) {
      result_at = std::chrono::steady_clock::now();
      return std::nullopt;
    }
    if (!StartsWith(line, "stage ")) return std::nullopt;
    run.last_stage = line.substr(6);
    if (gate && run.last_stage == "ready") gate->MarkReady(0);
    // Compiling is over: the run clock starts.
    if (run.last_stage == "correctness") return run_timeout;
    // The compile phase's optional construction of ModelNew (kbrun_worker.prebuild) gets its own limit.
    if (run.last_stage == "prebuild") return kPrebuildTimeoutS;
    return std::nullopt;
  };
  // The run phase holds a GPU lane: once the worker's result is in, the lane need not wait for
  // the process's end (its GPU context's teardown). The compile phase waits: its CPU seconds count.
  if (phase == "run") spec.ended_early_when = [&result_at] { return result_at.has_value(); };
  // The run phase's verdict on correctness comes from the checker, a process the candidate
  // never runs in, fed by the worker over a socket (fd 4 on both sides).
  std::thread checker_thread;
  int checker_lines = 0;
  bool checker_forged = false;
  if (phase == "run") {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      throw std::runtime_error(fmt::format("socketpair: {}", strerror(errno)));
    }
    const std::string checker_nonce = MakeNonce();
    json creq = CheckerRequest(request, o, device, seed, checker_nonce);
    if (gate) creq["go_fifo"] = gate->path();
    fs::create_directories(dir / "checker/home");
    fs::create_directories(dir / "checker/tmp");
    WriteFileAtomic(dir / "checker_request.json", creq.dump(2));
    ProcessSpec cspec;
    cspec.argv = {py.interpreter, (fs::path(WorkerScriptPath()).parent_path() / "kbrun_checker.py").string(),
                  "--request", (dir / "checker_request.json").string()};
    cspec.env = WorkerEnvironment(o, py, dir / "checker", device == "cuda");
    cspec.cwd = (dir / "checker").string();
    // It ends when the worker's side closes; with baselines to time, it goes on after the worker
    // ended, for up to --run-timeout more (from its "stage baselines").
    const bool timed_baselines = o.baselines.size() > 1;
    cspec.keep_until_ended = pid_namespace;
    cspec.hard_timeout_s = spec.hard_timeout_s + 30 + (timed_baselines ? o.run_timeout_s : 0.0);
    Seal(cspec, o, {fs::absolute(dir).string()}, shm.path(), shared_pid_namespace, device == "cuda");
    cspec.channel_fd = sv[1];
    cspec.starter = starter;
    cspec.clocks_paused = spec.clocks_paused;
    cspec.on_progress = [&run, &o, checker_nonce, &checker_lines, &checker_forged, gate](const std::string& line) {
      if (ReadResultLine(line, checker_nonce, checker_lines, checker_forged, run.checker))
        return std::optional<double>();
      if (ReadBaselineLine(line, checker_nonce, o.baselines, run.baselines)) return std::optional<double>();
      if (!StartsWith(line, "stage ")) return std::optional<double>();
      run.checker_stage = line.substr(6);
      if (gate && run.checker_stage == "ready") gate->MarkReady(1);
      // The baselines' own deadline, from the end of the worker.
      if (run.checker_stage == "baselines") return std::optional<double>(o.run_timeout_s);
      return std::optional<double>();
    };
    // With timed baselines it goes on after its result line.
    if (!timed_baselines) cspec.ended_early_when = [&run] { return run.checker.has_value(); };
    spec.channel_fd = sv[0];
    request["checker"] = true;
    WriteFileAtomic(dir / "request.json", request.dump(2));
    run.checked = true;
    checker_thread = std::thread([&run, gate, cspec = std::move(cspec)] {
      run.checker_process = RunProcess(cspec);
      if (gate) gate->MarkReady(1);  // ended, ready or not: nothing of it will start a context
    });
  }
  run.process = RunProcess(spec);
  if (gate) gate->MarkReady(0);
  if (result_at)
    run.seconds_after_result = std::chrono::duration<double>(std::chrono::steady_clock::now() - *result_at).count();
  if (checker_thread.joinable()) checker_thread.join();
  // Both answers are in: nothing of this run may go on (a process of the candidate's included).
  if (pid_namespace) pid_namespace->KillAll();
  if (checker_forged) run.checker.reset();
  if (run.forged) {
    run.result = json{{"failure",
                       {{"status", "rejected"},
                        {"category", "forged_result"},
                        {"message", fmt::format("the worker's channel carried {} result messages, not one with "
                                                "the run's nonce: the candidate wrote its own verdict",
                                                run.result_lines)}}}};
  }
  spec.keep_until_ended.reset();
  pid_namespace.reset();  // kills what is left in it, unless a background wait still holds it
  // Started ahead: the lane was held from the gate's opening (nothing ran before it).
  const auto lane_from = gate && gate->opened_at() ? *gate->opened_at() : started;
  run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - lane_from).count();
  return run;
}

}  // namespace kbrun::eval
