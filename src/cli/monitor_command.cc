// kbrun monitor: a live view of a batch from its results folder (files only).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "report/monitor.h"
#include "report/report.h"
#include "util/subprocess.h"

namespace kbrun::cli {

void RegisterMonitor(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("monitor", "Watch a running batch: stages, successes, errors, ETA");
  struct Args {
    std::string dir = "results";
    bool once = false;
    double interval = 2.0;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("results", args->dir, "Results folder of kbrun batch")->capture_default_str();
  cmd->add_flag("--once", args->once, "Print one snapshot and exit (for scripts)");
  cmd->add_option("--interval", args->interval, "Seconds between refreshes")
      ->check(CLI::Range(0.2, 3600.0))
      ->capture_default_str();
  cmd->footer(
      "Reads only summary.json, which kbrun batch rewrites atomically on every change: it works on a\n"
      "folder written by another process or machine. Stops when the batch ends.\n\n"
      "Exit codes: 0 the batch ended (or --once printed it); 65 summary.json is damaged (unreadable, not\n"
      "JSON, not a kbrun summary); 66 no such folder, or no summary.json in it; 130 Ctrl-C.");
  cmd->callback([args, exit_code] {
    const bool tty = isatty(STDOUT_FILENO) != 0;
    while (true) {
      report::MonitorView view;
      try {
        view = report::MonitorSnapshot(args->dir);
      } catch (const report::FolderError& e) {
        throw CommandError{e.kind() == report::FolderError::Kind::kMissing ? kExitNoInput : kExitDataError, e.what()};
      }
      // On a terminal, redraw in place; in a pipe, one snapshot after another.
      if (tty && !args->once) fmt::print("\033[H\033[2J");
      fmt::print("{}", view.text);
      std::fflush(stdout);
      if (args->once || view.ended) break;
      auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(args->interval);
      while (std::chrono::steady_clock::now() < until && !CancelRequested()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (CancelRequested()) {
        *exit_code = kExitInterrupted;
        return;
      }
      if (!tty) fmt::print("\n");
    }
    *exit_code = 0;
  });
}

}  // namespace kbrun::cli
