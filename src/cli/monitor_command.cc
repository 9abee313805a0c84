#include "cli/commands.h"

namespace kbrun::cli {

void RegisterMonitor(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("monitor", "(not implemented yet)");
  cmd->callback([exit_code] { *exit_code = kExitInternal; });
}

}  // namespace kbrun::cli
