#include "cli/commands.h"

namespace kbrun::cli {

void RegisterGenerate(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("generate", "(not implemented yet)");
  cmd->callback([exit_code] { *exit_code = kExitInternal; });
}

}  // namespace kbrun::cli
