// kbrun: ask an LLM for GPU kernels, evaluate them honestly, keep the best.
#include <sys/prctl.h>

#include <csignal>
#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "cli/commands.h"
#include "util/subprocess.h"

namespace kbrun::cli {
namespace {
std::vector<std::string> command_line;
}  // namespace
void SetCommandLine(int argc, char** argv) { command_line.assign(argv, argv + argc); }
const std::vector<std::string>& CommandLine() { return command_line; }
}  // namespace kbrun::cli

namespace {
extern "C" void OnInterrupt(int) {
  // Second Ctrl-C: leave at once.
  if (kbrun::CancelRequested()) std::_Exit(kbrun::cli::kExitInterrupted);
  kbrun::RequestCancel();
}
}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  std::signal(SIGPIPE, SIG_IGN);
  // kbrun holds the API key: a process of the same user without CAP_SYS_PTRACE (a sandboxed
  // candidate) may then not read its /proc/<pid>/environ or memory.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

  CLI::App app{
      "kbrun: generate GPU kernels with an LLM, evaluate them honestly, keep the best.\n"
      "Run 'kbrun COMMAND --help' for a command's flags and environment variables."};
  app.set_version_flag("--version", std::string("kbrun ") + KBRUN_VERSION);
  app.require_subcommand(1);
  int exit_code = 0;
  kbrun::cli::RegisterEval(app, &exit_code);
  kbrun::cli::RegisterGenerate(app, &exit_code);
  kbrun::cli::RegisterBatch(app, &exit_code);
  kbrun::cli::RegisterReport(app, &exit_code);
  kbrun::cli::RegisterMonitor(app, &exit_code);
  kbrun::cli::RegisterExport(app, &exit_code);
  kbrun::cli::RegisterCompare(app, &exit_code);
  kbrun::cli::RegisterServe(app, &exit_code);
  kbrun::cli::RegisterMerge(app, &exit_code);
  // `kbrun COMMAND --version` as well as `kbrun --version`.
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    sub->set_version_flag("--version", std::string("kbrun ") + KBRUN_VERSION);
  }
  kbrun::cli::SetCommandLine(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "kbrun: {}\n", e.what());
    return kbrun::cli::kExitUsage;
  } catch (const kbrun::cli::CommandError& e) {
    fmt::print(stderr, "kbrun: {}\n", e.message);
    return e.exit_code;
  } catch (const std::exception& e) {
    fmt::print(stderr, "kbrun: internal error: {}\n", e.what());
    return kbrun::cli::kExitInternal;
  }
  return exit_code;
}
