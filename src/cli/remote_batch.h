// kbrun batch --evaluator URL (docs/SCALING.md "A remote evaluator"): the flags, and the
// checks made before the batch starts (flags the service cannot honour, the token, one
// authenticated request). The client itself is batch/remote_evaluator.h.
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "batch/remote_evaluator.h"

namespace kbrun::cli {

// 401/403 from the evaluation service (EX_NOPERM).
inline constexpr int kExitEvaluatorAuth = 77;

struct RemoteFlags {
  std::string url, token_file;
  int concurrency = 8;
  double retry_window_s = 120;
};

void AddRemoteFlags(CLI::App& cmd, RemoteFlags& f);

// Usage checks, before anything else: the --evaluator-* flags need --evaluator, and with it the
// flags of `cmd` that a service cannot honour are refused. Throws CommandError (exit 64).
void CheckRemoteFlags(const RemoteFlags& f, const CLI::App& cmd);

// Null without --evaluator. Else reads the token (exit 78 when there is none) and asks the
// service once (77 when it refuses the token, 69 when it cannot be reached): throws CommandError.
std::shared_ptr<const batch::RemoteEvaluator> ConnectEvaluator(const RemoteFlags& f);

}  // namespace kbrun::cli
