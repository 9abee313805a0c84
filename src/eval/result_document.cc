#include "eval/result_document.h"

#include <fmt/format.h>

#include "eval/backend.h"
#include "eval/worker_request.h"
#include "eval/worker_sandbox.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::eval {

using nlohmann::json;

namespace {

// What sealed the worker and checker (util/subprocess.h ProbeSandbox, docs/EVALUATION.md).
json SandboxDoc(const EvalOptions& o, const json& env, const WorkerRun* run) {
  const SandboxReport sandbox = ProbeSandbox();
  const unsigned long long limit = MemoryLimit(o);
  json doc = {
      {"network_interfaces", env.value("network_interfaces", json(nullptr))},
      {"network_isolated", env.contains("network_interfaces") && env["network_interfaces"] == json::array({"lo"})},
      {"secrets_removed", true},
      {"private_dir", true},
      // A run phase shares one with its checker; where none could be made, a GPU run has none
      // (Seal) and leftovers die by its init's hand instead.
      {"pid_namespace", run && run->shared_pid_namespace ? sandbox.shared_pid_namespace
                                                         : sandbox.pid_namespace && !(run && run->gpu_visible)},
      {"pid_namespace_shared_with_checker", run && run->shared_pid_namespace && sandbox.shared_pid_namespace},
      {"filesystem_read_only", sandbox.read_only_root},
      {"minimal_dev", sandbox.minimal_dev},
      {"private_shm", sandbox.private_shm},
      {"memory_limit_bytes", limit ? json(limit) : json(nullptr)},
      {"memory_limit_method", limit ? json(MemoryCapMethod()) : json("none")},
      {"memory_peak_bytes",
       run && run->process.memory_peak_bytes ? json(run->process.memory_peak_bytes) : json(nullptr)},
  };
  if (!sandbox.note.empty()) doc["note"] = sandbox.note;
  return doc;
}

json StatsOrNull(const json& timing, const char* key) {
  return timing.is_object() && timing.contains(key) ? timing[key] : json(nullptr);
}

}  // namespace

// The tolerance block of result.json: the rule asked for and, where the checker judged the
// run, its own account of the rule (k, floor, whether the float64 reference ran and why not).
// atol/rtol as the checker applied them (kbrun_eval/judge.py owns the defaults); before a run
// phase, only what the options say.
json ToleranceDoc(const EvalOptions& o, const WorkerRun* run) {
  auto given = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  json t = {{"rule", o.tolerance}, {"atol", given(o.atol)}, {"rtol", given(o.rtol)}};
  const json judge = run && run->checker ? run->checker->value("judge", json::object()) : json::object();
  for (const char* k : {"atol", "rtol", "k", "floor_ulps", "unit_roundoff", "fp64_reference", "fp64_note",
                        "worst_relative_reference_error", "worst_absolute_reference_error", "skipped_extra_draws"}) {
    if (judge.is_object() && judge.contains(k)) t[k] = judge[k];
  }
  return t;
}

