#include "report/merge.h"

#include <algorithm>
#include <regex>

#include <fmt/format.h>

#include "batch/batch_settings.h"
#include "batch/batch_state.h"
#include "batch/clock.h"
#include "batch/results_store.h"
#include "report/report.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::report {

using nlohmann::json;

namespace {

struct LoadedShard {
  const batch::Shard* shard = nullptr;
  batch::ShardStatus status;
  json summary;  // null when the shard has not started
  int lane_offset = 0;
};

double Number(const json& j, const char* key, double fallback = 0) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

// The problem entry summary.json has for a problem no batch has touched yet.
json QueuedProblem(const std::string& name) {
  static const std::regex numbered(R"(^(\d+)_.*)");
  std::smatch m;
  int number = std::regex_match(name, m, numbered) ? std::stoi(m[1].str()) : 0;
  return {{"name", name},
          {"number", number},
          {"phase", "queued"},
          {"attempt", 0},
          {"attempts_used", 0},
          {"samples_done", 0},
          {"best", nullptr},
          {"failure_kinds", json::object()},
          {"running", json::array()},
          {"started_at", nullptr},
          {"finished_at", nullptr}};
}

// Adds `from` into `into`: numbers summed, objects merged key by key.
void AddTotals(json& into, const json& from) {
  if (!from.is_object()) return;
  for (const auto& [key, value] : from.items()) {
    if (value.is_number_integer()) {
      into[key] = (into.contains(key) && into[key].is_number_integer() ? into[key].get<long long>() : 0LL) +
                  value.get<long long>();
    } else if (value.is_object()) {
      if (!into.contains(key) || !into[key].is_object()) into[key] = json::object();
      AddTotals(into[key], value);
    }
  }
}

// Sessions of every shard as the union of their time spans: the merged batch ran whenever
// one of its shards did. A session whose times were lost stays a lost session.
json UnionOfSessions(const std::vector<LoadedShard>& shards) {
  std::vector<std::pair<double, double>> spans;
  bool lost = false;
  for (const auto& s : shards) {
    if (!s.summary.is_object() || !s.summary.contains("sessions") || !s.summary["sessions"].is_array()) continue;
    double updated = Number(s.summary, "updated_at");
    for (const auto& session : s.summary["sessions"]) {
      if (!session.is_object() || !session.contains("started_at") || !session["started_at"].is_number()) {
        lost = true;
        continue;
      }
      double start = session["started_at"].get<double>();
      double end = session.contains("ended_at") && session["ended_at"].is_number() ? session["ended_at"].get<double>()
                                                                                   : std::max(start, updated);
      spans.push_back({start, std::max(start, end)});
    }
  }
  std::sort(spans.begin(), spans.end());
  json out = json::array();
  for (size_t i = 0; i < spans.size();) {
    double start = spans[i].first, end = spans[i].second;
    size_t j = i + 1;
    for (; j < spans.size() && spans[j].first <= end; ++j) end = std::max(end, spans[j].second);
    out.push_back({{"started_at", start}, {"ended_at", end}, {"pid", nullptr}});
    i = j;
  }
  if (lost) out.push_back({{"started_at", nullptr}, {"ended_at", nullptr}, {"pid", nullptr}, {"lost", true}});
  return out;
}

// Replaces results/<name> with a copy of the shard's folder: built beside it, then renamed
// into place, so that a crash leaves the old copy or the new one.
void CopyProblemFolder(const fs::path& from, const fs::path& results, const std::string& name) {
  fs::path target = results / name;
  fs::path fresh = results / (".merge-" + name + ".new");
  fs::path old = results / (".merge-" + name + ".old");
  fs::remove_all(fresh);
  fs::remove_all(old);
  fs::copy(from, fresh, fs::copy_options::recursive);
  std::error_code ec;
  if (fs::exists(target, ec)) fs::rename(target, old);
  fs::rename(fresh, target);
  fs::remove_all(old);
}

}  // namespace

