// kbrun batch: many problems, several attempts of several samples each, pipelined
// over LLM calls, a compile pool and GPU lanes; resumable; writes the report at the end.
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include "batch/capacity.h"
#include "batch/lane_cost.h"
#include "batch/problem_set.h"
#include "batch/prompt_builder.h"
#include "batch/scheduler.h"
#include "batch/shards.h"
#include "cli/commands.h"
#include "cli/eval_flags.h"
#include "cli/generation_flags.h"
#include "cli/remote_batch.h"
#include "cli/slurm_batch.h"
#include "eval/backend.h"
#include "eval/python_env.h"
#include "prompts/prompt_vars.h"
#include "report/report.h"
#include "util/env_options.h"
#include "util/subprocess.h"
#include "util/text.h"

namespace kbrun::cli {
namespace {

struct BatchArgs {
  int first = 1, last = 40, level = 0;  // level 0: not given
  std::string problems_dir, results = "results", gpus, replay_dir, gpu_name, schedule = "pipelined";
  int attempts = 3, llm_concurrency = 8;
  std::optional<int> samples;
  double target_speedup = 1.0;
  bool quiet = false, no_report = false, reconfigure = false;
  std::string run_ahead = "auto", build_warmup = "auto";
  int llm_outage_after = 5;
  double llm_outage_timeout_s = 600;
  // Slurm (docs/SCALING.md): submit shards as a job array, or (--slurm-shard) run one.
  bool slurm = false, slurm_wait = false;
  std::string slurm_opts;
  int slurm_tasks = 0;
  double slurm_poll_s = 15;
  std::optional<int> slurm_shard;
  EvalFlags eval;
  RemoteFlags remote;  // --evaluator: evaluate on a kbrun serve service (cli/remote_batch.h)
  LlmFlags llm;
  PromptFlags prompts;
};

int SamplesFromEnvironment() {
  std::optional<std::string> env = GetEnvOption("NUM_SAMPLES");
  if (!env) return 3;
  try {
    size_t used = 0;
    int n = std::stoi(*env, &used);
    if (used == env->size() && n >= 1) return n;
  } catch (const std::exception&) {}
  throw CommandError{kExitConfig, fmt::format("NUM_SAMPLES: expected a positive integer, not '{}'", *env)};
}

void Run(BatchArgs& a, const CLI::App& cmd, int* exit_code) {
  bool gpu_flag_given = cmd.count("--gpu") > 0;
  // Flags a remote evaluator cannot honour are refused before anything else.
  CheckRemoteFlags(a.remote, cmd);
  // Problems first: a typo in a path should not cost a Python probe.
  if (a.problems_dir.empty()) {
    if (auto env = GetEnvOption("KERNELBENCH_DIR")) a.problems_dir = *env;
  }
  if (a.problems_dir.empty()) {
    throw CommandError{kExitUsage, "no problems: set KERNELBENCH_DIR or pass --problems-dir"};
  }
  fs::path problems_dir;
  try {
    problems_dir = batch::ResolveProblemsDir(a.problems_dir, a.level);
  } catch (const std::invalid_argument& e) {
    throw CommandError{kExitUsage, fmt::format("--level {}: {}", a.level, e.what())};
  }
  if (!fs::is_directory(problems_dir)) {
    throw CommandError{kExitUsage, "--problems-dir: no such folder: " + a.problems_dir};
  }
  // A task of a Slurm array runs its shard of the run the manifest describes.
  fs::path results_dir = a.results;
  std::optional<batch::Shard> shard;
  size_t shard_count = 0;
  if (a.slurm_shard) {
    std::optional<batch::ShardManifest> manifest;
    try {
      manifest = batch::LoadManifest(a.results);
    } catch (const std::exception& e) {
      throw CommandError{kExitConfig, fmt::format("--slurm-shard: {}", e.what())};
    }
    if (!manifest) {
      throw CommandError{kExitConfig, fmt::format("--slurm-shard: {} is missing: shards are started by kbrun batch "
                                                  "--slurm",
                                                  batch::ManifestPath(a.results).string())};
    }
    const batch::Shard* s = manifest->Find(*a.slurm_shard);
    if (!s) {
      throw CommandError{kExitUsage, fmt::format("--slurm-shard {}: {} has shards 0..{}", *a.slurm_shard,
                                                 batch::ManifestPath(a.results).string(), manifest->shards.size() - 1)};
    }
    shard = *s;
    shard_count = manifest->shards.size();
    a.first = s->first;
    a.last = s->last;
    results_dir = batch::ShardResultsDir(a.results, s->index);
  } else if (!a.slurm && fs::exists(batch::ManifestPath(a.results))) {
    throw CommandError{kExitUsage, fmt::format("{} holds a Slurm run ({}): resume it with kbrun batch --slurm, join "
                                               "its shards with kbrun merge, or use another --results folder",
                                               a.results, batch::ManifestPath(a.results).string())};
  }
  auto problems = batch::ListProblems(problems_dir, a.first, a.last);
  if (shard) {
    std::vector<std::string> names;
    for (const auto& p : problems) names.push_back(p.name);
    if (names != shard->problems) {
      throw CommandError{kExitConfig, fmt::format("--slurm-shard {}: {} no longer holds the shard's problems {}..{} "
                                                  "as they were when it was submitted",
                                                  shard->index, problems_dir.string(), shard->first, shard->last)};
    }
  }
  if (problems.empty()) {
    throw CommandError{kExitUsage, fmt::format("no problems numbered {}..{} (files N_Name.py) in {}", a.first, a.last,
                                               problems_dir.string())};
  }

  // The LLM next: a missing key fails here, before any work is done.
  if (!a.replay_dir.empty() && !a.llm.replay) a.llm.replay = a.replay_dir;
  llm::ProviderConfig llm_config = ResolveLlmConfig(a.llm, ResolvePromptsDir(a.prompts));
  std::unique_ptr<llm::Provider> provider;
  try {
    provider = llm::MakeProvider(llm_config);
  } catch (const llm::LlmError& e) {
    std::string fix = e.kind() == llm::LlmErrorKind::kNoKey
                          ? "\nSet LLM_GATEWAY_KEY (or use --provider replay --replay-dir DIR to run without an LLM)."
                          : "";
    throw CommandError{kExitConfig, fmt::format("{}{}", e.what(), fix)};
  } catch (const std::invalid_argument& e) {
    throw CommandError{kExitConfig, e.what()};
  }
  // --evaluator: the service compiles and runs; this host needs neither torch nor a GPU.
  std::shared_ptr<const batch::RemoteEvaluator> remote = ConnectEvaluator(a.remote);
  // The submitting host needs Slurm, not torch: each task checks its own Python and backend.
  if (a.slurm && !a.slurm_shard) {
    SlurmSubmitOptions s;
    s.results = a.results;
    s.problems_dir = problems_dir;
    s.first = a.first;
    s.last = a.last;
    s.opts = a.slurm_opts;
    s.tasks = a.slurm_tasks;
    s.wait = a.slurm_wait;
    s.poll_s = a.slurm_poll_s;
    s.compile_cache = a.eval.compile_cache;
    s.no_compile_cache = a.eval.no_compile_cache;
    s.quiet = a.quiet;
    *exit_code = SubmitSlurmBatch(s, problems);
    return;
  }
  // The backend picks the prompt set, so "auto" is decided first (from torch's build), and a
  // kittens backend without its library stops here rather than failing every sample.
  const eval::PythonEnv no_python;  // --evaluator: none needed here
  const eval::PythonEnv* py = &no_python;
  // (--evaluator: the service compiles with its own backend; "auto" picks the prompts as generate does.)
  if (remote) a.eval.backend = prompts::ResolveBackendForPrompts(a.eval.backend);
  try {
    if (!remote) {
      py = &eval::DiscoverPython(a.eval.python);
      a.eval.backend = eval::ResolveBackend(a.eval.backend, py->hip_version);
    }
    eval::BackendFlags flags = remote ? eval::BackendFlags{} : eval::BackendFlagsFor(ToEvalOptions(a.eval), *py);
    if (!flags.not_configured.empty()) {
      throw std::runtime_error("--backend " + a.eval.backend + ": " + flags.not_configured);
    }
  } catch (const std::exception& e) {
    throw CommandError{kExitConfig, e.what()};
  }
  prompts::PromptConfig prompt_config = LoadPromptConfig(a.prompts, a.eval.backend);
  // (--evaluator: on the service's device, a GPU in the prompts.)
  bool on_gpu = remote || a.eval.device == "cuda" || (a.eval.device == "auto" && py->gpu_available);

  batch::BatchOptions o;
  o.problems_dir = problems_dir;
  o.results_dir = results_dir;
  o.first = a.first;
  o.last = a.last;
  o.attempts = a.attempts;
  o.samples = a.samples ? *a.samples : SamplesFromEnvironment();
  o.target_speedup = a.target_speedup;
  o.llm_concurrency = a.llm_concurrency;
  // In batch, --compile-jobs sizes the pool of parallel compiles; each build then
  // gets its share of the cores as MAX_JOBS (batch/capacity.h); with --evaluator the pool is
  // the evaluations in flight.
  const batch::CompilePool pool = batch::ResolveCompilePool(a.eval.compile_jobs);
  o.compile_pool = remote ? a.remote.concurrency : pool.compiles;
  try {
    if (!remote) {
      o.gpu_lanes = batch::ResolveLanes({a.gpus, gpu_flag_given ? std::optional<int>(a.eval.gpu) : std::nullopt, on_gpu,
                                         GetEnvOption("CUDA_VISIBLE_DEVICES").value_or(""), py->gpu_names.size()});
    }
  } catch (const std::invalid_argument& e) {
    throw CommandError{kExitUsage, e.what()};
  }
  o.remote = remote;
  o.schedule = a.schedule == "by-problem" ? batch::Schedule::kByProblem : batch::Schedule::kPipelined;
  o.eval = ToEvalOptions(a.eval);
  o.eval.python = py->interpreter;
  o.eval.compile_jobs = pool.jobs_per_build;
  o.provider_name = llm_config.provider;
  o.model = llm_config.provider == "replay" ? llm_config.replay_source.string() : llm_config.model;
  o.progress_bar = isatty(STDERR_FILENO) != 0;
  o.quiet = a.quiet;
  o.run_ahead = ResolveRunAhead(a.run_ahead, on_gpu);
  std::string warmup_warning;
  o.build_warmup = ResolveBuildWarmup(a.build_warmup, on_gpu, remote != nullptr, o.eval, warmup_warning);
  if (!warmup_warning.empty()) fmt::print(stderr, "kbrun: warning: {}\n", warmup_warning);
  o.prompts_dir = ResolvePromptsDir(a.prompts);
  o.temperature = llm_config.temperature;
  o.max_tokens = llm_config.max_tokens;
  o.reasoning_effort = llm_config.reasoning_effort;
  o.reconfigure = a.reconfigure;
  o.llm_outage_after = a.llm_outage_after;
  o.llm_outage_timeout_s = a.llm_outage_timeout_s;

  batch::PromptContext context;
  context.backend = a.eval.backend;
  context.precision = a.eval.precision;
  context.gpu_name = !a.gpu_name.empty()                ? a.gpu_name
                     : on_gpu && !py->gpu_names.empty() ? py->gpu_names[0]
                                                        : prompts::DetectGpuName(a.eval.backend);
  batch::PromptBuilder builder(std::move(prompt_config), context);

  if (!a.quiet && shard) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    fmt::print(stderr, "kbrun batch: Slurm shard {} of {} (problems {}..{}) on {}\n", shard->index, shard_count,
               shard->first, shard->last, host);
  }
  if (!a.quiet) {
    std::string where = remote ? "evaluated by " + remote->display_url()
                               : fmt::format("{} lane(s) on {}", o.gpu_lanes.size(), on_gpu ? "GPU" : "CPU");
    fmt::print(stderr, "kbrun batch: {} problems from {}, results in {} ({} attempts x {} samples; {})\n",
               problems.size(), problems_dir.string(), o.results_dir.string(), o.attempts, o.samples, where);
  }
  batch::BatchOutcome out = batch::RunBatch(o, problems, *provider, builder);
  if (out.refused) {
    throw CommandError{out.settings_changed ? kExitUsage : kExitConfig, out.failure};
  }

