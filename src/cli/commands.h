// Subcommands of the kbrun binary. Each Register* adds one CLI11 subcommand;
// its callback stores the process exit code in *exit_code.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace kbrun::cli {

// Exit codes shared by all commands (eval adds 0/1/2 verdicts, see eval_command.cc).
inline constexpr int kExitUsage = 64;        // bad flag, missing file (EX_USAGE)
inline constexpr int kExitDataError = 65;    // input that is there but damaged (EX_DATAERR)
inline constexpr int kExitNoInput = 66;      // input that is not there (EX_NOINPUT)
inline constexpr int kExitUnavailable = 69;  // a service kbrun needs is down (EX_UNAVAILABLE)
inline constexpr int kExitConfig = 78;       // broken configuration (EX_CONFIG)
inline constexpr int kExitInternal = 70;     // kbrun's own failure (EX_SOFTWARE)
inline constexpr int kExitNoGpuLanes = 71;   // batch: every GPU lane failed its device probe (EX_OSERR)
inline constexpr int kExitIoError = 74;      // a file could not be written (EX_IOERR)
inline constexpr int kExitTempFail = 75;     // batch --slurm-wait: shards left unfinished; resubmit (EX_TEMPFAIL)
inline constexpr int kExitInterrupted = 130;

void RegisterEval(CLI::App& app, int* exit_code);
void RegisterGenerate(CLI::App& app, int* exit_code);
void RegisterBatch(CLI::App& app, int* exit_code);
void RegisterReport(CLI::App& app, int* exit_code);
void RegisterMonitor(CLI::App& app, int* exit_code);
void RegisterExport(CLI::App& app, int* exit_code);
void RegisterCompare(CLI::App& app, int* exit_code);
void RegisterServe(CLI::App& app, int* exit_code);
void RegisterMerge(CLI::App& app, int* exit_code);

// The process's argv as main() got it (batch --slurm hands the same flags to its tasks).
void SetCommandLine(int argc, char** argv);
const std::vector<std::string>& CommandLine();

// Thrown by command code for a one-line error with an exit code (no traceback, no usage dump).
struct CommandError {
  int exit_code;
  std::string message;
};

}  // namespace kbrun::cli
