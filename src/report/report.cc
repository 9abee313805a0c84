// The batch's reports (report/report.h): reading a results tree and the summary, text and JSON
// built from it. Over 400 lines for a reason: the text and JSON reports are two views of one
// summary and change together (a figure added to one is added to the other).
#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <regex>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "batch/best_of.h"
#include "batch/clock.h"
#include "batch/results_store.h"
#include "batch/shards.h"
#include "eval/evaluation.h"
#include "report/html_report.h"
#include "report/text_table.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {

using nlohmann::json;

namespace {

double Seconds(const json& stages, const char* name, int* count) {
  if (!stages.is_object() || !stages.contains(name) || !stages[name].is_object()) return 0;
  const json& s = stages[name];
  double start = s.value("start", 0.0), end = s.value("end", 0.0);
  if (end <= 0) return 0;
  ++*count;
  return end - start;
}

// The GPU-lane seconds of one sample (Report::lane_cost): its kept run's plus those of its runs
// discarded after a lane failure; nullopt when it held no lane.
std::optional<double> SampleLaneSeconds(const json& doc, batch::LaneCost* totals) {
  std::optional<double> seconds;
  int kept = 0;
  double kept_s = Seconds(doc.contains("stages") ? doc["stages"] : json(nullptr), "gpu", &kept);
  if (kept > 0) seconds = std::max(0.0, kept_s);
  const json& reruns = doc.contains("rerun_after_lane_failure") ? doc["rerun_after_lane_failure"] : json(nullptr);
  for (const auto& run : reruns.is_array() ? reruns : json::array()) {
    int discarded = 0;
    double s = run.is_object() ? Seconds(run, "gpu_stage", &discarded) : 0;
    if (discarded == 0) continue;  // a kbrun that did not record the discarded run's span
    s = std::max(0.0, s);
    ++totals->discarded_runs;
    totals->discarded_s += s;
    seconds = seconds.value_or(0) + s;
  }
  return seconds;
}

// Problems of the batch: summary.json's list (it includes problems never started),
// plus any folder with results that it does not name.
std::vector<std::pair<std::string, int>> ListProblems(const fs::path& dir, const json& summary) {
  std::vector<std::pair<std::string, int>> out;
  std::set<std::string> seen;
  if (summary.is_object() && summary.contains("problems") && summary["problems"].is_array()) {
    for (const auto& p : summary["problems"]) {
      std::string name = p.value("name", "");
      if (!name.empty() && seen.insert(name).second) out.push_back({name, p.value("number", 0)});
    }
  }
  static const std::regex numbered(R"(^(\d+)_.*)");
  std::vector<std::pair<std::string, int>> extra;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_directory()) continue;
    std::string name = entry.path().filename().string();
    if (seen.count(name)) continue;
    bool has_results = false;
    for (const auto& f : fs::directory_iterator(entry.path())) {
      if (StartsWith(f.path().filename().string(), "result_")) has_results = true;
    }
    if (!has_results) continue;
    std::smatch m;
    extra.push_back({name, std::regex_match(name, m, numbered) ? std::stoi(m[1].str()) : 0});
  }
  std::sort(extra.begin(), extra.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second < b.second : a.first < b.first;
  });
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::string SummaryPhase(const json& summary, const std::string& name) {
  if (!summary.is_object() || !summary.contains("problems")) return "";
  for (const auto& p : summary["problems"]) {
    if (p.value("name", "") == name) return p.value("phase", "");
  }
  return "";
}

std::string Percent(double fraction) { return fmt::format("{:.1f}%", fraction * 100); }

