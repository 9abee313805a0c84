// `kbrun report`: the figures of a batch, computed from its results tree alone
// (summary.json and the per-problem result files), written as
// detailed_report.txt (aligned tables) and detailed_report.json (docs/RESULTS.md).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "batch/lane_cost.h"

namespace kbrun::report {

namespace fs = std::filesystem;

struct ProblemReport {
  std::string name;
  int number = 0;
  // solved: best sample correct and >= target; slow: correct but below it;
  // failed: no correct sample; running / not_started: the batch has not finished it.
  std::string status;
  bool correct = false;
  double best_speedup = 0;        // 0 when no correct sample
  std::optional<int> best_index;  // N of the best sample
  std::string best_status;
  int attempts_used = 0, samples_used = 0;
  std::map<std::string, int> failure_kinds;
  long long prompt_tokens = 0, completion_tokens = 0;
  // Budget figures (docs/RESULTS.md "Budget metrics"): the one-shot sample (attempt 1,
  // sample 1) and the samples of attempt 1, the independent answers to the same prompt.
  std::string one_shot_status;    // empty when that sample has no result
  double one_shot_speedup = 0;    // 0 unless the one-shot sample is correct
  int first_attempt_samples = 0;  // n of pass@k
  int first_attempt_correct = 0;  // c of pass@k
  int first_attempt_faster = 0;   // c of fast_1@k: correct and speedup > 1
  // The best sample's eval.baselines (docs/RESULTS.md "Baselines"): name -> its entry
  // (status, speedup, median_ms, speedup_over_eager, reason), as result.json has it.
  std::map<std::string, nlohmann::json> baselines;
  // The best sample's eval.timing as result.json has it (null when none): kbrun compare's interval.
  nlohmann::json best_timing;
  // The best kernel's speedup over a baseline, when it is correct and that baseline was measured.
  std::optional<double> BaselineSpeedup(const std::string& baseline) const;
};

// fast_p and geomean of the problems' best kernels against one baseline (eager: the reference as
// written, the figures of Report::fast_p; compile, cudagraph: docs/EVALUATION.md "Baselines").
struct BaselineFigures {
  std::string name;
  int problems = 0;  // the denominator: every problem of the batch
  int measured = 0;  // problems whose best kernel is correct and has this baseline measured
  std::vector<std::pair<double, double>> fast_p;      // (p, fraction of problems: correct, speedup over it > p)
  std::optional<double> geomean_speedup;              // the best kernels' speedups over it, over `measured`
  std::optional<double> geomean_baseline_over_eager;  // the baseline's own speedup over eager, same problems
  int samples_measured = 0;                           // samples with it measured
  std::map<std::string, int> unavailable;             // samples where it could not run, by reason
};

// fast_p and geomean over the problems of the batch for one way of picking a problem's
// kernel (the one-shot sample, or the best of all samples and attempts).
struct SpeedupFigures {
  int problems = 0;                               // the denominator: every problem of the batch
  int correct = 0;                                // problems whose picked kernel is correct
  std::vector<std::pair<double, double>> fast_p;  // (p, fraction correct with speedup > p)
  std::optional<double> geomean_speedup;          // over the correct picked kernels
};

// pass@k and fast_1@k with the unbiased estimator, averaged over the problems that have at
// least k samples in attempt 1.
struct PassAtKRow {
  int k = 0;
  int problems = 0;  // problems averaged over (n >= k)
  double pass_at_k = 0, fast_1_at_k = 0;
};

struct StageSums {
  double llm_s = 0, compile_s = 0, gpu_s = 0;
  int llm_n = 0, compile_n = 0, gpu_n = 0;
  double remote_s = 0;  // batch --evaluator: submit to done at the service (instead of compile + gpu)
  int remote_n = 0;
  double total() const { return llm_s + compile_s + gpu_s + remote_s; }
};

struct Report {
  std::string results_dir;
  std::string batch_state;  // from summary.json; empty without one
  double target_speedup = 1.0;
  std::vector<ProblemReport> problems;

