#include "cli/remote_batch.h"

#include <fmt/format.h>

#include "cli/commands.h"

namespace kbrun::cli {

void AddRemoteFlags(CLI::App& cmd, RemoteFlags& f) {
  cmd.add_option("--evaluator", f.url,
                 "Evaluate on a kbrun serve service at this URL (e.g. http://gpu-box:8080) instead of here: each "
                 "sample's code is sent there, its result written here (docs/SCALING.md); the token comes from "
                 "--evaluator-token-file or KBRUN_EVALUATOR_TOKEN");
  cmd.add_option("--evaluator-token-file", f.token_file,
                 "File holding the service's bearer token (trimmed); default: the environment variable "
                 "KBRUN_EVALUATOR_TOKEN");
  cmd.add_option("--evaluator-concurrency", f.concurrency, "With --evaluator: evaluations in flight at the service")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd.add_option("--evaluator-retry-window", f.retry_window_s,
                 "With --evaluator: seconds a request that cannot connect, times out or gets a 5xx/429 is retried "
                 "with backoff before its sample is recorded as evaluator_unavailable (evaluated again on resume)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
}

void CheckRemoteFlags(const RemoteFlags& f, const CLI::App& cmd) {
  if (f.url.empty()) {
    for (const char* flag : {"--evaluator-token-file", "--evaluator-concurrency", "--evaluator-retry-window"}) {
      if (cmd.count(flag) > 0) throw CommandError{kExitUsage, fmt::format("{} needs --evaluator URL", flag)};
    }
    return;
  }
  std::vector<std::string> given;
  for (const CLI::Option* option : cmd.get_options()) {
    if (option->count() == 0) continue;
    for (const auto& name : option->get_lnames()) given.push_back("--" + name);
  }
  if (std::string refused = batch::RefuseUnsupportedFlags(given); !refused.empty()) {
    throw CommandError{kExitUsage, refused};
  }
  if (f.url.find("://") == std::string::npos) {
    throw CommandError{kExitUsage,
                       fmt::format("--evaluator {}: expected a URL such as http://host:8080", batch::RedactUrl(f.url))};
  }
}

std::shared_ptr<const batch::RemoteEvaluator> ConnectEvaluator(const RemoteFlags& f) {
  if (f.url.empty()) return nullptr;
  batch::RemoteEvaluatorOptions o;
  o.url = f.url;
  o.retry_window_s = f.retry_window_s;
  try {
    o.token = batch::ReadEvaluatorToken(f.token_file);
  } catch (const std::exception& e) {
    throw CommandError{kExitConfig, e.what()};
  }
  auto remote = std::make_shared<batch::RemoteEvaluator>(o);
  batch::RemoteOutcome check = remote->Check();
  switch (check.failure) {
    case batch::RemoteFailure::kNone:
      break;
    case batch::RemoteFailure::kAuth:
      throw CommandError{kExitEvaluatorAuth, check.message};
    case batch::RemoteFailure::kCancelled:
      throw CommandError{kExitInterrupted, "interrupted"};
    default:
      throw CommandError{kExitUnavailable, fmt::format("--evaluator: {}", check.message)};
  }
  return remote;
}

}  // namespace kbrun::cli
