// kbrun serve: a long-running evaluation service over HTTP (docs/SERVE.md).
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "batch/capacity.h"
#include "cli/commands.h"
#include "cli/eval_flags.h"
#include "eval/backend.h"
#include "eval/python_env.h"
#include "serve/server.h"
#include "serve/service.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::cli {

void RegisterServe(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("serve", "Evaluate candidates submitted over HTTP (docs/SERVE.md)");
  struct Args {
    std::string listen, token_file, state_dir;
    std::vector<int> gpus;
    int compile_pool = 0;
    size_t max_body_bytes = 1 << 20;
    size_t max_queued = 64;
    double target_speedup = 1.0;
    std::string run_ahead = "auto", build_warmup = "auto";
    EvalFlags eval;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--listen", args->listen, "HOST:PORT to listen on, e.g. 127.0.0.1:8080")->required();
  cmd->add_option("--token-file", args->token_file,
                  "File holding the bearer token every request must send (trimmed; must not be empty)")
      ->required();
  cmd->add_option("--state-dir", args->state_dir,
                  "Folder of every accepted evaluation (<id>/problem.py, code.py, request.json, result.json); "
                  "reloaded on start")
      ->required();
  cmd->add_option("--gpus", args->gpus, "GPU lanes, comma-separated (default: --gpu; one lane on the CPU)")
      ->delimiter(',');
  AddRunAheadFlag(*cmd, args->run_ahead);
  AddBuildWarmupFlag(*cmd, args->build_warmup, "when the service starts, beside its first requests");
  cmd->add_option("--compile-pool", args->compile_pool, "Compile threads (0: number of cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", args->max_body_bytes, "Largest request body accepted (413 beyond)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--max-queued", args->max_queued,
                  "Most evaluations accepted and not done (queued or running) at once (429 beyond)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--target-speedup", args->target_speedup,
                  "Default of the per-evaluation target_speedup (the answer's meets_target)")
      ->capture_default_str();
  AddEvalFlags(*cmd, args->eval);
  cmd->footer(
      "Stops on SIGINT/SIGTERM (exit 0): evaluations not done stay in the state dir and are evaluated on the\n"
      "next start. Exit codes: 0 stopped; 64 usage error (bad --listen, unreadable or empty token file, state\n"
      "dir not writable); 69 cannot listen on the address; 78 no usable Python/torch.\n\n" +
      EnvOptionsHelp("serve"));
  cmd->callback([args, exit_code] {
    serve::ServerOptions so;
    size_t colon = args->listen.rfind(':');
    int port = -1;
    if (colon != std::string::npos && colon > 0) {
      try {
        size_t used = 0;
        port = std::stoi(args->listen.substr(colon + 1), &used);
        if (used != args->listen.size() - colon - 1) port = -1;
      } catch (const std::exception&) {
        port = -1;
      }
    }
    if (port < 1 || port > 65535) {
      throw CommandError{kExitUsage, fmt::format("--listen: expected HOST:PORT, got '{}'", args->listen)};
    }
    so.host = args->listen.substr(0, colon);
    so.port = port;
    so.max_body_bytes = args->max_body_bytes;
    auto token = ReadFile(args->token_file);
    if (!token) throw CommandError{kExitUsage, fmt::format("--token-file: cannot read {}", args->token_file)};
    so.token = Trim(*token);
    if (so.token.empty()) throw CommandError{kExitUsage, fmt::format("--token-file: {} is empty", args->token_file)};

    serve::ServiceOptions o;
    o.state_dir = args->state_dir;
    o.eval = ToEvalOptions(args->eval);
    o.target_speedup = args->target_speedup;
    o.compile_pool = args->compile_pool;
    o.max_pending = args->max_queued;
    o.lanes = batch::ResolveServeLanes(args->gpus, o.eval.gpu_index, o.eval.device == "cpu");
    try {
      const eval::PythonEnv& py = eval::DiscoverPython(o.eval.python);
      o.eval.backend = eval::ResolveBackend(o.eval.backend, py.hip_version);
      bool on_gpu = o.eval.device == "cuda" || (o.eval.device == "auto" && py.gpu_available);
      o.run_ahead = ResolveRunAhead(args->run_ahead, on_gpu);
      std::string warmup_warning;
      o.build_warmup = ResolveBuildWarmup(args->build_warmup, on_gpu, false, o.eval, warmup_warning);
      if (!warmup_warning.empty()) fmt::print(stderr, "kbrun: warning: {}\n", warmup_warning);
    } catch (const std::exception& e) {
      throw CommandError{kExitConfig, e.what()};
    }
    serve::EvalService service(o);
    try {
      service.Start();
    } catch (const std::exception& e) {
      throw CommandError{kExitUsage, fmt::format("--state-dir {}: {}", args->state_dir, e.what())};
    }
    std::string err = serve::Serve(service, so, [] { return CancelRequested(); });
    if (!err.empty()) {
      RequestCancel();  // the lanes may have started reloaded evaluations: stop them unrecorded
      service.Stop();
      throw CommandError{kExitUnavailable, err};
    }
    fmt::print(stderr, "kbrun serve: stopping\n");
    RequestCancel();
    service.Stop();
    *exit_code = 0;
  });
}

}  // namespace kbrun::cli