// The baselines block of result.json (docs/RESULT_SCHEMA.md): for each --baseline, its figures
// and the candidate's speedup over it (baseline median / candidate median, when correct), or
// why it was not measured. eager comes from the main timing (timing.reference), the others
// from the checker's baseline lines.
json BaselinesDoc(const EvalOptions& o, const EvalResult& r, const json& timing, const WorkerRun* run) {
  auto median = [&](const char* who) {
    return timing.is_object() && timing.contains(who) && timing[who].is_object() ? timing[who].value("median_ms", 0.0)
                                                                                 : 0.0;
  };
  const double eager = median("reference"), candidate = median("candidate");
  const bool timed = eager > 0 && candidate > 0;
  const std::string verdict = StatusName(r.status) + (r.error_category.empty() ? "" : "/" + r.error_category);
  // Why a baseline has no line from the checker.
  auto missing = [&]() -> json {
    if (!run) return {{"status", "skipped"}, {"reason", "no run phase (" + verdict + ")"}};
    if (run->checker_stage.empty() && !timed) {
      return {{"status", "skipped"}, {"reason", "the candidate's timing did not complete (" + verdict + ")"}};
    }
    const ProcessResult& p = run->checker_process;
    std::string how =
        p.timed_out && StartsWith(run->checker_stage, "baseline")
            ? fmt::format("it was stopped at the baselines' deadline (--run-timeout, {:.0f} s)", o.run_timeout_s)
        : p.timed_out     ? fmt::format("it was stopped at its deadline after {:.0f} s", p.wall_s)
        : p.out_of_memory ? std::string("it was killed at the memory limit")
        : p.term_signal   ? "it was killed by " + SignalName(p.term_signal)
        : p.cancelled     ? std::string("it was interrupted")
                          : fmt::format("it exited with code {}", p.exit_code);
    std::string where = run->checker_stage.empty() ? "before the baselines" : "in stage '" + run->checker_stage + "'";
    return {{"status", "unavailable"}, {"reason", fmt::format("the checker ended {}: {}", where, how)}};
  };
  json doc = json::object();
  for (const auto& name : o.baselines) {
    json b;
    if (name == "eager") {
      b = timed ? json{{"status", "measured"},
                       {"how", "the reference as written (timing.reference)"},
                       {"median_ms", eager}}
                : json{{"status", "skipped"}, {"reason", "the reference was not timed (" + verdict + ")"}};
      if (timed) b["speedup"] = r.correct && r.speedup > 0 ? json(r.speedup) : json(nullptr);
    } else if (run && run->baselines.contains(name)) {
      b = run->baselines[name];
      double ms = b.value("median_ms", 0.0);
      if (b.value("status", "") == "measured" && ms > 0) {
        b["speedup"] = r.correct && candidate > 0 ? json(ms / candidate) : json(nullptr);
        b["speedup_over_eager"] = eager > 0 ? json(eager / ms) : json(nullptr);
      }
    } else {
      b = missing();
    }
    doc[name] = std::move(b);
  }
  return doc;
}