  if (!a.no_report) {
    try {
      report::WriteOptions options;
      options.html_path = o.results_dir / "detailed_report.html";
      report::Report r = report::WriteReport(o.results_dir, nullptr, options);
      if (!a.quiet) fmt::print("{}", report::ReportText(r));
    } catch (const std::exception& e) {
      fmt::print(stderr, "kbrun: warning: cannot write the report: {}\n", e.what());
    }
  }
  if (out.interrupted) {
    fmt::print(stderr, "kbrun: interrupted; state saved in {}: run the same command to resume\n",
               o.results_dir.string());
    *exit_code = kExitInterrupted;
  } else if (out.llm_unavailable) {
    throw CommandError{kExitUnavailable, out.failure};
  } else if (out.no_gpu_lanes) {
    throw CommandError{kExitNoGpuLanes, out.failure};
  } else if (out.evaluator_auth) {
    throw CommandError{kExitEvaluatorAuth, out.failure};
  } else if (out.evaluator_unavailable) {
    throw CommandError{kExitUnavailable, out.failure};
  } else if (!out.failure.empty()) {
    throw CommandError{out.config_failure ? kExitConfig : kExitInternal, out.failure};
  } else {
    if (!a.quiet) {
      fmt::print(stderr, "kbrun batch: {} of {} problems solved ({} samples, {} LLM calls in this run, {})\n",
                 out.solved, out.problems, out.samples, out.llm_calls, FormatDuration(out.wall_s));
      if (out.lane_cost)
        fmt::print(stderr, "kbrun batch: GPU lanes in this run: {}\n", batch::LaneCostText(*out.lane_cost));
    }
    *exit_code = 0;
  }
}

}  // namespace

