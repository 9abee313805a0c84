#include "batch/reflection.h"

#include <fmt/format.h>

#include "util/text.h"

namespace kbrun::batch {

using nlohmann::json;

namespace {

double Num(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : -1;
}

std::string Cap(std::string text) {
  text = KeepHeadTailLines(Trim(text), kMaxFeedbackLines);
  if (text.size() > kMaxFeedbackChars) {
    size_t half = kMaxFeedbackChars / 2;
    text = text.substr(0, half) + fmt::format("\n[... {} characters omitted ...]\n", text.size() - 2 * half) +
           text.substr(text.size() - half);
  }
  return Trim(text);
}

std::string Category(const SampleRecord& r) { return r.error_category.empty() ? "" : " (" + r.error_category + ")"; }

std::string Incorrect(const SampleRecord& r, const json& eval) {
  std::string text = "Incorrect: the output does not match the reference";
  const json corr = eval.is_object() ? eval.value("correctness", json::object()) : json::object();
  std::vector<std::string> figures;
  if (corr.contains("trials_run")) {
    figures.push_back(
        fmt::format("{} of {} correctness trials passed", corr.value("trials_passed", 0), corr.value("trials_run", 0)));
  }
  if (double d = Num(corr, "max_abs_diff"); d >= 0) figures.push_back(fmt::format("max abs diff {:.6g}", d));
  if (double d = Num(corr, "mean_abs_diff"); d >= 0) figures.push_back(fmt::format("mean abs diff {:.6g}", d));
  // The evidence rule: both errors against a float64 run of the reference, and their ratio.
  double err_new = Num(corr, "err_candidate"), err_ref = Num(corr, "err_reference");
  if (err_new >= 0 && err_ref >= 0) {
    figures.push_back(
        fmt::format("error against a float64 run of the reference {:.3g}, the fp32 reference's own error {:.3g}",
                    err_new, err_ref) +
        (err_ref > 0 ? fmt::format(" (ratio {:.3g})", err_new / err_ref) : std::string()));
  }
  if (eval.is_object() && eval.contains("tolerance")) {
    const json& tol = eval["tolerance"];
    if (tol.is_object() && tol.value("rule", "") == "evidence" && tol.value("fp64_reference", false)) {
      figures.push_back(fmt::format("allowed: {:g}x the reference's own error plus a few roundings", Num(tol, "k")));
    } else if (Num(tol, "atol") >= 0 && Num(tol, "rtol") >= 0) {
      figures.push_back(fmt::format("tolerance atol={:g} rtol={:g}", Num(tol, "atol"), Num(tol, "rtol")));
    }
  }
  if (!figures.empty()) {
    text += " (";
    for (size_t i = 0; i < figures.size(); ++i) text += (i ? "; " : "") + figures[i];
    text += ")";
  }
  text += ".";
  if (!r.error_message.empty()) text += "\n" + r.error_message;
  return text;
}

std::string TooSlow(const SampleRecord& r, const json& eval, double target) {
  std::string text = fmt::format(
      "PERFORMANCE TOO SLOW: the kernel is correct but its speedup over the PyTorch reference is {:.3f}x; "
      "the target is at least {:.2f}x.",
      r.speedup, target);
  const json timing = eval.is_object() ? eval.value("timing", json::object()) : json::object();
  double ref = Num(timing.value("reference", json::object()), "median_ms");
  double cand = Num(timing.value("candidate", json::object()), "median_ms");
  if (ref > 0 && cand > 0) {
    int trials = timing.value("candidate", json::object()).value("trials", 0);
    text += fmt::format(" Measured: reference {:.4f} ms, your kernel {:.4f} ms (median of {} runs", ref, cand, trials);
    std::string device = eval.value("device", json::object()).value("name", "");
    text += device.empty() ? ")." : fmt::format(" on {}).", device);
  }
  return text;
}

}  // namespace

std::string ProfileFeedbackFor(const SampleRecord& r) {
  const json eval = r.doc.is_object() ? r.doc.value("eval", json(nullptr)) : json(nullptr);
  if (!eval.is_object() || !eval.contains("profile") || !eval["profile"].is_object()) return "";
  const json summary = eval["profile"].value("summary", json(nullptr));
  if (!summary.is_string() || summary.get<std::string>().empty()) return "";
  return "Profile of that answer (kernel counters, one call each; use it to decide what to change):\n" +
         summary.get<std::string>();
}

std::string FeedbackFor(const SampleRecord& r, double target_speedup) {
  const json eval = r.doc.is_object() ? r.doc.value("eval", json(nullptr)) : json(nullptr);
  std::string kind = FailureKindFor(r.status, r.success);
  std::string text;
  if (kind == kKindTooSlow) {
    text = TooSlow(r, eval, target_speedup);
  } else if (kind == kKindIncorrect) {
    text = Incorrect(r, eval);
  } else if (kind == kKindCompile) {
    text = "Compile error" + Category(r) + ":\n" + r.error_message;
  } else if (kind == kKindTimeout) {
    text = "Timeout" + Category(r) + ": " + r.error_message;
  } else if (kind == kKindNoCode) {
    text = "No usable code: the previous response had no Python code block defining class ModelNew" +
           (r.error_message.empty() ? std::string(".") : " (" + r.error_message + ").") +
           " Answer with one complete Python code block that defines ModelNew.";
  } else if (kind == kKindLlmError) {
    text = "The LLM call failed: " + r.error_message;
  } else if (kind == kKindInternal) {
    text = "kbrun could not evaluate the previous answer (its own error, not the code's): " + r.error_message;
  } else if (kind == kKindRejected) {
    text = "Rejected" + Category(r) + ": " + r.error_message;
  } else if (!kind.empty()) {
    text = "Runtime error" + Category(r) + ":\n" + r.error_message;
  }
  return Cap(text);
}

}  // namespace kbrun::batch