MergeOutcome MergeShards(const fs::path& results, const MergeOptions& options) {
  std::optional<batch::ShardManifest> manifest;
  try {
    manifest = batch::LoadManifest(results);
  } catch (const std::exception& e) {
    throw FolderError(FolderError::Kind::kDamaged, e.what());
  }
  if (!manifest) {
    throw FolderError(FolderError::Kind::kMissing,
                      fmt::format("{} holds no Slurm run ({} is missing): kbrun merge joins the shards that kbrun "
                                  "batch --slurm wrote",
                                  results.string(), batch::ManifestPath(results).string()));
  }

  // Folders an interrupted earlier merge left behind (they would read as extra problems).
  for (const auto& entry : fs::directory_iterator(results)) {
    if (StartsWith(entry.path().filename().string(), ".merge-")) fs::remove_all(entry.path());
  }

  MergeOutcome out;
  std::vector<LoadedShard> shards;
  int lanes = 0;
  for (const auto& shard : manifest->shards) {
    LoadedShard s;
    s.shard = &shard;
    s.status = batch::ReadShardStatus(results, shard);
    fs::path dir = batch::ShardResultsDir(results, shard.index);
    if (s.status.state == "damaged") {
      throw FolderError(FolderError::Kind::kDamaged,
                        fmt::format("shard {}: {}/summary.json cannot be read; resubmit the run (the shard's batch "
                                    "keeps the damaged file aside and rebuilds it from its result files)",
                                    shard.index, dir.string()));
    }
    if (s.status.state == "not_started") {
      out.warnings.push_back(fmt::format("shard {} ({}..{}) has not started: its problems are not_started", shard.index,
                                         shard.first, shard.last));
    } else {
      s.summary = batch::ResultsStore(dir).ReadSummary().value_or(json(nullptr));
      bool task_gone = options.active_tasks && !options.active_tasks->count(shard.index);
      if (s.status.state == "running" && task_gone) {
        out.warnings.push_back(
            fmt::format("shard {} says running but Slurm runs no task of it: it was killed "
                        "(see its log in {}); counted as interrupted",
                        shard.index, batch::SlurmDir(results).string() + "/logs"));
        s.status.state = "interrupted";
      }
      s.lane_offset = lanes;
      json config = s.summary.value("config", json::object());
      lanes += config.contains("gpu_lanes") && config["gpu_lanes"].is_array()
                   ? static_cast<int>(config["gpu_lanes"].size())
                   : 1;
    }
    shards.push_back(std::move(s));
  }

  // The config: the first started shard's, with the whole range and every shard's lanes.
  json config = json::object();
  json gpu_lanes = json::array();
  const LoadedShard* reference = nullptr;
  for (const auto& s : shards) {
    if (!s.summary.is_object()) continue;
    json c = s.summary.value("config", json::object());
    if (!reference) {
      reference = &s;
      config = c;
    } else if (auto changes = batch::PlanSettingChanges(config, c); !changes.empty()) {
      out.warnings.push_back(fmt::format("shard {} was run with other settings than shard {}: {}", s.shard->index,
                                         reference->shard->index, batch::DescribeChanges(changes)));
    }
    if (c.contains("gpu_lanes") && c["gpu_lanes"].is_array()) {
      for (const auto& g : c["gpu_lanes"]) gpu_lanes.push_back(g);
    }
  }
  config["first"] = manifest->first;
  config["last"] = manifest->last;
  config["gpu_lanes"] = gpu_lanes;
  config.erase("index_offset");

  // Problem folders, the summary's problems, totals, lanes, errors, logs.
  json problems = json::array();
  json totals = json::object();
  json lane_entries = json::array();
  std::vector<json> errors;
  std::vector<std::string> log_lines;
  std::string timeline;
  std::vector<std::string> hosts;
  json failures = json::array();
  double started = 0, updated = 0, finished = 0;
  for (const auto& s : shards) {
    fs::path dir = batch::ShardResultsDir(results, s.shard->index);
    std::map<std::string, json> entries;
    if (s.summary.is_object() && s.summary.contains("problems") && s.summary["problems"].is_array()) {
      for (const auto& p : s.summary["problems"]) {
        if (p.is_object() && p.contains("name") && p["name"].is_string()) entries[p["name"].get<std::string>()] = p;
      }
    }
    for (const auto& name : s.shard->problems) {
      std::error_code ec;
      if (fs::is_directory(dir / name, ec)) CopyProblemFolder(dir / name, results, name);
      json entry = entries.count(name) ? entries[name] : QueuedProblem(name);
      if (s.status.state == "interrupted" && entry.value("phase", "") == "running") {
        entry["phase"] = "queued";  // as the batch itself leaves an interrupted problem
        entry["running"] = json::array();
      }
      problems.push_back(entry);
    }
    if (!s.summary.is_object()) continue;
    AddTotals(totals, s.summary.value("totals", json::object()));
    if (s.summary.contains("lanes") && s.summary["lanes"].is_array()) {
      for (json lane : s.summary["lanes"]) {
        if (!lane.is_object()) continue;
        lane["shard"] = s.shard->index;
        lane_entries.push_back(lane);
      }
    }
    if (s.summary.contains("recent_errors") && s.summary["recent_errors"].is_array()) {
      for (const auto& e : s.summary["recent_errors"]) errors.push_back(e);
    }
    std::string host =
        s.summary.contains("host") && s.summary["host"].is_string() ? s.summary["host"].get<std::string>() : "";
    if (!host.empty() && std::find(hosts.begin(), hosts.end(), host) == hosts.end()) hosts.push_back(host);
    if (s.summary.contains("failure") && s.summary["failure"].is_string()) {
      failures.push_back(fmt::format("shard {}: {}", s.shard->index, s.summary["failure"].get<std::string>()));
    }
    double st = Number(s.summary, "started_at"), up = Number(s.summary, "updated_at");
    if (st > 0 && (started == 0 || st < started)) started = st;
    updated = std::max(updated, up);
    finished = std::max(finished, Number(s.summary, "finished_at"));
    if (auto log = ReadFile(dir / "batch_run.log")) {
      for (const auto& line : SplitLines(*log)) {
        if (line.empty()) continue;
        size_t space = line.find(' ');
        log_lines.push_back(space == std::string::npos ? line
                                                       : fmt::format("{} [shard {}]{}", line.substr(0, space),
                                                                     s.shard->index, line.substr(space)));
      }
    }
    if (auto events = ReadFile(dir / "timeline.jsonl")) {
      for (const auto& line : SplitLines(*events)) {
        json e = json::parse(line, nullptr, false);
        if (!e.is_object()) continue;
        e["shard"] = s.shard->index;
        if (e.contains("lane") && e["lane"].is_number_integer()) e["lane"] = e["lane"].get<int>() + s.lane_offset;
        timeline += batch::JsonText(e, -1) + "\n";
      }
    }
  }
  // The problem counts follow the merged entries (a shard not started has no totals).
  totals["problems"] = problems.size();
  int queued = 0, running = 0;
  for (const auto& p : problems) {
    std::string phase = p.value("phase", "");
    if (phase == "queued") ++queued;
    if (phase == "running") ++running;
  }
  totals["queued"] = queued;
  totals["running"] = running;
  std::sort(errors.begin(), errors.end(),
            [](const json& a, const json& b) { return Number(a, "time") < Number(b, "time"); });
  json recent = json::array();
  for (size_t i = errors.size() > batch::kMaxRecentErrors ? errors.size() - batch::kMaxRecentErrors : 0;
       i < errors.size(); ++i) {
    recent.push_back(errors[i]);
  }
  std::stable_sort(log_lines.begin(), log_lines.end(), [](const std::string& a, const std::string& b) {
    return a.substr(0, a.find(' ')) < b.substr(0, b.find(' '));
  });

  bool all_finished = true, any_running = false;
  json shard_entries = json::array();
  for (const auto& s : shards) {
    all_finished = all_finished && s.status.finished();
    any_running = any_running || s.status.state == "running";
    shard_entries.push_back({{"index", s.shard->index},
                             {"first", s.shard->first},
                             {"last", s.shard->last},
                             {"problems", s.shard->problems.size()},
                             {"state", s.status.state},
                             {"host", s.status.host},
                             {"results", (fs::path("shards") / std::to_string(s.shard->index)).string()}});
    out.shards.push_back(s.status);
  }
  out.state = all_finished ? "finished" : any_running ? "running" : "incomplete";
  out.problems = static_cast<int>(problems.size());

  std::string host_list;
  for (const auto& h : hosts) host_list += (host_list.empty() ? "" : ",") + h;
  std::string failure;
  for (const auto& f : failures) failure += (failure.empty() ? "" : "; ") + f.get<std::string>();
  double now = batch::NowUnix();
  json summary = {
      {"kbrun_version", KBRUN_VERSION},
      {"state", out.state},
      {"failure", failure.empty() ? json(nullptr) : json(failure)},
      // No process of this host runs the merged batch: monitor must not look for one.
      {"pid", 0},
      {"host", host_list},
      {"started_at", started > 0 ? started : now},
      {"updated_at", updated > 0 ? updated : now},
      {"finished_at", all_finished && finished > 0 ? json(finished) : json(nullptr)},
      {"sessions", UnionOfSessions(shards)},
      {"config", config},
      {"llm_outage", nullptr},
      {"lanes", lane_entries},
      {"totals", totals},
      {"problems", problems},
      {"recent_errors", recent},
      {"slurm",
       {{"merged_at", now}, {"job_ids", manifest->JobIds()}, {"shards", shard_entries}, {"warnings", out.warnings}}}};

  std::string log_text;
  for (const auto& line : log_lines) log_text += line + "\n";
  WriteFileAtomic(results / "batch_run.log", log_text);
  WriteFileAtomic(results / "timeline.jsonl", timeline);
  WriteFileAtomic(results / "summary.json", batch::JsonText(summary) + "\n");
  return out;
}

}  // namespace kbrun::report