std::string Thousands(long long n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string KindsText(const std::map<std::string, int>& kinds) {
  if (kinds.empty()) return "-";
  std::string out;
  for (const auto& [kind, n] : kinds) out += fmt::format("{}{} x{}", out.empty() ? "" : ", ", kind, n);
  return out;
}

// fast_p and geomean over `picked`: one (correct, speedup) per problem of the batch, or
// nullopt for a problem with no kernel picked (counted in the denominator as not correct).
SpeedupFigures Figures(const std::vector<std::optional<double>>& picked_speedups) {
  SpeedupFigures f;
  f.problems = static_cast<int>(picked_speedups.size());
  double log_sum = 0;
  int log_n = 0;
  for (const auto& s : picked_speedups) {
    if (!s) continue;
    ++f.correct;
    if (*s > 0) {
      log_sum += std::log(*s);
      ++log_n;
    }
  }
  for (double t : kFastPThresholds) f.fast_p.push_back({t, FractionFaster(picked_speedups, t)});
  if (log_n > 0) f.geomean_speedup = std::exp(log_sum / log_n);
  return f;
}

json FiguresJson(const SpeedupFigures& f, const char* picked) {
  json fast = json::object();
  for (const auto& [p, v] : f.fast_p) fast[FastPKey(p)] = v;
  return {{"picked", picked},         {"problems", f.problems},
          {"correct", f.correct},     {"correctness_rate", f.problems > 0 ? double(f.correct) / f.problems : 0.0},
          {"fast_p", fast},           {"geomean_speedup", f.geomean_speedup ? json(*f.geomean_speedup) : json(nullptr)},
          {"geomean_over", f.correct}};
}

// A reason for the report's "unavailable" counts: its first line, at most 160 characters.
std::string ShortReason(const std::string& reason) {
  std::string line = reason.substr(0, reason.find('\n'));
  return line.size() > 160 ? line.substr(0, 157) + "..." : line;
}

std::optional<double> PositiveNumber(const json& entry, const char* key) {
  if (!entry.is_object() || !entry.contains(key) || !entry[key].is_number()) return std::nullopt;
  double v = entry[key].get<double>();
  return v > 0 && std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::optional<double> Geomean(const std::vector<double>& values) {
  if (values.empty()) return std::nullopt;
  double log_sum = 0;
  for (double v : values) log_sum += std::log(v);
  return std::exp(log_sum / static_cast<double>(values.size()));
}

// The part of a baseline entry the report keeps per problem.
json BaselineEntryJson(const json& entry) {
  json out = json::object();
  for (const char* k : {"status", "speedup", "median_ms", "speedup_over_eager", "reason"}) {
    if (entry.is_object() && entry.contains(k)) out[k] = entry[k];
  }
  return out;
}

}  // namespace

std::optional<double> ProblemReport::BaselineSpeedup(const std::string& baseline) const {
  if (!correct) return std::nullopt;
  if (baseline == "eager") return best_speedup;
  auto it = baselines.find(baseline);
  if (it == baselines.end() || !it->second.is_object() || it->second.value("status", "") != "measured") {
    return std::nullopt;
  }
  return PositiveNumber(it->second, "speedup");
}

double FractionFaster(const std::vector<std::optional<double>>& picked, double p) {
  if (picked.empty()) return 0;
  int faster = 0;
  for (const auto& s : picked) {
    if (s && *s > p) ++faster;
  }
  return static_cast<double>(faster) / static_cast<double>(picked.size());
}

std::vector<std::optional<double>> BestPicked(const Report& r) {
  std::vector<std::optional<double>> out;
  for (const auto& p : r.problems) out.push_back(p.correct ? std::optional<double>(p.best_speedup) : std::nullopt);
  return out;
}

double PassAtK(int n, int c, int k) {
  if (k < 1 || n < k || c < 0 || c > n) throw std::invalid_argument("PassAtK: needs 0 <= c <= n and 1 <= k <= n");
  if (n - c < k) return 1.0;
  // 1 - C(n-c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i), without large binomials.
  double none = 1.0;
  for (int i = n - c + 1; i <= n; ++i) none *= 1.0 - static_cast<double>(k) / i;
  return 1.0 - none;
}

std::string FastPKey(double p) { return fmt::format("fast_{:.1f}", p); }

std::optional<double> GpuBusyFraction(const Report& r) {
  if (!r.wall_known || r.wall_s <= 0 || r.gpu_lanes <= 0) return std::nullopt;
  double fraction = r.stages.gpu_s / (r.wall_s * r.gpu_lanes);
  // Over 100% cannot be: the times do not belong together (a hand-edited or rebuilt folder).
  if (fraction > 1.0 + 1e-6) return std::nullopt;
  return fraction;
}

Report BuildReport(const fs::path& results_dir) {
  if (!fs::is_directory(results_dir)) {
    throw FolderError(FolderError::Kind::kMissing, fmt::format("no such results folder: {}", results_dir.string()));
  }
  batch::ResultsStore store(results_dir);
  batch::ResultsStore::SummaryFile summary_file = store.LoadSummary();
  if (summary_file.state == batch::ResultsStore::SummaryFile::State::kDamaged) {
    throw FolderError(FolderError::Kind::kDamaged,
                      fmt::format("{} {}; a kbrun batch run on this folder keeps it aside and rebuilds it from "
                                  "the result files",
                                  store.SummaryPath().string(), summary_file.problem));
  }
  json summary = summary_file.doc;
  Report r;
  r.results_dir = results_dir.string();
  if (summary.is_object()) {
    r.batch_state = summary.value("state", "");
    const json config = summary.value("config", json::object());
    r.target_speedup = config.value("target_speedup", 1.0);
    auto text = [](const json& o, const char* key) {
      return o.is_object() && o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : std::string();
    };
    r.model = text(config, "model");
    r.evaluator = text(config, "evaluator");
    r.backend = text(config, "backend");
    r.precision = text(config, "precision");
    r.kbrun_version = text(summary, "kbrun_version");
    if (config.contains("samples") && config["samples"].is_number_integer()) {
      r.samples_per_attempt = std::max(0, config["samples"].get<int>());
    }
    if (config.contains("gpu_lanes") && config["gpu_lanes"].is_array() && !config["gpu_lanes"].empty()) {
      r.gpu_lanes = static_cast<int>(config["gpu_lanes"].size());
    }
    if (summary.contains("slurm") && summary["slurm"].is_object() && summary["slurm"].contains("shards") &&
        summary["slurm"]["shards"].is_array()) {
      r.slurm_shards = static_cast<int>(summary["slurm"]["shards"].size());
    }
    const json sessions = summary.contains("sessions") ? summary["sessions"] : json(nullptr);
    for (const auto& s : sessions.is_array() ? sessions : json::array()) {
      ++r.sessions;
      if (!s.is_object() || !s["started_at"].is_number()) {
        r.wall_known = false;  // a session whose times were lost
        continue;
      }
      double start = s["started_at"].get<double>();
      double end = s["ended_at"].is_number()           ? s["ended_at"].get<double>()
                   : summary["updated_at"].is_number() ? summary["updated_at"].get<double>()
                                                       : start;
      r.wall_s += std::max(0.0, end - start);
    }
  }
  auto problems = ListProblems(results_dir, summary);
  if (problems.empty() && !summary.is_object()) {
    if (fs::exists(batch::ManifestPath(results_dir))) {
      throw FolderError(FolderError::Kind::kMissing,
                        fmt::format("{} holds a Slurm run whose shards are not merged yet: kbrun merge {} first",
                                    results_dir.string(), results_dir.string()));
    }
    throw FolderError(FolderError::Kind::kMissing,
                      fmt::format("{} holds no summary.json and no result files", results_dir.string()));
  }

  int most_first_attempt = 0;
  std::vector<std::optional<double>> best_picked, one_shot_picked;
  // Baselines other than eager that samples recorded: samples measured, unavailable by reason.
  std::map<std::string, int> baseline_samples;
  std::map<std::string, std::map<std::string, int>> baseline_unavailable;
  int eager_timed = 0;                   // samples whose reference was timed
  double first_start = 0, last_end = 0;  // span of all stages: wall time when there is no summary
  std::vector<double> lane_seconds;      // per sample that held a GPU lane
  for (const auto& [name, number] : problems) {
    ProblemReport p;
    p.name = name;
    p.number = number;
    auto records = store.LoadRecords(name);
    p.samples_used = static_cast<int>(records.size());
    for (const auto& [index, rec] : records) {
      p.attempts_used = std::max(p.attempts_used, rec.id.attempt);
      if (!rec.failure_kind.empty()) {
        ++p.failure_kinds[rec.failure_kind];
        ++r.failure_kinds[rec.failure_kind];
      }
      ++r.samples;
      ++r.samples_by_status[rec.status];
      if (rec.correct) ++r.samples_correct;
      if (rec.id.attempt == 1) {
        ++p.first_attempt_samples;
        if (rec.correct) ++p.first_attempt_correct;
        if (rec.correct && rec.speedup > 1.0) ++p.first_attempt_faster;
        if (rec.id.sample == 1) {
          p.one_shot_status = rec.status;
          p.one_shot_speedup = rec.correct ? rec.speedup : 0;
        }
      }
      const json ev = rec.doc.is_object() ? rec.doc.value("eval", json(nullptr)) : json(nullptr);
      if (ev.is_object() && ev.contains("tolerance") && ev["tolerance"].is_object()) {
        ++r.tolerance_rules[ev["tolerance"].value("rule", "fixed")];
      }
      if (ev.is_object() && ev.contains("timing") && ev["timing"].is_object() &&
          ev["timing"].value("method", json()).is_string() && !ev["timing"]["method"].get<std::string>().empty()) {
        ++r.timing_methods[ev["timing"]["method"].get<std::string>()];
      }
      if (ev.is_object() && ev.contains("device") && ev["device"].is_object() &&
          ev["device"].value("name", json()).is_string() && !ev["device"]["name"].get<std::string>().empty()) {
        ++r.devices[ev["device"]["name"].get<std::string>()];
      }
      if (ev.is_object() && ev.contains("env") && ev["env"].is_object() &&
          ev["env"].value("torch_version", json()).is_string()) {
        ++r.torch_versions[ev["env"]["torch_version"].get<std::string>()];
      }
      if (ev.is_object() && ev.contains("timing") && ev["timing"].is_object() &&
          PositiveNumber(ev["timing"].value("reference", json()), "median_ms")) {
        ++eager_timed;
      }
      if (ev.is_object() && ev.contains("baselines") && ev["baselines"].is_object()) {
        for (const auto& [baseline, entry] : ev["baselines"].items()) {
          if (baseline == "eager" || !entry.is_object()) continue;
          baseline_samples[baseline] += entry.value("status", "") == "measured" ? 1 : 0;
          if (entry.value("status", "") == "unavailable") {
            ++baseline_unavailable[baseline][ShortReason(entry.value("reason", std::string("no reason given")))];
          }
        }
      }
      if (ev.is_object() && ev.contains("fallback") && ev["fallback"].is_object() &&
          ev["fallback"].value("fallback_reason", json()).is_string()) {
        ++r.fallback_reasons[ev["fallback"]["fallback_reason"].get<std::string>()];
      }
      const json& llm = rec.doc.contains("llm") ? rec.doc["llm"] : json(nullptr);
      if (llm.is_object()) {
        p.prompt_tokens += llm.value("prompt_tokens", 0LL);
        p.completion_tokens += llm.value("completion_tokens", 0LL);
      }
      const json& stages = rec.doc.contains("stages") ? rec.doc["stages"] : json(nullptr);
      r.stages.llm_s += Seconds(stages, "llm", &r.stages.llm_n);
      r.stages.compile_s += Seconds(stages, "compile", &r.stages.compile_n);
      r.stages.gpu_s += Seconds(stages, "gpu", &r.stages.gpu_n);
      r.stages.remote_s += Seconds(stages, "remote", &r.stages.remote_n);
      if (rec.doc.is_object()) {
        if (auto lane = SampleLaneSeconds(rec.doc, &r.lane_cost)) lane_seconds.push_back(*lane);
      }
      for (const char* stage : {"llm", "compile", "gpu", "remote"}) {
        if (!stages.is_object() || !stages.contains(stage) || !stages[stage].is_object()) continue;
        double a = stages[stage].value("start", 0.0), b = stages[stage].value("end", 0.0);
        if (a > 0 && (first_start == 0 || a < first_start)) first_start = a;
        last_end = std::max(last_end, b);
      }
    }
    r.prompt_tokens += p.prompt_tokens;
    r.completion_tokens += p.completion_tokens;
    if (auto best = batch::PickBest(records)) {
      const batch::SampleRecord& b = records.at(*best);
      p.best_index = *best;
      p.best_status = b.status;
      p.correct = b.correct;
      p.best_speedup = b.correct ? b.speedup : 0;
      const json& bl = b.doc.is_object() && b.doc.contains("eval") && b.doc["eval"].is_object() &&
                               b.doc["eval"].contains("baselines") && b.doc["eval"]["baselines"].is_object()
                           ? b.doc["eval"]["baselines"]
                           : json::object();
      for (const auto& [baseline, entry] : bl.items()) p.baselines[baseline] = entry;
      if (b.doc.is_object() && b.doc.contains("eval") && b.doc["eval"].is_object()) {
        p.best_timing = b.doc["eval"].value("timing", nlohmann::json());
      }
    }
    std::string phase = SummaryPhase(summary, name);
    bool unfinished = phase == "running" || phase == "queued";
    if (p.correct) {
      p.status = p.best_speedup >= r.target_speedup ? "solved" : "slow";
    } else if (p.samples_used == 0) {
      p.status = "not_started";
    } else if (unfinished) {
      p.status = r.batch_state == "running" ? "running" : "incomplete";
    } else {
      p.status = "failed";
    }
    if (p.correct) {
      ++r.correct;
      if (p.status == "solved") ++r.solved;
    }
    best_picked.push_back(p.correct ? std::optional<double>(p.best_speedup) : std::nullopt);
    one_shot_picked.push_back(p.one_shot_status == "correct" ? std::optional<double>(p.one_shot_speedup)
                                                             : std::nullopt);
    most_first_attempt = std::max(most_first_attempt, p.first_attempt_samples);
    r.problems.push_back(std::move(p));
  }
  batch::LaneCost discarded = r.lane_cost;
  r.lane_cost = batch::SummarizeLaneSeconds(lane_seconds);
  r.lane_cost.discarded_runs = discarded.discarded_runs;
  r.lane_cost.discarded_s = discarded.discarded_s;
  double n = static_cast<double>(r.problems.size());
  r.correctness_rate = n > 0 ? r.correct / n : 0;
  r.best_of_all = Figures(best_picked);
  r.one_shot = Figures(one_shot_picked);
  r.fast_p = r.best_of_all.fast_p;
  r.geomean_speedup = r.best_of_all.geomean_speedup;
  if (r.samples_per_attempt == 0) r.samples_per_attempt = most_first_attempt;
  // Against each baseline: eager (the figures above), then those the samples recorded, in
  // --baseline's order (names kbrun does not know last).
  std::vector<std::string> names = {"eager"};
  for (const auto& name : eval::BaselineNames()) {
    if (name != "eager" && baseline_samples.count(name)) names.push_back(name);
  }
  for (const auto& [name, count] : baseline_samples) {
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  for (const auto& name : names) {
    BaselineFigures b;
    b.name = name;
    std::vector<std::optional<double>> picked;
    std::vector<double> over_eager;
    for (const auto& p : r.problems) {
      picked.push_back(p.BaselineSpeedup(name));
      auto entry = p.baselines.find(name);
      if (picked.back() && name != "eager" && entry != p.baselines.end()) {
        if (auto v = PositiveNumber(entry->second, "speedup_over_eager")) over_eager.push_back(*v);
      }
    }
    SpeedupFigures f = Figures(picked);
    b.problems = f.problems;
    b.measured = f.correct;
    b.fast_p = f.fast_p;
    b.geomean_speedup = f.geomean_speedup;
    if (name == "eager") {
      b.geomean_baseline_over_eager = 1.0;
      b.samples_measured = eager_timed;
    } else {
      b.geomean_baseline_over_eager = Geomean(over_eager);
      b.samples_measured = baseline_samples[name];
      b.unavailable = baseline_unavailable[name];
    }
    r.baselines.push_back(std::move(b));
  }
  for (int k = 1; k <= r.samples_per_attempt; ++k) {
    PassAtKRow row;
    row.k = k;
    for (const auto& p : r.problems) {
      if (p.first_attempt_samples < k) continue;
      ++row.problems;
      row.pass_at_k += PassAtK(p.first_attempt_samples, p.first_attempt_correct, k);
      row.fast_1_at_k += PassAtK(p.first_attempt_samples, p.first_attempt_faster, k);
    }
    if (row.problems > 0) {
      row.pass_at_k /= row.problems;
      row.fast_1_at_k /= row.problems;
    }
    r.pass_at_k.push_back(row);
  }
  if (r.sessions == 0 && last_end > first_start) r.wall_s = last_end - first_start;  // no summary: the stages' span
  // Stages ran but no time was recorded for them: not "0.0 s".
  if (r.wall_s <= 0 && last_end > 0) r.wall_known = false;
  if (!r.wall_known) r.wall_s = 0;
  return r;
}

namespace {
json Optional(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json LaneCostJson(const batch::LaneCost& lanes) {
  return {{"evaluations", lanes.evaluations},
          {"lane_seconds", lanes.lane_s},
          {"median_s", Optional(lanes.median_s)},
          {"p90_s", Optional(lanes.p90_s)},
          {"evaluations_per_gpu_hour", Optional(lanes.per_gpu_hour)},
          {"discarded_runs", lanes.discarded_runs},
          {"discarded_seconds", lanes.discarded_s}};
}
}  // namespace

json ReportJson(const Report& r) {
  json problems = json::array();
  for (const auto& p : r.problems) {
    problems.push_back({{"name", p.name},
                        {"number", p.number},
                        {"status", p.status},
                        {"correct", p.correct},
                        {"best_speedup", p.correct ? json(p.best_speedup) : json(nullptr)},
                        {"best_index", p.best_index ? json(*p.best_index) : json(nullptr)},
                        {"best_status", p.best_status.empty() ? json(nullptr) : json(p.best_status)},
                        {"attempts_used", p.attempts_used},
                        {"samples_used", p.samples_used},
                        {"failure_kinds", p.failure_kinds},
                        {"prompt_tokens", p.prompt_tokens},
                        {"completion_tokens", p.completion_tokens},
                        {"one_shot",
                         {{"status", p.one_shot_status.empty() ? json(nullptr) : json(p.one_shot_status)},
                          {"speedup", p.one_shot_status == "correct" ? json(p.one_shot_speedup) : json(nullptr)}}},
                        {"first_attempt",
                         {{"samples", p.first_attempt_samples},
                          {"correct", p.first_attempt_correct},
                          {"correct_and_faster", p.first_attempt_faster}}},
                        {"baselines", [&] {
                           json b = json::object();
                           for (const auto& [name, entry] : p.baselines) b[name] = BaselineEntryJson(entry);
                           return b;
                         }()}});
  }
  json baselines = json::object();
  for (const auto& b : r.baselines) {
    json fast_b = json::object();
    for (const auto& [p, v] : b.fast_p) fast_b[FastPKey(p)] = v;
    baselines[b.name] = {{"problems", b.problems},
                         {"measured", b.measured},
                         {"fast_p", fast_b},
                         {"geomean_speedup", b.geomean_speedup ? json(*b.geomean_speedup) : json(nullptr)},
                         {"geomean_over", b.measured},
                         {"geomean_baseline_over_eager",
                          b.geomean_baseline_over_eager ? json(*b.geomean_baseline_over_eager) : json(nullptr)},
                         {"samples_measured", b.samples_measured},
                         {"unavailable", b.unavailable}};
  }
  json pass_at_k = json::array();
  for (const auto& row : r.pass_at_k) {
    pass_at_k.push_back({{"k", row.k},
                         {"problems", row.problems},
                         {"pass_at_k", row.problems > 0 ? json(row.pass_at_k) : json(nullptr)},
                         {"fast_1_at_k", row.problems > 0 ? json(row.fast_1_at_k) : json(nullptr)}});
  }
  json budget = {{"one_shot", FiguresJson(r.one_shot, "attempt 1, sample 1")},
                 {"best_of_all", FiguresJson(r.best_of_all, "best of every sample and attempt")},
                 {"pass_at_k",
                  {{"estimator", "1 - C(n-c, k) / C(n, k) per problem, averaged over problems with n >= k"},
                   {"samples", "attempt 1"},
                   {"samples_per_attempt", r.samples_per_attempt},
                   {"by_k", pass_at_k}}}};
  json fast = json::object();
  for (const auto& [p, f] : r.fast_p) fast[FastPKey(p)] = f;
  double wall = r.wall_known ? r.wall_s : 0;
  std::optional<double> gpu_busy = GpuBusyFraction(r);
  return {{"kbrun_version", KBRUN_VERSION},
          {"results_dir", r.results_dir},
          {"generated_at", batch::IsoTime(batch::NowUnix())},
          {"batch_state", r.batch_state.empty() ? json(nullptr) : json(r.batch_state)},
          {"target_speedup", r.target_speedup},
          {"config",
           {{"model", r.model.empty() ? json(nullptr) : json(r.model)},
            {"backend", r.backend.empty() ? json(nullptr) : json(r.backend)},
            {"precision", r.precision.empty() ? json(nullptr) : json(r.precision)},
            {"evaluator", r.evaluator.empty() ? json(nullptr) : json(r.evaluator)},
            {"batch_kbrun_version", r.kbrun_version.empty() ? json(nullptr) : json(r.kbrun_version)}}},
          {"problems", problems},
          {"overall",
           {{"problems", r.problems.size()},
            {"correct", r.correct},
            {"solved", r.solved},
            {"correctness_rate", r.correctness_rate},
            {"fast_p", fast},
            {"geomean_speedup", r.geomean_speedup ? json(*r.geomean_speedup) : json(nullptr)},
            {"geomean_over", r.correct},
            {"samples", r.samples},
            {"samples_correct", r.samples_correct},
            {"tolerance_rules", r.tolerance_rules},
            {"fallback_reasons", r.fallback_reasons},
            {"timing_methods", r.timing_methods},
            {"devices", r.devices},
            {"torch_versions", r.torch_versions},
            {"samples_by_status", r.samples_by_status},
            {"failure_kinds", r.failure_kinds},
            {"prompt_tokens", r.prompt_tokens},
            {"completion_tokens", r.completion_tokens},
            {"wall_s", r.wall_known ? json(wall) : json(nullptr)},
            {"sessions", r.sessions},
            {"slurm_shards", r.slurm_shards},
            {"gpu_lanes", r.gpu_lanes},
            {"stage_seconds",
             {{"llm", r.stages.llm_s},
              {"compile", r.stages.compile_s},
              {"gpu", r.stages.gpu_s},
              {"remote", r.stages.remote_s},
              {"total", r.stages.total()}}},
            {"stage_counts",
             {{"llm", r.stages.llm_n},
              {"compile", r.stages.compile_n},
              {"gpu", r.stages.gpu_n},
              {"remote", r.stages.remote_n}}},
            {"stage_sum_over_wall", r.wall_known && wall > 0 ? json(r.stages.total() / wall) : json(nullptr)},
            {"gpu_busy_fraction", gpu_busy ? json(*gpu_busy) : json(nullptr)},
            {"gpu_lane_cost", LaneCostJson(r.lane_cost)},
            {"budget", budget},
            {"baselines", baselines}}}};
}

namespace {

std::string BudgetText(const Report& r) {
  std::vector<std::string> header = {"Budget (problems: " + std::to_string(r.problems.size()) + ")", "Correct"};
  std::vector<TextTable::Align> align = {TextTable::Align::kLeft, TextTable::Align::kRight};
  for (double p : kFastPThresholds) {
    header.push_back(FastPKey(p));
    align.push_back(TextTable::Align::kRight);
  }
  header.push_back("Geomean");
  align.push_back(TextTable::Align::kRight);
  TextTable table(header, align);
  auto row = [&](const std::string& label, const SpeedupFigures& f) {
    std::vector<std::string> cells = {label, std::to_string(f.correct)};
    for (const auto& [p, v] : f.fast_p) cells.push_back(Percent(v));
    cells.push_back(f.geomean_speedup ? fmt::format("{:.3f}x", *f.geomean_speedup) : "-");
    table.AddRow(cells);
  };
  row("one-shot (attempt 1, sample 1)", r.one_shot);
  row("best of all samples and attempts", r.best_of_all);
  std::string out = table.Render();
  if (!r.pass_at_k.empty()) {
    out += fmt::format("pass@k over the samples of attempt 1 (unbiased estimator, {} per attempt)\n",
                       r.samples_per_attempt);
    TextTable passk(
        {"k", "Problems (n >= k)", "pass@k", "fast_1@k"},
        {TextTable::Align::kRight, TextTable::Align::kRight, TextTable::Align::kRight, TextTable::Align::kRight});
    for (const auto& k : r.pass_at_k) {
      passk.AddRow({std::to_string(k.k), std::to_string(k.problems), k.problems > 0 ? Percent(k.pass_at_k) : "-",
                    k.problems > 0 ? Percent(k.fast_1_at_k) : "-"});
    }
    out += passk.Render(2);
  }
  return out;
}

// Against each baseline (shown when a sample recorded one besides eager).
std::string BaselinesText(const Report& r) {
  std::vector<std::string> header = {"Baseline (problems: " + std::to_string(r.problems.size()) + ")", "Measured"};
  std::vector<TextTable::Align> align = {TextTable::Align::kLeft, TextTable::Align::kRight};
  for (double p : kFastPThresholds) {
    header.push_back(FastPKey(p));
    align.push_back(TextTable::Align::kRight);
  }
  for (const char* h : {"Geomean", "Baseline/eager"}) {
    header.push_back(h);
    align.push_back(TextTable::Align::kRight);
  }
  TextTable table(header, align);
  for (const auto& b : r.baselines) {
    std::vector<std::string> cells = {b.name, std::to_string(b.measured)};
    for (const auto& [p, v] : b.fast_p) cells.push_back(Percent(v));
    cells.push_back(b.geomean_speedup ? fmt::format("{:.3f}x", *b.geomean_speedup) : "-");
    cells.push_back(b.geomean_baseline_over_eager ? fmt::format("{:.3f}x", *b.geomean_baseline_over_eager) : "-");
    table.AddRow(cells);
  }
  std::string out =
      "Against each baseline: the best kernel of each problem (correct, speedup over it > p); Measured: problems\n"
      "counted (best kernel correct, that baseline measured); Baseline/eager: the baseline's own speedup over eager\n" +
      table.Render();
  for (const auto& b : r.baselines) {
    if (b.unavailable.empty()) continue;
    out += fmt::format("  {} unavailable in {} sample{}: ", b.name,
                       std::accumulate(b.unavailable.begin(), b.unavailable.end(), 0,
                                       [](int n, const auto& kv) { return n + kv.second; }),
                       b.unavailable.size() == 1 && b.unavailable.begin()->second == 1 ? "" : "s");
    out += KindsText(b.unavailable) + "\n";
  }
  return out;
}

}  // namespace

std::string ReportText(const Report& r) {
  std::string out = fmt::format("kbrun batch report: {}{}\n\n", r.results_dir,
                                r.batch_state.empty() ? "" : fmt::format(" (batch {})", r.batch_state));
  size_t n = r.problems.size();
  out += fmt::format("Problems       {}: {} with a correct kernel ({}), {} at or above the target speedup {:.2f}x\n", n,
                     r.correct, Percent(r.correctness_rate), r.solved, r.target_speedup);
  std::string fast;
  for (const auto& [p, f] : r.fast_p) {
    fast += fmt::format("{}{} {}", fast.empty() ? "" : "   ", FastPKey(p), Percent(f));
  }
  out += "fast_p         " + fast + "   (best of all: correct and speedup > p)\n";
  out += "Geomean speedup " +
         (r.geomean_speedup ? fmt::format("{:.3f}x over {} correct kernel{}", *r.geomean_speedup, r.correct,
                                          r.correct == 1 ? "" : "s")
                            : std::string("- (no correct kernel)")) +
         "\n\n";

  out += BudgetText(r) + "\n";
  if (r.HasOtherBaselines()) out += BaselinesText(r) + "\n";

  std::vector<std::string> header = {"Problem", "Status", "Best speedup"};
  std::vector<TextTable::Align> align = {TextTable::Align::kLeft, TextTable::Align::kLeft, TextTable::Align::kRight};
  for (size_t i = 1; i < r.baselines.size(); ++i) {
    header.push_back("vs " + r.baselines[i].name);
    align.push_back(TextTable::Align::kRight);
  }
  for (const char* h : {"Best", "Attempts", "Samples", "Failure kinds"}) header.push_back(h);
  align.insert(align.end(),
               {TextTable::Align::kLeft, TextTable::Align::kRight, TextTable::Align::kRight, TextTable::Align::kLeft});
  TextTable problems(header, align);
  for (const auto& p : r.problems) {
    std::vector<std::string> cells = {p.name, p.status, p.correct ? fmt::format("{:.3f}x", p.best_speedup) : "-"};
    for (size_t i = 1; i < r.baselines.size(); ++i) {
      auto v = p.BaselineSpeedup(r.baselines[i].name);
      cells.push_back(v ? fmt::format("{:.3f}x", *v) : "-");
    }
    cells.insert(cells.end(),
                 {p.best_index ? fmt::format("#{} {}", *p.best_index, p.best_status) : "-",
                  std::to_string(p.attempts_used), std::to_string(p.samples_used), KindsText(p.failure_kinds)});
    problems.AddRow(cells);
  }
  out += problems.Render() + "\n";

  out += fmt::format("Samples        {} evaluated or attempted, {} correct\n", r.samples, r.samples_correct);
  if (!r.tolerance_rules.empty()) out += "Judged by      " + KindsText(r.tolerance_rules) + " (--tolerance rule)\n";
  if (!r.timing_methods.empty()) out += "Timed by       " + KindsText(r.timing_methods) + " (timing.method)\n";
  if (!r.devices.empty()) out += "Devices        " + KindsText(r.devices) + " (samples; eval.device.name)\n";
  if (!r.torch_versions.empty()) out += "Torch          " + KindsText(r.torch_versions) + " (samples)\n";
  if (!r.fallback_reasons.empty()) {
    out += "Own code unused " + KindsText(r.fallback_reasons) + " (samples; result.json fallback.fallback_reason)\n";
  }
  TextTable breakdown({"Outcome", "Samples", "Share"},
                      {TextTable::Align::kLeft, TextTable::Align::kRight, TextTable::Align::kRight});
  for (const auto& [status, count] : r.samples_by_status) {
    breakdown.AddRow({status, std::to_string(count), r.samples ? Percent(double(count) / r.samples) : "-"});
  }
  if (!breakdown.empty()) out += breakdown.Render(2) + "\n";
  if (!r.failure_kinds.empty()) {
    TextTable kinds({"Failure kind", "Samples"}, {TextTable::Align::kLeft, TextTable::Align::kRight});
    for (const auto& [kind, count] : r.failure_kinds) kinds.AddRow({kind, std::to_string(count)});
    out += kinds.Render(2) + "\n";
  }

  out += fmt::format("Tokens         {} prompt + {} completion = {}\n", Thousands(r.prompt_tokens),
                     Thousands(r.completion_tokens), Thousands(r.prompt_tokens + r.completion_tokens));
  out += fmt::format(
      "Wall time      {}{}\n",
      r.wall_known ? FormatDuration(r.wall_s) : std::string("unknown (the times of an earlier session were lost)"),
      r.slurm_shards > 0 && r.sessions == 0 ? fmt::format(" (none of the {} Slurm shards has run)", r.slurm_shards)
      : r.slurm_shards > 0 ? fmt::format(" while any of {} Slurm shards ran ({} span{})", r.slurm_shards, r.sessions,
                                         r.sessions == 1 ? "" : "s")
      : r.sessions > 1     ? fmt::format(" over {} sessions (resumed)", r.sessions)
                           : "");
  TextTable stages(
      {"Stage", "Runs", "Time (sum)", "Share of wall"},
      {TextTable::Align::kLeft, TextTable::Align::kRight, TextTable::Align::kRight, TextTable::Align::kRight});
  auto share = [&](double s) {
    return r.wall_known && r.wall_s > 0 ? fmt::format("{:.2f}x", s / r.wall_s) : std::string("unknown");
  };
  stages.AddRow({"llm", std::to_string(r.stages.llm_n), FormatDuration(r.stages.llm_s), share(r.stages.llm_s)});
  stages.AddRow(
      {"compile", std::to_string(r.stages.compile_n), FormatDuration(r.stages.compile_s), share(r.stages.compile_s)});
  stages.AddRow({"gpu", std::to_string(r.stages.gpu_n), FormatDuration(r.stages.gpu_s), share(r.stages.gpu_s)});
  if (r.stages.remote_n > 0) {
    stages.AddRow(
        {"remote", std::to_string(r.stages.remote_n), FormatDuration(r.stages.remote_s), share(r.stages.remote_s)});
  }
  stages.AddRow({"all stages", "", FormatDuration(r.stages.total()), share(r.stages.total())});
  out += "Stage time sums vs wall time (above 1.00x: stages overlapped)\n" + stages.Render(2);
  std::optional<double> gpu_busy = GpuBusyFraction(r);
  if (!r.evaluator.empty()) {
    out += fmt::format("  Evaluated remotely by {} (batch --evaluator): compile and run at the service\n", r.evaluator);
  } else {
    out += fmt::format("  GPU lanes busy {} of the wall time ({} lane{})\n", gpu_busy ? Percent(*gpu_busy) : "unknown",
                       r.gpu_lanes, r.gpu_lanes == 1 ? "" : "s");
    out += "  GPU lanes: " + batch::LaneCostText(r.lane_cost) + "\n";
  }
  return out;
}

Report WriteReport(const fs::path& results_dir, json* json_out, const WriteOptions& options) {
  Report r = BuildReport(results_dir);
  json doc = ReportJson(r);
  WriteFileAtomic(results_dir / "detailed_report.json", batch::JsonText(doc) + "\n");
  WriteFileAtomic(results_dir / "detailed_report.txt", ReportText(r));
  if (options.html_path) WriteFileAtomic(*options.html_path, HtmlReport(r));
  if (json_out) *json_out = std::move(doc);
  return r;
}

}  // namespace kbrun::report
