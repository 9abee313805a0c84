// `kbrun monitor`: a live view of a batch, from its files only (summary.json,
// which the batch rewrites atomically on every change), so it works on a results
// folder written by another process, or by another machine on a shared filesystem.
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace kbrun::report {

namespace fs = std::filesystem;

struct MonitorView {
  std::string text;
  bool ended = false;  // the batch finished, failed, was interrupted, or its process is gone
};

// One snapshot from a parsed summary.json. `now` in Unix seconds; `local_host` is this
// machine's name: a "running" batch on this host whose pid is gone is reported as dead.
MonitorView RenderMonitor(const nlohmann::json& summary, double now, const std::string& local_host);

// Reads <results_dir>/summary.json and renders it. Throws FolderError (report.h) when the
// folder or its summary.json is missing, or the summary is damaged (unreadable, not JSON,
// not a kbrun summary): summary.json is written atomically, so none of these goes away by waiting.
MonitorView MonitorSnapshot(const fs::path& results_dir);

}  // namespace kbrun::report
