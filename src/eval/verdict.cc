#include "eval/verdict.h"

#include <fmt/format.h>

#include "eval/worker_sandbox.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::eval {

using nlohmann::json;

EvalResult Fail(Status status, const std::string& category, const std::string& message) {
  EvalResult r;
  r.status = status;
  r.error_category = category;
  r.error_message = message;
  return r;
}

// A worker that died or was killed: classify from how it ended.
EvalResult FromDeadWorker(const WorkerRun& run, const EvalOptions& o) {
  const ProcessResult& p = run.process;
  std::string tail = KeepHeadTailLines(p.output, 60);
  if (p.cancelled) return Fail(Status::kRuntimeError, "cancelled", "interrupted by the user");
  if (p.timed_out) {
    bool compiling = run.last_stage.empty() || run.last_stage == "compile";
    double limit = compiling ? o.compile_timeout_s : o.run_timeout_s;
    return Fail(Status::kTimeout, compiling ? "compile_timeout" : "run_timeout",
                fmt::format("killed after {:.0f} s in stage '{}' (limit {:.0f} s)\n{}", p.wall_s,
                            run.last_stage.empty() ? "start" : run.last_stage, limit, KeepHeadTailLines(p.output, 20)));
  }
  if (p.spawn_failed) return Fail(Status::kRuntimeError, "worker_failed", "cannot start the worker: " + tail);
  if (p.out_of_memory) {
    return Fail(Status::kRuntimeError, "out_of_memory",
                fmt::format("killed at the memory limit of {} (--memory-limit) in stage '{}'\n{}",
                            FormatBytes(MemoryLimit(o)), run.last_stage.empty() ? "start" : run.last_stage, tail));
  }
  if (p.term_signal) {
    return Fail(Status::kRuntimeError, "crash",
                fmt::format("worker killed by {} in stage '{}'\n{}", SignalName(p.term_signal),
                            run.last_stage.empty() ? "start" : run.last_stage, tail));
  }
  if (p.exit_status_lost) {
    return Fail(Status::kRuntimeError, "worker_failed",
                fmt::format("worker ended without a result in stage '{}'; its exit status is unknown (the warm "
                            "worker that forked it died)\n{}",
                            run.last_stage.empty() ? "start" : run.last_stage, tail));
  }
  return Fail(Status::kRuntimeError, "worker_failed",
              fmt::format("worker exited with code {} without a result in stage '{}'\n{}", p.exit_code,
                          run.last_stage.empty() ? "start" : run.last_stage, tail));
}

EvalResult FromWorkerFailure(const json& failure, const std::string& output) {
  auto status = ParseStatus(failure.value("status", ""));
  // The worker may only report failures; a "correct" here would be a forged verdict.
  if (!status || *status == Status::kCorrect) status = Status::kRejected;
  std::string category = failure.value("category", "unknown");
  std::string message = failure.value("message", "");
  if (category == "build_failed") {
    message = "build failed:\n" + ExtractCompilerErrors(message, 40);
  } else if (*status == Status::kRuntimeError) {
    std::string detail = failure.value("detail", "");
    if (!detail.empty()) message += "\n" + KeepHeadTailLines(detail, 30);
    if (category == "cuda_error" && !output.empty()) message += "\n" + KeepHeadTailLines(output, 10);
  }
  return Fail(*status, category, message);
}

// What happened to the candidate's own kernels when none of them ran ("fallback_reason",
// kbrun_eval/library_share.py), as a clause for the verdict's message and the reflection prompt.
std::string FallbackExplanation(const json& fallback) {
  const std::string reason = fallback.is_object() && fallback["fallback_reason"].is_string()
                                 ? fallback["fallback_reason"].get<std::string>()
                                 : "";
  auto names = [&](bool ok) {
    std::string out;
    for (const auto& b : fallback.value("builds", json::array())) {
      if (b.is_object() && b.value("ok", false) == ok) out += (out.empty() ? "" : ", ") + b.value("name", "?");
    }
    return out;
  };
  if (reason == "build_failed") {
    std::string error;
    for (const auto& b : fallback.value("builds", json::array())) {
      if (b.is_object() && !b.value("ok", true)) {
        error = b.value("error", "");
        break;
      }
    }
    return fmt::format("; its own extension {} failed to build and the forward ran only torch code:\n{}", names(false),
                       KeepHeadTailLines(error, 12));
  }
  if (reason == "never_launched") {
    std::string built = names(true);
    return fmt::format("; its own extension{} built, but the forward never called into it",
                       built.empty() ? "" : " " + built);
  }
  if (reason == "library_only") return "; it builds no kernel of its own";
  return "";
}

// The checker's counts must show every check the worker claims to have passed; anything
// less (no result, a failure, fewer checks) and the run is not correct.
std::optional<EvalResult> CheckerDisagrees(const WorkerRun& run, const EvalOptions& o, const json& worker) {
  if (!run.checked) return std::nullopt;
  if (!run.checker) {
    return Fail(Status::kRuntimeError, "checker_failed",
                "the checker gave no result\n" + KeepHeadTailLines(run.checker_process.output, 30));
  }
  const json& c = *run.checker;
  if (c.contains("failure") && c["failure"].is_object()) return FromWorkerFailure(c["failure"], "");
  auto passed = [&](const char* kind) { return c["checks"][kind].value("passed", -1); };
  // Extra draws whose reference is not finite left the problem's domain: skipped, not failed.
  int extra_judged = passed("extra") + c["checks"]["extra"].value("skipped", 0);
  const json timing = worker.value("timing", json::object());
  int timed = timing.value("checked_timed_calls", -2);
  // Every timed call, of either method, was checked, and the checker timed the reference as
  // often as the worker timed the candidate.
  int reference_trials = timing.value("reference_trials_all_methods", -3);
  int candidate_trials =
      timing.contains("candidate") && timing["candidate"].is_object() ? timing["candidate"].value("trials", -4) : -4;
  int reference_primary =
      timing.contains("reference") && timing["reference"].is_object() ? timing["reference"].value("trials", -5) : -5;
  const json corr = worker.value("correctness", json::object());
  if (passed("trial") != o.correctness_trials || extra_judged != corr.value("extra_trials_run", -1) ||
      extra_judged < 2 || passed("timed") != timed || timed != reference_trials ||
      candidate_trials != o.timing_trials || reference_primary != o.timing_trials) {
    return Fail(Status::kIncorrect, "incomplete_checks",
                fmt::format("the checker saw {} of {} trials, {} extra and {} of {} timed checks pass, and timed the "
                            "reference {} times for {} timed candidate calls",
                            passed("trial"), o.correctness_trials, passed("extra"), passed("timed"), timed,
                            reference_trials, candidate_trials));
  }
  // --shapes varied: both other batch sizes checked, or skipped by the checker with its reason.
  if (o.shapes == "varied") {
    const json shape = c["checks"].value("shape", json::object());
    int shape_judged = shape.value("passed", -1) + shape.value("skipped", 0);
    if (shape_judged != 2 || corr.value("shape_trials_run", -1) != 2) {
      return Fail(Status::kIncorrect, "incomplete_checks",
                  fmt::format("the checker saw {} of 2 varied-shape checks pass or skip", shape_judged));
    }
  }
  return std::nullopt;
}

}  // namespace kbrun::eval
