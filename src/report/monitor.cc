#include "report/monitor.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <fmt/format.h>

#include "batch/clock.h"
#include "batch/results_store.h"
#include "batch/shards.h"
#include "report/report.h"
#include "report/text_table.h"
#include "util/text.h"

namespace kbrun::report {

using nlohmann::json;

namespace {

double Num(const json& j, const char* key, double fallback = 0) {
  return j.is_object() && j.contains(key) && j[key].is_number() ? j[key].get<double>() : fallback;
}

std::string ClockTime(double unix_seconds) {
  std::string iso = batch::IsoTime(unix_seconds);  // 2026-11-24T20:31:23.123Z
  return iso.substr(11, 8);
}

bool ProcessGone(long long pid) { return pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

// Problems finished per second in the current session, projected over what is left.
std::string Eta(const json& summary, double now, int remaining) {
  if (remaining == 0) return "0 s";
  double session_start = Num(summary, "started_at", now);
  int finished = 0;
  for (const auto& p : summary.value("problems", json::array())) {
    if (Num(p, "finished_at") > session_start) ++finished;
  }
  if (finished == 0 || now <= session_start) return "unknown (no problem finished yet in this session)";
  double rate = finished / (now - session_start);
  return "~" + FormatDuration(remaining / rate);
}

}  // namespace

MonitorView RenderMonitor(const json& s, double now, const std::string& local_host) {
  MonitorView view;
  std::string state = s.value("state", "unknown");
  long long pid = s.value("pid", 0LL);
  std::string host = s.value("host", "");
  bool dead = state == "running" && host == local_host && ProcessGone(pid);
  view.ended = state != "running" || dead;

  const json totals = s.value("totals", json::object());
  const json config = s.value("config", json::object());
  int problems = totals.value("problems", 0), solved = totals.value("solved", 0),
      unsolved = totals.value("unsolved", 0), running = totals.value("running", 0), queued = totals.value("queued", 0);
  double started = Num(s, "started_at", now), updated = Num(s, "updated_at", now);

  std::string& out = view.text;
  // Elapsed over every session of the batch: a resumed batch counts its earlier runs too.
  double elapsed = 0;
  bool elapsed_known = true;
  for (const auto& session : s.value("sessions", json::array())) {
    if (!session.is_object() || !session["started_at"].is_number()) {
      elapsed_known = false;  // lost with a damaged summary.json
      continue;
    }
    double end = session["ended_at"].is_number() ? session["ended_at"].get<double>() : (view.ended ? updated : now);
    elapsed += std::max(0.0, end - Num(session, "started_at", end));
  }
  if (elapsed == 0) elapsed = (view.ended ? updated : now) - started;
  out += fmt::format("kbrun batch: {} (pid {} on {}), elapsed {}", state, pid, host,
                     elapsed_known ? FormatDuration(elapsed)
                                   : FormatDuration(elapsed) + " + unknown (earlier sessions' times were lost)");
  out += view.ended ? "\n" : fmt::format(", updated {} ago\n", FormatDuration(std::max(0.0, now - updated)));
  if (dead) {
    out += "  the batch process is gone (killed or crashed): run the same kbrun batch command to resume\n";
  }
  if (s.contains("failure") && s["failure"].is_string()) out += "  failure: " + s["failure"].get<std::string>() + "\n";
  if (s.contains("llm_outage") && s["llm_outage"].is_object()) {
    const json& o = s["llm_outage"];
    out += fmt::format("  LLM unreachable since {} ({} calls in a row could not connect): LLM calls paused",
                       ClockTime(Num(o, "since")), o.value("consecutive_failures", 0));
    if (o["next_try_at"].is_number() && state == "running") {
      out += fmt::format(", next try in {}, giving up at {}",
                         FormatDuration(std::max(0.0, Num(o, "next_try_at") - now)), ClockTime(Num(o, "gives_up_at")));
    }
    out += "\n    last error: " + o.value("last_error", std::string("?")) + "\n";
  }
  // Lanes retired after their device failed a probe (docs/RESULTS.md "Lane failures").
  if (s.contains("lanes") && s["lanes"].is_array()) {
    int active = 0;
    for (const auto& lane : s["lanes"]) {
      if (lane.is_object() && lane.value("state", "") != "retired") ++active;
    }
    for (const auto& lane : s["lanes"]) {
      if (!lane.is_object() || lane.value("state", "") != "retired") continue;
      out += fmt::format("  GPU lane {} retired at {}: its device failed the probe ({}) after {}; {} lane(s) left\n",
                         lane.value("gpu", -1), ClockTime(Num(lane, "retired_at")),
                         lane["probe"].is_string() ? lane["probe"].get<std::string>() : "?",
                         lane["reason"].is_string() ? lane["reason"].get<std::string>() : "?", active);
    }
  }
  out += fmt::format("  {} provider, model {}, {} attempts x {} samples, target {:.2f}x\n",
                     config.value("provider", "?"), config.value("model", "?"), config.value("attempts", 0),
                     config.value("samples", 0), config.value("target_speedup", 1.0));
  out += fmt::format("Problems  {} done ({} solved, {} unsolved), {} running, {} queued, of {}", solved + unsolved,
                     solved, unsolved, running, queued, problems);
  if (state == "running" && !dead) out += "; ETA " + Eta(s, now, problems - solved - unsolved);
  out += "\n";
  std::string by_status;
  const json by_status_counts = totals.value("by_status", json::object());
  for (const auto& [status, n] : by_status_counts.items()) {
    by_status += fmt::format("{}{} {}", by_status.empty() ? "" : ", ", n.get<int>(), status);
  }
  out += fmt::format("Samples   {} finished{}{}; {} successes\n", totals.value("samples", 0),
                     by_status.empty() ? "" : ": ", by_status, totals.value("successes", 0));
  std::string in_flight;
  const json in_flight_counts = totals.value("in_flight", json::object());
  for (const auto& [stage, n] : in_flight_counts.items()) {
    in_flight += fmt::format("{}{} {}", in_flight.empty() ? "" : ", ", stage, n.get<int>());
  }
  out += "In flight " + (in_flight.empty() ? std::string("none") : in_flight) + "\n";
  out += fmt::format("Tokens    {} prompt + {} completion\n", totals.value("prompt_tokens", 0LL),
                     totals.value("completion_tokens", 0LL));

  TextTable active({"Running", "Attempt", "Samples in flight (stage, time in it)"});
  TextTable best({"Problem", "State", "Best", "Speedup", "Attempts", "Samples"},
                 {TextTable::Align::kLeft, TextTable::Align::kLeft, TextTable::Align::kLeft, TextTable::Align::kRight,
                  TextTable::Align::kRight, TextTable::Align::kRight});
  for (const auto& p : s.value("problems", json::array())) {
    std::string name = p.value("name", "");
    const json running_samples = p.value("running", json::array());
    if (!running_samples.empty()) {
      std::string samples;
      for (const auto& r : running_samples) {
        samples += fmt::format("{}#{} {} {}", samples.empty() ? "" : ", ", r.value("index", 0), r.value("stage", "?"),
                               FormatDuration(std::max(0.0, now - Num(r, "since", now))));
      }
      active.AddRow({name, std::to_string(p.value("attempt", 0)), samples});
    }
    const json b = p.value("best", json(nullptr));
    if (b.is_object()) {
      best.AddRow({name, p.value("phase", ""), fmt::format("#{} {}", b.value("index", 0), b.value("status", "")),
                   b["speedup"].is_number() ? fmt::format("{:.3f}x", b["speedup"].get<double>()) : "-",
                   std::to_string(p.value("attempts_used", 0)), std::to_string(p.value("samples_done", 0))});
    }
  }
  if (!active.empty()) out += "\n" + active.Render();
  if (!best.empty()) out += "\n" + best.Render();
  const json errors = s.value("recent_errors", json::array());
  if (!errors.empty()) {
    out += "\nRecent errors\n";
    for (const auto& e : errors) {
      out += fmt::format("  {} {} #{} {}: {}\n", ClockTime(Num(e, "time")), e.value("problem", ""), e.value("index", 0),
                         e.value("status", ""), e.value("message", ""));
    }
  }
  return view;
}

MonitorView MonitorSnapshot(const fs::path& results_dir) {
  std::error_code ec;
  if (!fs::is_directory(results_dir, ec)) {
    throw FolderError(FolderError::Kind::kMissing, fmt::format("no such results folder: {}", results_dir.string()));
  }
  batch::ResultsStore store(results_dir);
  batch::ResultsStore::SummaryFile summary = store.LoadSummary();
  using State = batch::ResultsStore::SummaryFile::State;
  if (summary.state == State::kMissing && fs::exists(batch::ManifestPath(results_dir), ec)) {
    throw FolderError(FolderError::Kind::kMissing,
                      fmt::format("{} holds a Slurm run whose shards are not merged yet: kbrun monitor {}/shards/N "
                                  "watches shard N; kbrun batch ... --slurm-wait follows them all; kbrun merge {} "
                                  "joins them",
                                  results_dir.string(), results_dir.string(), results_dir.string()));
  }
  if (summary.state == State::kMissing) {
    throw FolderError(FolderError::Kind::kMissing,
                      fmt::format("no summary.json in {}: no kbrun batch has run there (a batch writes it "
                                  "within a second of starting)",
                                  results_dir.string()));
  }
  if (summary.state == State::kDamaged) {
    throw FolderError(FolderError::Kind::kDamaged, fmt::format("{} {}", store.SummaryPath().string(), summary.problem));
  }
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  try {
    return RenderMonitor(summary.doc, batch::NowUnix(), host);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type: hand-edited, or written by something else.
    throw FolderError(FolderError::Kind::kDamaged,
                      fmt::format("{} is not a kbrun summary: {}", store.SummaryPath().string(), e.what()));
  }
}

}  // namespace kbrun::report