// Assembles the result document (docs/RESULT_SCHEMA.md).
void FillDocument(EvalResult& r, const EvalRequest& req, const PythonEnv& py, const std::string& device, uint64_t seed,
                  const json& worker, const CompiledCandidate& compiled, const WorkerRun* run) {
  const EvalOptions& o = req.options;
  json env = worker.value("env", json::object());
  json stages = worker.value("stage_times", json::object());
  json timing = worker.value("timing", json(nullptr));
  // `run` is the last worker (its output goes in output_tail); after a failed compile it is
  // the compile worker, and there was no run phase.
  const WorkerRun* run_phase = compiled.ok ? run : nullptr;
  // The worker's build request (worker_request.h), as the builds ran.
  const json build = BuildRequest(o, py);
  json doc = {
      {"kbrun_version", KBRUN_VERSION},
      {"problem", req.problem.stem().string()},
      {"problem_path", fs::absolute(req.problem).string()},
      {"code_path", fs::absolute(req.code).string()},
      {"status", StatusName(r.status)},
      {"compiled", r.compiled},
      {"correct", r.correct},
      {"speedup", r.speedup > 0 ? json(r.speedup) : json(nullptr)},
      {"error",
       r.error_category.empty() ? json(nullptr) : json{{"category", r.error_category}, {"message", r.error_message}}},
      {"correctness", worker.value("correctness", json{{"trials_run", 0}, {"trials_passed", 0}})},
      {"tolerance", ToleranceDoc(o, run_phase)},
      {"timing",
       {{"method", timing.is_object() ? timing.value("method", "") : ""},
        {"warmup_runs", o.warmup_runs},
        {"reference", StatsOrNull(timing, "reference")},
        {"candidate", StatsOrNull(timing, "candidate")},
        {"checked_timed_calls", StatsOrNull(timing, "checked_timed_calls")},
        {"spin_ms",
         {{"candidate", StatsOrNull(timing, "spin_ms")}, {"reference", StatsOrNull(timing, "reference_spin_ms")}}},
        {"spin_cycles_per_ms", StatsOrNull(timing, "spin_cycles_per_ms")},
        {"sm_clock_mhz",
         {{"candidate", StatsOrNull(timing, "clock_mhz")}, {"reference", StatsOrNull(timing, "reference_clock_mhz")}}},
        {"spin", {{"candidate", StatsOrNull(timing, "spin")}, {"reference", StatsOrNull(timing, "reference_spin")}}},
        {"busy_check", StatsOrNull(timing, "busy_check")},
        {"kernelbench", StatsOrNull(timing, "kernelbench")}}},
      {"device",
       {{"kind", device},
        {"name", env.value("device_name", device == "cpu" ? "cpu" : (py.gpu_names.empty() ? "" : py.gpu_names[0]))},
        {"gpu_index", device == "cpu" ? json(nullptr) : json(o.gpu_index)}}},
      {"env",
       {{"python", py.interpreter},
        {"python_version", py.python_version},
        {"torch_version", py.torch_version},
        {"cuda_version", py.cuda_version.empty() ? json(nullptr) : json(py.cuda_version)},
        {"hip_version", py.hip_version.empty() ? json(nullptr) : json(py.hip_version)}}},
      {"precision", o.precision},
      {"backend", o.backend},
      {"seed", seed},
      {"stages",
       {{"worker_start_s", compiled.worker_start_s},
        {"compile_s", compiled.compile_s},
        {"compile_cpu_s", compiled.compile_cpu_s},
        {"correctness_s", stages.value("correctness_s", 0.0)},
        {"timing_s", stages.value("timing_s", 0.0)},
        {"compile_worker_total_s", compiled.compile_worker_s},
        {"run_worker_total_s", run_phase ? run_phase->process.wall_s : 0.0},
        // The run phase's worker, checker and sandbox from start to end: what it holds a GPU lane for.
        {"run_phase_s", run_phase ? json(run_phase->wall_s) : json(nullptr)},
        // Of the worker's time, from its result line to the end of the wait for it; the checker's whole wall.
        {"run_worker_after_result_s",
         run_phase && run_phase->seconds_after_result >= 0 ? json(run_phase->seconds_after_result) : json(nullptr)},
        {"checker_total_s", run_phase && run_phase->checked ? json(run_phase->checker_process.wall_s) : json(nullptr)},
        // Of the run worker's wall time, besides correctness and timing: setting up the GPU,
        // importing the candidate (its build comes from the compile phase), building the models.
        {"run_cuda_init_s", run_phase ? stages.value("cuda_init_s", 0.0) : 0.0},
        // Started ahead (run_gate.h): how long the worker, its CUDA set up, waited for the lane
        // (not part of run_phase_s or run_worker_total_s, nor was its CUDA start). Null: started on its turn.
        {"run_waited_for_lane_s",
         run_phase && run_phase->started_ahead ? json(run_phase->process.paused_s) : json(nullptr)},
        // ... and how long, on the lane, its timing waited for the lane's next sample's CUDA start.
        {"run_waited_for_quiet_s",
         run_phase && run_phase->started_ahead ? json(stages.value("waited_for_quiet_s", 0.0)) : json(nullptr)},
        {"run_load_candidate_s", run_phase ? stages.value("compile_s", 0.0) : 0.0},
        {"run_load_models_s", run_phase ? stages.value("load_models_s", 0.0) : 0.0},
        // Of those, the time inside the candidate's load_inline/load calls (builds on the GPU lane).
        {"run_build_s", run_phase ? stages.value("build_s", 0.0) : 0.0},
        // Of timing_s, the worker's side step by step (timer set-up, its calls, guards, waiting
        // for the checker's turns, the library share); the checker's is correctness.checker.stage_times.
        {"timing_detail", run_phase ? stages.value("timing_detail", json(nullptr)) : json(nullptr)},
        // The same for correctness_s (the checker's side: correctness.checker.stage_times).
        {"correctness_detail", run_phase ? stages.value("correctness_detail", json(nullptr)) : json(nullptr)},
        // How the workers started: "warm" (forks of the warm worker) or "cold" (fresh interpreters).
        {"compile_worker_start", compiled.warm_start ? "warm" : "cold"},
        {"run_worker_start", run_phase ? json(run_phase->process.started_by_starter ? "warm" : "cold") : json(nullptr)},
        // Of the two workers' wall times: starting the warm worker itself (once per kbrun process).
        {"warm_worker_setup_s",
         compiled.warm_worker_setup_s + (run_phase ? run_phase->process.starter_setup_s : 0.0)}}},
      {"build",
       {{"mode", build["mode"]},
        {"cache_dir", build["cache_dir"]},
        {"extensions", compiled.builds},
        {"prebuild", compiled.prebuild},
        // What kbrun added to every build for the backend (eval/backend.h), for reproducing it.
        {"backend_flags", build["backend"]}}},
      {"baselines", BaselinesDoc(o, r, timing, run_phase)},
      {"profile", nullptr},  // set by the profile step (--profile, eval/profile.h)
      {"roofline", nullptr},
      {"fallback", worker.value("fallback", json(nullptr))},
      {"sandbox", SandboxDoc(o, env, run)},
  };
  if (run && r.status != Status::kCorrect && r.status != Status::kIncorrect) {
    doc["output_tail"] = KeepHeadTailLines(run->process.output, 40);
    doc["output_bytes"] = run->process.output_total_bytes;
  }
  r.json = std::move(doc);
}

