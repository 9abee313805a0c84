// kbrun eval: compile, check and time one candidate against its problem.
#include <cstdio>
#include <iostream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/eval_flags.h"
#include "eval/backend.h"
#include "eval/evaluation.h"
#include "eval/python_env.h"
#include "util/env_options.h"
#include "util/fs.h"
#include "util/text.h"

namespace kbrun::cli {
namespace {

void PrintSummary(const eval::EvalResult& r) {
  const auto& j = r.json;
  std::string name = j.value("problem", "");
  if (r.status == eval::Status::kCorrect) {
    const auto& ref = j["timing"]["reference"];
    const auto& cand = j["timing"]["candidate"];
    fmt::print("{}: correct, speedup {:.3f}x on {}\n", name, r.speedup, j["device"].value("name", ""));
    fmt::print("  reference {:.4f} ms (std {:.4f}), candidate {:.4f} ms (std {:.4f}), median of {} runs\n",
               ref.value("median_ms", 0.0), ref.value("std_ms", 0.0), cand.value("median_ms", 0.0),
               cand.value("std_ms", 0.0), cand.value("trials", 0));
  } else {
    fmt::print("{}: {} ({})\n", name, eval::StatusName(r.status), r.error_category);
    if (!r.error_message.empty()) fmt::print("{}\n", r.error_message);
  }
  const auto& s = j["stages"];
  fmt::print("  stages: worker start {:.1f} s, compile {:.1f} s, correctness {:.2f} s, timing {:.2f} s\n",
             s.value("worker_start_s", 0.0), s.value("compile_s", 0.0), s.value("correctness_s", 0.0),
             s.value("timing_s", 0.0));
  // --profile: the step's outcome, then the digest a reflection prompt would carry.
  if (const nlohmann::json p = j.value("profile", nlohmann::json()); p.is_object()) {
    std::string note = p.value("note", nlohmann::json()).is_string() ? p["note"].get<std::string>() : "";
    fmt::print("  profile: {} ({:.1f} s){}\n", p.value("status", "?"), p.value("seconds", 0.0),
               note.empty() ? "" : ": " + note.substr(0, note.find('\n')));
    if (p.value("summary", nlohmann::json()).is_string()) {
      for (const auto& line : SplitLines(p["summary"].get<std::string>())) fmt::print("    {}\n", line);
    }
  }
}

}  // namespace

void RegisterEval(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("eval", "Compile, check and time one candidate against a KernelBench problem");
  struct Args {
    std::string code, problem, output;
    EvalFlags eval;
    double target_speedup = 1.0;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("--code", args->code, "Candidate file (defines ModelNew)")->required();
  cmd->add_option("--problem", args->problem, "KernelBench problem file (defines Model, get_inputs, get_init_inputs)")
      ->required();
  cmd->add_option("--output,-o", args->output, "Write the result document here (JSON, docs/RESULT_SCHEMA.md)");
  cmd->add_option("--target-speedup", args->target_speedup, "Speedup needed for exit code 0")->capture_default_str();
  cmd->add_flag("--json", args->json, "Print the result document on stdout instead of the summary");
  AddEvalFlags(*cmd, args->eval);
  cmd->footer(
      "Exit codes: 0 correct and speedup >= target; 1 correct but slower; 2 failed (compile error,\n"
      "runtime error, timeout, incorrect, rejected); 64 usage error; 78 no usable Python/torch.\n\n" +
      EnvOptionsHelp("eval"));
  cmd->callback([args, exit_code] {
    for (const auto& [flag, path] : {std::pair{"--code", args->code}, std::pair{"--problem", args->problem}}) {
      if (!fs::is_regular_file(path)) throw CommandError{kExitUsage, fmt::format("{}: no such file: {}", flag, path)};
    }
    eval::EvalRequest req{args->problem, args->code, ToEvalOptions(args->eval)};
    try {
      // --backend auto: hip when torch is a ROCm build, else cuda (recorded in result.json).
      const eval::PythonEnv& py = eval::DiscoverPython(req.options.python);
      req.options.backend = eval::ResolveBackend(req.options.backend, py.hip_version);
    } catch (const std::exception& e) {
      throw CommandError{kExitConfig, e.what()};
    }
    eval::EvalResult r = eval::Evaluate(req);
    if (!args->output.empty()) WriteFileAtomic(args->output, r.json.dump(2) + "\n");
    if (args->json) {
      std::cout << r.json.dump(2) << std::endl;
    } else {
      PrintSummary(r);
    }
    *exit_code = r.error_category == "cancelled" ? kExitInterrupted : eval::ExitCodeFor(r, args->target_speedup);
  });
}

}  // namespace kbrun::cli