void RegisterBatch(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand(
      "batch", "Generate, evaluate and improve kernels for a range of KernelBench problems (resumable)");
  auto args = std::make_shared<BatchArgs>();
  cmd->add_option("first", args->first, "First problem number")->capture_default_str();
  cmd->add_option("last", args->last, "Last problem number")->capture_default_str();
  cmd->add_option("--problems-dir", args->problems_dir,
                  "Folder of N_Name.py problems (env KERNELBENCH_DIR; a KernelBench checkout works too)");
  cmd->add_option("--level", args->level,
                  "KernelBench level (1-3) when --problems-dir is a KernelBench checkout or one of its levelN "
                  "folders (default: the folder's own problems, else level1)")
      ->check(CLI::Range(1, 99));
  cmd->add_option("--results", args->results, "Results folder (docs/RESULTS.md)")->capture_default_str();
  cmd->add_option("--attempts", args->attempts, "Attempts per problem (each after the first is a reflection)")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd->add_option("--samples", args->samples, "Samples per attempt, generated in parallel (env NUM_SAMPLES; default 3)")
      ->check(CLI::Range(1, 100));
  cmd->add_option("--target-speedup", args->target_speedup,
                  "A problem is solved by a correct sample at least this fast")
      ->capture_default_str();
  cmd->add_option("--llm-concurrency", args->llm_concurrency, "LLM calls in flight")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--schedule", args->schedule,
                  "pipelined: every problem in flight at once; by-problem: the next problem starts when the "
                  "previous one is finished (its samples still in parallel), for comparison")
      ->check(CLI::IsMember({"pipelined", "by-problem"}))
      ->capture_default_str();
  cmd->add_option("--gpus", args->gpus, "GPU lanes for timing, e.g. 0,1 (default: every visible GPU)");
  AddRunAheadFlag(*cmd, args->run_ahead);
  AddBuildWarmupFlag(*cmd, args->build_warmup, "at the start, beside the first LLM calls");
  cmd->add_option("--gpu-name", args->gpu_name, "GPU named in prompts (default: the first lane's)");
  cmd->add_option("--replay-dir", args->replay_dir,
                  "Same as --replay: a folder of responses (implies --provider replay)");
  cmd->add_flag("--quiet,-q", args->quiet, "No progress on stderr and no report on stdout");
  cmd->add_flag("--no-report", args->no_report, "Do not write detailed_report.{txt,json,html} at the end");
  cmd->add_flag("--reconfigure", args->reconfigure,
                "Resume a folder whose settings differ (samples, attempts, target speedup, model, backend...): "
                "record the new ones and go on; without it such a resume is refused (exit 64)");
  cmd->add_option("--llm-outage-after", args->llm_outage_after,
                  "After this many LLM calls in a row could not connect, pause LLM calls and retry with backoff")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--llm-outage-timeout", args->llm_outage_timeout_s,
                  "Seconds a paused LLM stage keeps retrying before the batch stops as llm_unavailable (exit 69)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  cmd->add_flag("--slurm", args->slurm,
                "Run on a Slurm cluster: submit the problems as a job array of shards (sbatch), each task a "
                "resumable kbrun batch in RESULTS/shards/<task>; again: resubmit only the unfinished shards "
                "(docs/SCALING.md)");
  cmd->add_option("--slurm-opts", args->slurm_opts,
                  "sbatch options for every task, as one shell-quoted string, e.g. "
                  "--slurm-opts='--partition=gpu --gres=gpu:1 --time=4:00:00'");
  cmd->add_option("--slurm-tasks", args->slurm_tasks,
                  fmt::format("Shards (array tasks) of consecutive problems (default {}, at most one per problem; "
                              "a resubmission keeps the folder's)",
                              kDefaultSlurmTasks))
      ->check(CLI::Range(1, 100000));
  cmd->add_flag("--slurm-wait", args->slurm_wait,
                "After submitting, follow the job (squeue) until no task is left, then kbrun merge and write the "
                "report; exit 75 when shards are left unfinished");
  cmd->add_option("--slurm-poll", args->slurm_poll_s, "Seconds between two looks at the queue with --slurm-wait")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  // What each array task runs (written into the job script by --slurm); not for users.
  cmd->add_option("--slurm-shard", args->slurm_shard, "Run shard N of the Slurm run in --results")->group("");
  AddEvalFlags(*cmd, args->eval);
  cmd->get_option("--compile-jobs")->description("Compiles in parallel (default: the number of cores)");
  cmd->get_option("--gpu")->description("Time on this one GPU only (same as --gpus N)");
  AddPromptFlags(*cmd, args->prompts);
  AddLlmFlags(*cmd, args->llm);
  AddRemoteFlags(*cmd, args->remote);
  cmd->footer(
      std::string(
          "Run the same command again to resume after a crash, Ctrl-C or an LLM outage: finished samples\n"
          "are kept, saved responses are evaluated without a new LLM call. A resume with other settings\n"
          "(samples, attempts, target speedup, model, prompts, backend, precision, tolerances...) is\n"
          "refused unless --reconfigure is given. A sample that meets an internal error is recorded as\n"
          "internal_error and the batch goes on.\n\n"
          "Exit codes: 0 the batch ran to its end (solved or not: see the report); 64 usage error, or the\n"
          "folder was run with other settings (nothing written); 69 the LLM endpoint stayed unreachable\n"
          "(state llm_unavailable, resumable); 70 internal error; 71 every GPU lane was retired after its\n"
          "device failed a health probe (state no_gpu_lanes, resumable); 78 configuration error (no API key, no\n"
          "Python with torch, broken prompts, another batch holds the folder: nothing written);\n"
          "130 interrupted (state saved).\n\n"
          "With --evaluator URL (docs/SCALING.md): each sample is compiled and run by that kbrun serve\n"
          "service; flags it cannot honour (--device, --gpus, --backend, --python, --allow-library-kernels,\n"
          "timeouts, compile settings...) are refused (64); 77 it refused the token; 69 it could not be\n"
          "reached, or samples it could not evaluate wait for a resume (state evaluator_unavailable).\n\n"
          "With --slurm (docs/SCALING.md): the job id is printed on stdout; exit 0 submitted (with\n"
          "--slurm-wait: every shard finished, merged, report written); 64 bad --slurm-opts, or the folder\n"
          "holds another run; 69 sbatch/squeue not on PATH or the controller unreachable; 75 with\n"
          "--slurm-wait, shards left unfinished (run the same command to resubmit them); 78 sbatch refused\n"
          "the job. The tasks' compile cache (--compile-cache, KBRUN_COMPILE_CACHE below) must be a path\n"
          "every node sees.\n\n") +
      kLlmSettingsHelp + EnvOptionsHelp("batch"));
  cmd->callback([args, cmd, exit_code] { Run(*args, *cmd, exit_code); });
}

}  // namespace kbrun::cli
