#include "report/export.h"

#include <regex>
#include <set>
#include <stdexcept>

#include <fmt/format.h>

#include "batch/clock.h"
#include "batch/results_store.h"
#include "report/report.h"
#include "util/fs.h"

namespace kbrun::report {

using nlohmann::json;

namespace {

const json& Field(const json& doc, const char* name) {
  static const json null_json;
  return doc.is_object() && doc.contains(name) ? doc[name] : null_json;
}

std::optional<double> Number(const json& doc, const char* name) {
  const json& v = Field(doc, name);
  return v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt;
}

std::string String(const json& doc, const char* name) {
  const json& v = Field(doc, name);
  return v.is_string() ? v.get<std::string>() : "";
}

std::string NumberText(const std::optional<double>& v) { return v ? fmt::format("{}", *v) : ""; }

// KernelBench's runtime_stats from kbrun's timing object: {mean, std, min, max, num_trials}
// (ms), plus kbrun's median. {} when not timed.
json RuntimeStats(const json& timing) {
  if (!timing.is_object()) return json::object();
  json s = json::object();
  const std::pair<const char*, const char*> keys[] = {
      {"mean", "mean_ms"}, {"std", "std_ms"}, {"min", "min_ms"}, {"max", "max_ms"}, {"median", "median_ms"}};
  for (const auto& [to, from] : keys) {
    if (auto v = Number(timing, from)) s[to] = *v;
  }
  if (timing.contains("trials") && timing["trials"].is_number()) s["num_trials"] = timing["trials"];
  return s;
}

}  // namespace

std::optional<int> LevelFromPath(const std::string& path) {
  static const std::regex level(R"((?:^|[/_\\])level_?(\d+)(?:$|[/_\\]))");
  std::smatch m;
  if (std::regex_search(path, m, level)) return std::stoi(m[1].str());
  return std::nullopt;
}

std::vector<ExportRow> LoadExportRows(const fs::path& results_dir) {
  Report report = BuildReport(results_dir);  // the problem list, and FolderError for a bad folder
  batch::ResultsStore store(results_dir);
  json summary = store.LoadSummary().doc;
  std::optional<int> batch_level;
  if (summary.is_object() && summary.contains("config")) {
    batch_level = LevelFromPath(String(summary["config"], "problems_dir"));
  }
  std::vector<ExportRow> rows;
  for (const auto& p : report.problems) {
    for (const auto& [index, rec] : store.LoadRecords(p.name)) {
      ExportRow row;
      row.problem = p.name;
      row.problem_number = p.number;
      row.index = index;
      row.attempt = rec.id.attempt;
      row.sample = rec.id.sample;
      row.status = rec.status;
      row.category = rec.error_category;
      row.correct = rec.correct;
      if (rec.correct) row.speedup = rec.speedup;
      const json& ev = Field(rec.doc, "eval");
      row.compiled = Field(ev, "compiled").is_boolean() && ev["compiled"].get<bool>();
      const json& timing = Field(ev, "timing");
      row.timing_method = String(timing, "method");
      row.reference_median_ms = Number(Field(timing, "reference"), "median_ms");
      row.candidate_median_ms = Number(Field(timing, "candidate"), "median_ms");
      row.tolerance_rule = String(Field(ev, "tolerance"), "rule");
      row.level = LevelFromPath(String(ev, "problem_path"));
      if (!row.level) row.level = batch_level;
      std::string code = String(Field(rec.doc, "files"), "code");
      if (!code.empty() && fs::exists(store.ProblemDir(p.name) / code)) {
        row.code_path = (store.ProblemDir(p.name) / code).string();
      }
      row.doc = rec.doc;
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> CsvHeader() {
  std::vector<std::string> header = {"problem",
                                     "problem_number",
                                     "level",
                                     "index",
                                     "attempt",
                                     "sample",
                                     "status",
                                     "category",
                                     "correct",
                                     "speedup",
                                     "reference_median_ms",
                                     "candidate_median_ms",
                                     "timing_method",
                                     "tolerance_rule",
                                     "code_path"};
  for (const auto& name : kCsvBaselines) {
    for (const char* field : {"_status", "_speedup", "_median_ms", "_speedup_over_eager", "_reason"}) {
      header.push_back(name + field);
    }
  }
  return header;
}

std::vector<std::string> CsvBaselineFields(const json& doc) {
  const json& baselines = Field(Field(doc, "eval"), "baselines");
  std::vector<std::string> out;
  for (const auto& name : kCsvBaselines) {
    const json& b = Field(baselines, name.c_str());
    std::string reason = String(b, "reason");
    bool correct = Field(doc, "correct").is_boolean() && doc["correct"].get<bool>();
    out.insert(out.end(), {String(b, "status"), correct ? NumberText(Number(b, "speedup")) : "",
                           NumberText(Number(b, "median_ms")), NumberText(Number(b, "speedup_over_eager")),
                           reason.substr(0, reason.find('\n'))});
  }
  return out;
}

std::string CsvText(const std::vector<ExportRow>& rows) {
  auto line = [](const std::vector<std::string>& fields) {
    std::string out;
    for (size_t i = 0; i < fields.size(); ++i) out += (i ? "," : "") + CsvField(fields[i]);
    return out + "\r\n";
  };
  std::string out = line(CsvHeader());
  for (const auto& r : rows) {
    std::vector<std::string> fields = {r.problem,
                                       std::to_string(r.problem_number),
                                       r.level ? std::to_string(*r.level) : "",
                                       std::to_string(r.index),
                                       std::to_string(r.attempt),
                                       std::to_string(r.sample),
                                       r.status,
                                       r.category,
                                       r.correct ? "true" : "false",
                                       NumberText(r.speedup),
                                       NumberText(r.reference_median_ms),
                                       NumberText(r.candidate_median_ms),
                                       r.timing_method,
                                       r.tolerance_rule,
                                       r.code_path};
    for (auto& field : CsvBaselineFields(r.doc)) fields.push_back(std::move(field));
    out += line(fields);
  }
  return out;
}

std::string KernelBenchKernelName(int level, const ExportRow& row) {
  return fmt::format("level_{}_problem_{}_sample_{}_kernel.py", level, row.problem_number, row.index - 1);
}

json KernelBenchEvalResults(const std::vector<ExportRow>& rows) {
  json out = json::object();
  for (const auto& r : rows) {
    const json& ev = Field(r.doc, "eval");
    const json& timing = Field(ev, "timing");
    json runtime_stats = RuntimeStats(Field(timing, "candidate"));
    json ref_stats = RuntimeStats(Field(timing, "reference"));
    json metadata = json::object();
    const json& device = Field(ev, "device");
    if (device.is_object()) {
      metadata["hardware"] = String(device, "name");
      std::string kind = String(device, "kind");
      metadata["device"] =
          Field(device, "gpu_index").is_number() ? fmt::format("{}:{}", kind, device["gpu_index"].get<int>()) : kind;
    }
    const json& correctness = Field(ev, "correctness");
    if (correctness.is_object() && correctness.contains("trials_run")) {
      metadata["correctness_trials"] =
          fmt::format("({} / {})", correctness.value("trials_passed", 0), correctness.value("trials_run", 0));
    }
    std::string message = String(Field(r.doc, "error"), "message");
    if (!r.correct) {
      const char* key = r.status == "compile_error"                            ? "compilation_error"
                        : r.status == "runtime_error" || r.status == "timeout" ? "runtime_error"
                        : r.status == "incorrect"                              ? "correctness_issue"
                                                                               : "other_error";
      metadata[key] = message.empty() ? r.status : message;
    }
    metadata["kbrun"] = {{"problem", r.problem},
                         {"index", r.index},
                         {"attempt", r.attempt},
                         {"sample", r.sample},
                         {"status", r.status},
                         {"category", r.category.empty() ? json(nullptr) : json(r.category)},
                         {"speedup", r.speedup ? json(*r.speedup) : json(nullptr)},
                         {"timing_method", r.timing_method.empty() ? json(nullptr) : json(r.timing_method)},
                         {"tolerance_rule", r.tolerance_rule.empty() ? json(nullptr) : json(r.tolerance_rule)},
                         {"reference_median_ms", r.reference_median_ms ? json(*r.reference_median_ms) : json(nullptr)},
                         {"candidate_median_ms", r.candidate_median_ms ? json(*r.candidate_median_ms) : json(nullptr)}};
    // KernelBench writes -1.0 for a runtime it did not measure.
    bool timed = r.correct && runtime_stats.contains("mean");
    json entry = {{"sample_id", r.index - 1},
                  {"compiled", r.compiled},
                  {"correctness", r.correct},
                  {"runtime", timed ? runtime_stats["mean"] : json(-1.0)},
                  {"runtime_stats", timed ? runtime_stats : json::object()},
                  {"ref_runtime", ref_stats.contains("mean") ? ref_stats["mean"] : json(-1.0)},
                  {"ref_runtime_stats", ref_stats},
                  {"metadata", metadata}};
    std::string key = r.problem_number > 0 ? std::to_string(r.problem_number) : r.problem;
    if (!out.contains(key)) out[key] = json::array();
    out[key].push_back(std::move(entry));
  }
  return out;
}

json KernelBenchSubmission(const fs::path& results_dir, const std::vector<ExportRow>& rows, int level) {
  batch::ResultsStore store(results_dir);
  json summary = store.LoadSummary().doc;
  json config = summary.is_object() && summary.contains("config") ? summary["config"] : json::object();
  // Best correct kernel per problem: the highest speedup, the earlier sample on a tie (as best_of).
  std::vector<const ExportRow*> best;
  std::string hardware, timing_method;
  std::set<std::string> problems;
  for (const auto& r : rows) {
    problems.insert(r.problem);
    const json& device = Field(Field(r.doc, "eval"), "device");
    if (hardware.empty()) hardware = String(device, "name");
    if (!r.correct || !r.speedup) continue;
    if (!best.empty() && best.back()->problem == r.problem) {
      if (*r.speedup > *best.back()->speedup) best.back() = &r;
    } else {
      best.push_back(&r);
    }
  }
  json kernels = json::array();
  for (const ExportRow* r : best) {
    if (timing_method.empty()) timing_method = r->timing_method;
    std::optional<std::string> code = r->code_path.empty() ? std::nullopt : ReadFile(r->code_path);
    const json& timing = Field(Field(r->doc, "eval"), "timing");
    kernels.push_back({{"level", level},
                       {"problem_id", r->problem_number},
                       {"problem_name", r->problem},
                       {"sample_id", r->index - 1},
                       {"attempt", r->attempt},
                       {"sample", r->sample},
                       {"compiled", true},
                       {"correctness", true},
                       {"runtime", Number(Field(timing, "candidate"), "mean_ms").value_or(-1.0)},
                       {"ref_runtime", Number(Field(timing, "reference"), "mean_ms").value_or(-1.0)},
                       {"speedup", *r->speedup},
                       {"timing_method", r->timing_method},
                       {"tolerance_rule", r->tolerance_rule},
                       {"kernel_file", "kernels/" + KernelBenchKernelName(level, *r)},
                       {"code", code ? json(*code) : json(nullptr)}});
  }
  json metadata = {{"kbrun_version", KBRUN_VERSION},
                   {"generated_at", batch::IsoTime(batch::NowUnix())},
                   {"results_dir", results_dir.string()},
                   {"level", level},
                   {"model", Field(config, "model")},
                   {"provider", Field(config, "provider")},
                   {"backend", Field(config, "backend")},
                   {"precision", Field(config, "precision")},
                   {"hardware", hardware.empty() ? json(nullptr) : json(hardware)},
                   {"timing_method", timing_method.empty() ? json(nullptr) : json(timing_method)},
                   {"speedup", "kbrun's: reference median / candidate median"},
                   {"num_problems", problems.size()},
                   {"num_kernels", kernels.size()}};
  return {{"metadata", metadata}, {"kernels", kernels}};
}

std::vector<fs::path> WriteKernelBenchExport(const fs::path& results_dir, const fs::path& out_dir,
                                             std::optional<int> level) {
  std::vector<ExportRow> rows = LoadExportRows(results_dir);
  if (!level) {
    for (const auto& r : rows) {
      if (r.level) {
        level = r.level;
        break;
      }
    }
  }
  if (!level) {
    throw std::invalid_argument(
        "the KernelBench level is not in the problems' paths (no 'levelN' folder): give --level");
  }
  std::vector<fs::path> written;
  fs::create_directories(out_dir / "kernels");
  for (const auto& r : rows) {
    if (r.code_path.empty()) continue;
    auto code = ReadFile(r.code_path);
    if (!code) continue;
    fs::path to = out_dir / "kernels" / KernelBenchKernelName(*level, r);
    WriteFileAtomic(to, *code);
    written.push_back(to);
  }
  WriteFileAtomic(out_dir / "eval_results.json", batch::JsonText(KernelBenchEvalResults(rows)) + "\n");
  written.push_back(out_dir / "eval_results.json");
  WriteFileAtomic(out_dir / "submission.json",
                  batch::JsonText(KernelBenchSubmission(results_dir, rows, *level)) + "\n");
  written.push_back(out_dir / "submission.json");
  return written;
}

}  // namespace kbrun::report