  int correct = 0, solved = 0;
  double correctness_rate = 0;                    // problems with a correct kernel / problems
  std::vector<std::pair<double, double>> fast_p;  // (p, fraction of problems correct with speedup > p)
  std::optional<double> geomean_speedup;          // over problems' best correct kernels
  int samples = 0, samples_correct = 0;
  std::map<std::string, int> samples_by_status;
  std::map<std::string, int> failure_kinds;  // over all samples
  long long prompt_tokens = 0, completion_tokens = 0;
  double wall_s = 0;  // summed over the batch's sessions (resumes)
  // False when the wall time cannot be known: a session's times were lost (summary.json was
  // damaged and rebuilt), or none is recorded for stages that ran. Figures over the wall time
  // are then unknown too ("unknown" in the text, null in the JSON).
  bool wall_known = true;
  int sessions = 0;
  // Shards of a Slurm run merged into this tree (kbrun merge; its sessions are then the spans
  // when at least one shard ran); 0 for a single-host run.
  int slurm_shards = 0;
  int gpu_lanes = 1;
  std::string evaluator;  // batch --evaluator: the service's URL (no credentials); empty: evaluated here
  std::map<std::string, int> tolerance_rules;   // samples by the --tolerance rule that judged them
  std::map<std::string, int> fallback_reasons;  // samples whose own code never ran, by why (fallback_reason)
  std::map<std::string, int> timing_methods;    // timed samples by how they were timed (timing.method)
  std::map<std::string, int> devices;           // evaluated samples by eval.device.name
  std::map<std::string, int> torch_versions;    // evaluated samples by eval.env.torch_version
  // summary.json's config: what was asked for (empty without a summary or the field).
  std::string model, backend, precision, kbrun_version;
  StageSums stages;
  // GPU-lane time per evaluation (docs/SCALING.md "GPU-lane time per evaluation"): over the
  // samples that held a GPU lane, each with the seconds of its kept run plus those of its runs
  // discarded after a lane failure (rerun_after_lane_failure[].gpu_stage; a kbrun that did not
  // record them: the kept run only). batch --evaluator: none here (the service's /metrics).
  batch::LaneCost lane_cost;
  // Budget metrics: the best of all samples and attempts (the figures above, fast_p and
  // geomean), the one-shot sample alone, and pass@k for k = 1..samples_per_attempt.
  SpeedupFigures best_of_all, one_shot;
  int samples_per_attempt = 0;  // summary.json's config.samples; else the most attempt-1 samples seen
  std::vector<PassAtKRow> pass_at_k;
  // eager, then every other baseline a sample recorded (eval.baselines), in --baseline's order.
  std::vector<BaselineFigures> baselines;
  // True when some sample recorded a baseline besides eager (the text and HTML then show them).
  bool HasOtherBaselines() const { return baselines.size() > 1; }
};

// A results folder that cannot be read: kMissing (no such folder, no summary.json where
// one is needed) or kDamaged (summary.json is there but unreadable or not kbrun's).
class FolderError : public std::runtime_error {
 public:
  enum class Kind { kMissing, kDamaged };
  FolderError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// The p values of fast_p (KernelBench's definition: correct and speedup > p; its analysis
// script's p values).
inline const std::vector<double> kFastPThresholds = {0.0, 0.5, 0.8, 1.0, 1.5, 2.0};

// fast_p at any p: the fraction of `picked` (one entry per problem of the batch, nullopt for a
// problem with no correct kernel picked) that is correct with speedup > p; 0 when empty.
double FractionFaster(const std::vector<std::optional<double>>& picked, double p);
// The problems' picked kernels for the best-of-all figures: each problem's best speedup
// when it has a correct kernel, else nullopt.
std::vector<std::optional<double>> BestPicked(const Report& report);

// Writes detailed_report.{txt,json} (and the HTML page where `html_path` is given).
struct WriteOptions {
  std::optional<fs::path> html_path;  // detailed_report.html (html_report.h)
};

// KernelBench's (Codex's) unbiased pass@k estimator for one problem: n samples, c of them
// passing: 1 - C(n-c, k) / C(n, k); 1 when n - c < k. Requires 0 <= c <= n and 1 <= k <= n.
double PassAtK(int n, int c, int k);

// Throws FolderError when `results_dir` is missing, holds neither summary.json nor result
// files, or its summary.json is damaged.
Report BuildReport(const fs::path& results_dir);
nlohmann::json ReportJson(const Report& report);
std::string ReportText(const Report& report);
// Builds the report and writes detailed_report.{txt,json} into the results folder;
// `json_out`, when given, receives the JSON document exactly as written.
Report WriteReport(const fs::path& results_dir, nlohmann::json* json_out = nullptr, const WriteOptions& options = {});

// GPU stage time / (wall x lanes); nullopt when the wall time is unknown or the figure would
// exceed 100% (times that do not belong together).
std::optional<double> GpuBusyFraction(const Report& report);

// "1.0" -> key used in the JSON's fast_p object: "fast_1.0".
std::string FastPKey(double p);

}  // namespace kbrun::report