// The timing block of result.json: the candidate's figures from the worker, the reference's
// from the checker, which never loads candidate code (the worker's word on the reference
// would be the candidate's).
json MergedTiming(const json& worker_timing, const std::optional<json>& checker) {
  json t = worker_timing;
  const std::string method = t.value("method", "");
  json ref = checker && (*checker).contains("timing") ? (*checker)["timing"] : json::object();
  t["reference"] = ref.contains(method) ? ref[method] : json(nullptr);
  t["reference_spin_ms"] = ref.value("spin_ms", 0.0);
  t["reference_clock_mhz"] = ref.value("clock_mhz", json(nullptr));
  t["reference_spin"] = ref.value("spin", json(nullptr));
  int all = 0;
  for (auto& [name, stats] : ref.items()) {
    if (stats.is_object()) all += stats.value("trials", 0);
  }
  t["reference_trials_all_methods"] = all;
  // KernelBench's cuda_event method on the same run, for comparison with its published figures.
  constexpr const char* kKernelBenchMethod = "kernelbench_cuda_event_l2_flush";  // kbrun_worker.py's name
  if (t.contains("candidate_kernelbench") && ref.contains(kKernelBenchMethod)) {
    json kb = {{"method", kKernelBenchMethod},
               {"reference", ref[kKernelBenchMethod]},
               {"candidate", t["candidate_kernelbench"]}};
    double r = kb["reference"].value("median_ms", 0.0), c = kb["candidate"].value("median_ms", 0.0);
    kb["speedup"] = r > 0 && c > 0 ? json(r / c) : json(nullptr);
    t["kernelbench"] = kb;
  }
  t.erase("candidate_kernelbench");
  return t;
}

void AddCheckerFigures(EvalResult& r, const json& checker, const EvalOptions& o) {
  json& corr = r.json["correctness"];
  corr["checker"] = checker;
  for (const char* k : {"max_abs_diff", "mean_abs_diff"}) {
    if (checker.contains(k) && !checker[k].is_null()) corr[k] = checker[k];
  }
  // The evidence rule's figures (worker/kbrun_eval/judge.py): the check closest to failing.
  const json judge = checker.value("judge", json::object());
  for (const char* k : {"err_candidate", "err_reference", "error_ratio", "mean_err_candidate", "mean_err_reference",
                        "mean_error_ratio"}) {
    if (judge.is_object() && judge.contains(k)) corr[k] = judge[k];
  }
  corr["extra_trials_skipped"] =
      checker.value("checks", json::object()).value("extra", json::object()).value("skipped", 0);
  corr["shapes"] = o.shapes;
  if (checker.contains("shape_skipped")) corr["shape_skipped"] = checker["shape_skipped"];
}

}  // namespace kbrun::eval
